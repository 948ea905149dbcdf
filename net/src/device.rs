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
//! # Checksums and counters
//!
//! The adapter verifies the IPv4 header checksum and the TCP, UDP and ICMP
//! checksums of received frames, so a frame corrupted on the wire, or one
//! too short for its headers, is dropped *and counted*
//! ([`Counters::malformed`]) instead of vanishing silently inside smoltcp.
//! Frames of other protocols (ARP) go to smoltcp as they are. It also
//! fills in the checksums of the frames smoltcp sends, as a card with
//! checksum offload would: smoltcp is told the device does both, and
//! [`crate::checksum`] sums several times faster than smoltcp's routine
//! on a kernel built without SSE.
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
    EthernetFrame, EthernetProtocol, Icmpv4Packet, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket,
};
use unikit_runtime::devices::net::{ETHERNET_HEADER_LEN, Net};

use crate::checksum;

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
        // Verified by `inspect` and filled in by `finish`.
        caps.checksum.ipv4 = Checksum::None;
        caps.checksum.tcp = Checksum::None;
        caps.checksum.udp = Checksum::None;
        caps.checksum.icmpv4 = Checksum::None;
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
            if finish(buffer) && self.answers_connection_request {
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
    let header = &ethernet.payload()[..usize::from(ip.header_len())];
    if ip.version() != 4 || !checksum::verify(0, header) {
        return None;
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        // Fragments are not reassembled; smoltcp drops them.
        return Some(false);
    }
    let payload = ip.payload();
    let pseudo_header = |protocol: IpProtocol| {
        checksum::pseudo_header(
            ip.src_addr().octets(),
            ip.dst_addr().octets(),
            protocol.into(),
            payload.len() as u16,
        )
    };
    match ip.next_header() {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(payload).ok()?;
            checksum::verify(pseudo_header(IpProtocol::Tcp), payload)
                .then(|| tcp.syn() && !tcp.ack())
        }
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(payload).ok()?;
            // A zero checksum: the sender computed none.
            (udp.checksum() == 0 || checksum::verify(pseudo_header(IpProtocol::Udp), payload))
                .then_some(false)
        }
        IpProtocol::Icmp => {
            Icmpv4Packet::new_checked(payload).ok()?;
            checksum::verify(0, payload).then_some(false)
        }
        _ => Some(false),
    }
}

/// Fills in the checksums of a frame smoltcp wrote (which left them
/// zero): the IPv4 header's and the TCP, UDP or ICMP one. Returns whether
/// the frame is a TCP reset.
fn finish(frame: &mut [u8]) -> bool {
    if frame.len() < ETHERNET_HEADER_LEN
        || EthernetFrame::new_unchecked(&*frame).ethertype() != EthernetProtocol::Ipv4
    {
        return false;
    }
    let ip = &mut frame[ETHERNET_HEADER_LEN..];
    let Ok(packet) = Ipv4Packet::new_checked(&*ip) else {
        return false;
    };
    let (header_len, total_len) = (
        usize::from(packet.header_len()),
        usize::from(packet.total_len()),
    );
    let (source, destination) = (packet.src_addr().octets(), packet.dst_addr().octets());
    let protocol = packet.next_header();
    checksum::fill(0, &mut ip[..header_len], IPV4_CHECKSUM, false);
    let payload = &mut ip[header_len..total_len];
    let pseudo_header =
        checksum::pseudo_header(source, destination, protocol.into(), payload.len() as u16);
    match protocol {
        IpProtocol::Tcp if payload.len() >= TCP_HEADER_LEN => {
            checksum::fill(pseudo_header, payload, TCP_CHECKSUM, false);
            payload[TCP_FLAGS] & TCP_RST != 0
        }
        IpProtocol::Udp if payload.len() >= UDP_HEADER_LEN => {
            checksum::fill(pseudo_header, payload, UDP_CHECKSUM, true);
            false
        }
        IpProtocol::Icmp if payload.len() >= ICMP_HEADER_LEN => {
            checksum::fill(0, payload, ICMP_CHECKSUM, false);
            false
        }
        _ => false,
    }
}

/// Where the checksums lie in their headers, and the headers' least
/// lengths.
const IPV4_CHECKSUM: usize = 10;
const TCP_HEADER_LEN: usize = 20;
const TCP_CHECKSUM: usize = 16;
const TCP_FLAGS: usize = 13;
const TCP_RST: u8 = 0x04;
const UDP_HEADER_LEN: usize = 8;
const UDP_CHECKSUM: usize = 6;
const ICMP_HEADER_LEN: usize = 8;
const ICMP_CHECKSUM: usize = 2;
