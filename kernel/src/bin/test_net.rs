//! Test image: the virtio-net card under QEMU user networking, with raw
//! Ethernet frames through the `Net` device.
//!
//! 1. Asks who has the gateway 10.0.2.2, as 10.0.2.15 (QEMU's user
//!    network), and waits at most 5 s for the ARP reply, which it checks
//!    and logs (`ARP reply: 10.0.2.2 is at <mac>`).
//! 2. Sends a burst of three times the transmit queue's length (frames
//!    of a local experimental EtherType, which QEMU's user network drops,
//!    numbered from 0 in their first payload bytes), each after waiting
//!    for room, counting how often it had to wait: every frame must be
//!    sent, none dropped. The first wait is logged (`transmit queue full
//!    after <n> frames: waiting for room`).
//! 3. Queues one frame longer than header plus MTU, which must be counted
//!    as dropped.
//!
//! It logs the counters and exits 0, or 1 with the first failed check. With
//! no card it fails at once with the device's error.
//!
//! 4. With `receive=<frames>`, receives that many frames of the same
//!    EtherType, which must be numbered 0, 1, 2... (all of them, in order,
//!    so many more than the receive ring holds), within 60 s.
//!
//! Runtime arguments: `arp=off` skips step 1 (for a network with no
//! gateway), `burst=<frames>` and `frame=<bytes>` (60 to 1514) size step 2.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use core::future::poll_fn;
use core::time::Duration;
use unikit_drivers::virtio_net::QUEUE_SIZE;
use unikit_kernel::devices::KernelArgs;
use unikit_kernel::net::KernelNet;
use unikit_runtime::Error;
use unikit_runtime::devices::Args;
use unikit_runtime::devices::net::{ETHERNET_HEADER_LEN, MacAddress, Net};
use unikit_runtime::time::with_timeout;

unikit_kernel::unikernel!("test-net", |d| async move { run(d.net()?, d.args).await });

const GUEST: [u8; 4] = [10, 0, 2, 15];
const GATEWAY: [u8; 4] = [10, 0, 2, 2];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
/// IEEE 802 local experimental EtherType 1: nobody on the network uses it.
const ETHERTYPE_EXPERIMENTAL: [u8; 2] = [0x88, 0xb5];

fn mac_text(mac: &[u8]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<alloc::vec::Vec<_>>()
        .join(":")
}

/// An ARP request for the gateway's MAC, broadcast.
fn arp_request(mac: MacAddress) -> [u8; 42] {
    let mut frame = [0u8; 42];
    frame[0..6].fill(0xff);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&ETHERTYPE_ARP);
    // Ethernet, IPv4, 6-byte and 4-byte addresses, request.
    frame[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    frame[22..28].copy_from_slice(&mac);
    frame[28..32].copy_from_slice(&GUEST);
    frame[38..42].copy_from_slice(&GATEWAY);
    frame
}

/// The sender's MAC of `frame` if it is the gateway's ARP reply to us.
fn gateway_mac(frame: &[u8], mac: MacAddress) -> Option<MacAddress> {
    let is_reply = frame.len() >= 42
        && frame[12..14] == ETHERTYPE_ARP
        && frame[14..22] == [0, 1, 8, 0, 6, 4, 0, 2]
        && frame[28..32] == GATEWAY
        && frame[32..38] == mac
        && frame[38..42] == GUEST;
    is_reply.then(|| frame[22..28].try_into().expect("six bytes"))
}

fn check(ok: bool, what: &str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::msg(format!("check failed: {what}")))
    }
}

