//! The adapter from the runtime's [`Net`] device to smoltcp's [`Device`],
//! and the checks every received frame passes before smoltcp sees it.
//!
//! smoltcp pulls frames: the interface asks the device for a receive token
//! (a frame plus the right to send a reply) or a transmit token. The
//! adapter answers from [`Net::poll_receive`] and
//! [`Net::poll_transmit_ready`] with the runner task's [`Context`], so a
//! `None` ("nothing now") leaves the runner's waker with the device: the
//! runner is woken when a frame arrives, or when the device can take a
//! frame again after smoltcp wanted to send one. A receive token is only
//! handed out when a reply could be sent too, so replies (ARP, ICMP echo,
//! resets) are never dropped for want of room.
//!
//! # Checks and counters
//!
//! The adapter verifies the IPv4 header checksum and the TCP, UDP and ICMP
//! checksums itself (smoltcp is told to only compute them on transmit), so
//! a frame corrupted on the wire, or one too short for its headers, is
//! dropped *and counted* ([`Counters::malformed`]) instead of vanishing
//! silently inside smoltcp. Frames of other protocols (ARP) go to smoltcp
//! as they are.
//!
//! A reset sent in reply to a connection request (a SYN that no listening
//! socket took: nothing listens on the port, or its backlog or the socket
//! pool is full) is counted in [`Counters::refused`]: smoltcp writes such
//! replies through the transmit token of the received SYN, so the token
//! knows what it answers.

use core::cell::Cell;
use core::task::{Context, Poll};

use smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet, TcpPacket,
    UdpPacket,
};
use unikit_runtime::devices::net::{ETHERNET_HEADER_LEN, Net};

/// The stack's own counters, next to the device's.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Received frames dropped by the checks: bad checksums, headers
    /// longer than the frame.
    pub(crate) malformed: Cell<u64>,
    /// Connection requests answered with a reset.
    pub(crate) refused: Cell<u64>,
    /// Frames taken from or given to the device: the runner's measure of
    /// progress.
    pub(crate) frames: Cell<u64>,
    /// A connection request was handed to smoltcp since the runner last
    /// looked: a listener may need its next listening socket.
    pub(crate) connection_requested: Cell<bool>,
}

fn bump(counter: &Cell<u64>) {
    counter.set(counter.get() + 1);
}

/// smoltcp's view of a [`Net`] device during one poll of the runner.
pub(crate) struct Adapter<'a, 'c, N: Net> {
    net: &'a N,
    /// The runner's context; `None` while the interface is being built
    /// (no frame moves then).
    cx: Option<&'a mut Context<'c>>,
    counters: &'a Counters,
    /// smoltcp wanted to send and the device had no room.
    pub(crate) tx_blocked: bool,
}

impl<'a, 'c, N: Net> Adapter<'a, 'c, N> {
    pub(crate) fn new(net: &'a N, cx: Option<&'a mut Context<'c>>, counters: &'a Counters) -> Self {
        Adapter {
            net,
            cx,
            counters,
            tx_blocked: false,
        }
    }
}

impl<N: Net> Device for Adapter<'_, '_, N> {
    type RxToken<'t>
        = RxToken<N::RxFrame>
    where
        Self: 't;
    type TxToken<'t>
        = TxToken<'t, N>
    where
        Self: 't;

    fn receive(&mut self, _: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let cx = self.cx.as_deref_mut()?;
        if self.net.poll_transmit_ready(cx).is_pending() {
            self.tx_blocked = true;
            return None;
        }
        loop {
            let Poll::Ready(frame) = self.net.poll_receive(cx) else {
                return None;
            };
            bump(&self.counters.frames);
            match inspect(&frame) {
                None => bump(&self.counters.malformed),
                Some(connection_request) => {
                    if connection_request {
                        self.counters.connection_requested.set(true);
                    }
                    let tx = TxToken {
                        net: self.net,
                        counters: self.counters,
                        answers_connection_request: connection_request,
                    };
                    return Some((RxToken { frame }, tx));
                }
            }
        }
    }

    fn transmit(&mut self, _: Instant) -> Option<Self::TxToken<'_>> {
        let cx = self.cx.as_deref_mut()?;
        if self.net.poll_transmit_ready(cx).is_pending() {
            self.tx_blocked = true;
            return None;
        }
        Some(TxToken {
            net: self.net,
            counters: self.counters,
            answers_connection_request: false,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        // smoltcp's Ethernet MTU counts the header.
        caps.max_transmission_unit = self.net.mtu() + ETHERNET_HEADER_LEN;
        caps.max_burst_size = None;
        // Verified by `inspect`, once.
        caps.checksum.ipv4 = Checksum::Tx;
        caps.checksum.tcp = Checksum::Tx;
        caps.checksum.udp = Checksum::Tx;
        caps.checksum.icmpv4 = Checksum::Tx;
        caps
    }
}

/// A received frame, given back to the device when dropped.
pub(crate) struct RxToken<F> {
    frame: F,
}

impl<F: core::ops::Deref<Target = [u8]>> phy::RxToken for RxToken<F> {
    fn consume<R, G>(self, f: G) -> R
    where
        G: FnOnce(&[u8]) -> R,
    {
        f(&self.frame)
    }
}

/// The right to queue one frame on the device.
pub(crate) struct TxToken<'a, N: Net> {
    net: &'a N,
    counters: &'a Counters,
    /// This token came with a received SYN: a reset through it refuses a
    /// connection.
    answers_connection_request: bool,
}

impl<N: Net> phy::TxToken for TxToken<'_, N> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        bump(&self.counters.frames);
        self.net.transmit(len, |buffer| {
            let result = f(buffer);
            if self.answers_connection_request && is_reset(buffer) {
                bump(&self.counters.refused);
            }
            result
        })
    }
}

/// Checks a received frame: `None` if it is malformed or fails a checksum,
/// else whether it is a TCP connection request (SYN without ACK).
fn inspect(frame: &[u8]) -> Option<bool> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return Some(false);
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    if ip.version() != 4 || !ip.verify_checksum() {
        return None;
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        // Fragments are not reassembled; smoltcp drops them.
        return Some(false);
    }
    let source = IpAddress::Ipv4(ip.src_addr());
    let destination = IpAddress::Ipv4(ip.dst_addr());
    match ip.next_header() {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
            tcp.verify_checksum(&source, &destination)
                .then(|| tcp.syn() && !tcp.ack())
        }
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(ip.payload()).ok()?;
            udp.verify_checksum(&source, &destination).then_some(false)
        }
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
            icmp.verify_checksum().then_some(false)
        }
        _ => Some(false),
    }
}

/// Whether an outgoing frame is a TCP reset.
fn is_reset(frame: &[u8]) -> bool {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return false;
    }
    let Ok(ip) = Ipv4Packet::new_checked(ethernet.payload()) else {
        return false;
    };
    ip.next_header() == IpProtocol::Tcp
        && TcpPacket::new_checked(ip.payload()).is_ok_and(|tcp| tcp.rst())
}