async fn run(net: KernelNet, args: KernelArgs) -> Result<(), Error> {
    let arp = args.get("arp") != Some("off");
    let burst: usize = args.get_parsed("burst", 3 * QUEUE_SIZE, "a number of frames")?;
    let frame_len: usize = args.get_parsed("frame", 60, "a frame length (60-1514)")?;
    let receive: u64 = args.get_parsed("receive", 0, "a number of frames")?;
    check(
        (60..=ETHERNET_HEADER_LEN + net.mtu()).contains(&frame_len),
        "frame=60..1514",
    )?;
    let mac = net.mac();
    log::info!("MAC {}, MTU {}", mac_text(&mac), net.mtu());
    if arp {
        ask_gateway(&net, mac).await?;
    }

    let mut waits = 0;
    for index in 0..burst {
        poll_fn(|cx| {
            let ready = net.poll_transmit_ready(cx);
            if ready.is_pending() {
                if waits == 0 {
                    log::info!("transmit queue full after {index} frames: waiting for room");
                }
                waits += 1;
            }
            ready
        })
        .await;
        net.transmit(frame_len, |frame| {
            frame[0..6].fill(0xff);
            frame[6..12].copy_from_slice(&mac);
            frame[12..14].copy_from_slice(&ETHERTYPE_EXPERIMENTAL);
            frame[14..22].copy_from_slice(&(index as u64).to_be_bytes());
        });
    }
    log::info!("burst: {burst} frames, waited for room {waits} times");

    let oversized = ETHERNET_HEADER_LEN + net.mtu() + 1;
    let written = net.transmit(oversized, |frame| {
        frame.fill(0xee);
        frame.len()
    });
    check(written == oversized, "the oversized frame's buffer")?;
    let stats = net.stats();
    log::info!(
        "stats: rx_packets {} rx_bytes {} tx_packets {} tx_bytes {} rx_dropped {} tx_dropped {}",
        stats.rx_packets,
        stats.rx_bytes,
        stats.tx_packets,
        stats.tx_bytes,
        stats.rx_dropped,
        stats.tx_dropped
    );
    let requests = u64::from(arp);
    check(
        stats.tx_packets == requests + burst as u64,
        "every frame sent",
    )?;
    check(
        stats.tx_bytes == 42 * requests + (frame_len * burst) as u64,
        "bytes sent",
    )?;
    check(stats.tx_dropped == 1, "only the oversized frame dropped")?;
    check(stats.rx_packets >= requests, "the ARP reply counted")?;
    // The card is one device: a second handle sees the same counters.
    check(unikit_kernel::net::open()?.stats() == stats, "one device")?;
    if receive > 0 {
        receive_numbered(&net, receive).await?;
        let stats = net.stats();
        check(stats.rx_packets >= receive, "received frames counted")?;
        check(stats.rx_dropped == 0, "no received frame dropped")?;
    }
    log::info!("net ok");
    Ok(())
}

/// Step 4: `count` numbered frames, in order.
async fn receive_numbered(net: &KernelNet, count: u64) -> Result<(), Error> {
    with_timeout(Duration::from_secs(60), async {
        let mut next = 0;
        while next < count {
            let frame = net.receive().await;
            if frame.len() >= 22 && frame[12..14] == ETHERTYPE_EXPERIMENTAL {
                let number = u64::from_be_bytes(frame[14..22].try_into().expect("8 bytes"));
                check(
                    number == next,
                    &format!("frame {next} received, not {number}"),
                )?;
                next += 1;
            }
        }
        Ok(())
    })
    .await?;
    log::info!("received {count} frames in order");
    Ok(())
}

/// Step 1: the gateway's ARP reply.
async fn ask_gateway(net: &KernelNet, mac: MacAddress) -> Result<(), Error> {
    net.send(&arp_request(mac)).await;
    let gateway = with_timeout(Duration::from_secs(5), async {
        loop {
            let frame = net.receive().await;
            if let Some(gateway) = gateway_mac(&frame, mac) {
                return Ok(gateway);
            }
        }
    })
    .await
    .map_err(|error| Error::msg(format!("no ARP reply from 10.0.2.2: {error}")))?;
    log::info!("ARP reply: 10.0.2.2 is at {}", mac_text(&gateway));
    Ok(())
}
