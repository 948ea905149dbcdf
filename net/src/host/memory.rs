//! An in-memory Ethernet link between two [`Net`] devices.
//!
//! Each direction is a bounded queue of frames stamped with their delivery
//! time (`now + latency`, on the runtime's clock, so simulated time is
//! respected and runs are reproducible). A frame sent when the queue is
//! full is dropped and counted as the sender's `tx_dropped`, as a full
//! device ring would; [`Net::poll_transmit_ready`] says when there is room.
//!
//! # Fault injection
//!
//! [`Faults`] gives each frame, independently and from a seeded generator,
//! a chance to be lost, corrupted or duplicated; every injected fault is
//! counted ([`FaultCounts`]). Corruption flips one byte of an IPv4 frame
//! after the Ethernet header, where the IPv4, TCP, UDP or ICMP checksum
//! covers it: it models damage the Ethernet frame check sequence missed,
//! which is what a stack can detect. ARP frames are never corrupted, as ARP
//! has no checksum of its own.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::collections::VecDeque;

use unikit_runtime::Instant;
use unikit_runtime::devices::net::{ETHERNET_HEADER_LEN, MacAddress, Net, NetStats};
use unikit_runtime::time::{self, Sleep};

/// The MTU of the link (standard Ethernet).
const MTU: usize = 1500;

/// Frames in flight per direction.
const QUEUE_FRAMES: usize = 256;

/// The EtherType of IPv4.
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];

/// What goes wrong on the wire. Probabilities are per frame, from 0.0 to
/// 1.0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    /// The chance a frame is lost.
    pub loss: f64,
    /// The chance a frame is delivered twice.
    pub duplication: f64,
    /// The chance one byte of an IPv4 frame is flipped.
    pub corruption: f64,
    /// The time a frame takes from one end to the other.
    pub latency: Duration,
    /// The seed of the fault generator.
    pub seed: u64,
}

impl Faults {
    /// A perfect wire: no faults, no latency.
    pub fn none() -> Faults {
        Faults {
            loss: 0.0,
            duplication: 0.0,
            corruption: 0.0,
            latency: Duration::ZERO,
            seed: 0,
        }
    }
}

/// The faults injected into the frames one end sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Frames lost.
    pub lost: u64,
    /// Frames delivered twice.
    pub duplicated: u64,
    /// Frames with a byte flipped.
    pub corrupted: u64,
}

/// Frames sent by one end, on their way to the other.
#[derive(Default)]
struct Direction {
    queue: VecDeque<(Instant, Vec<u8>)>,
    /// The receiving runner, waiting for a frame.
    receiver: Option<Waker>,
    /// The receiver's timer for the head frame's delivery time.
    delivery: Option<Sleep>,
    /// The sending runner, waiting for room.
    sender: Option<Waker>,
    faults: FaultCounts,
}

struct Wire {
    faults: Faults,
    rng: u64,
    /// `directions[i]` carries what end `i` sends.
    directions: [Direction; 2],
    stats: [NetStats; 2],
}

impl Wire {
    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// The in-memory link; [`MemoryLink::pair`] makes its two ends.
#[derive(Debug)]
pub struct MemoryLink;

impl MemoryLink {
    /// Two devices joined by a wire with `faults`. End 0 has MAC
    /// 02:00:00:00:00:01, end 1 02:00:00:00:00:02.
    pub fn pair(faults: Faults) -> (LinkEnd, LinkEnd) {
        let wire = Rc::new(RefCell::new(Wire {
            faults,
            rng: faults.seed,
            directions: [Direction::default(), Direction::default()],
            stats: [NetStats::default(); 2],
        }));
        (
            LinkEnd {
                wire: wire.clone(),
                side: 0,
            },
            LinkEnd { wire, side: 1 },
        )
    }
}

/// One end of a [`MemoryLink`]: a [`Net`] device.
#[derive(Clone)]
pub struct LinkEnd {
    wire: Rc<RefCell<Wire>>,
    side: usize,
}

impl core::fmt::Debug for LinkEnd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkEnd").field("side", &self.side).finish()
    }
}

impl LinkEnd {
    /// Changes the wire's faults from now on, for both directions (frames
    /// already on the wire are not affected). A loss of 1.0 cuts the wire.
    pub fn set_faults(&self, faults: Faults) {
        let mut wire = self.wire.borrow_mut();
        wire.faults = faults;
        wire.rng = faults.seed;
    }

    /// The faults injected into the frames this end sent.
    pub fn faults_injected(&self) -> FaultCounts {
        self.wire.borrow().directions[self.side].faults
    }
}

impl Net for LinkEnd {
    type RxFrame = Vec<u8>;

    fn mac(&self) -> MacAddress {
        [0x02, 0, 0, 0, 0, self.side as u8 + 1]
    }

    fn mtu(&self) -> usize {
        MTU
    }

    fn stats(&self) -> NetStats {
        self.wire.borrow().stats[self.side]
    }

    fn poll_receive(&self, cx: &mut Context<'_>) -> Poll<Vec<u8>> {
        let mut wire = self.wire.borrow_mut();
        let wire = &mut *wire;
        let incoming = &mut wire.directions[1 - self.side];
        let Some(&(due, _)) = incoming.queue.front() else {
            incoming.receiver = Some(cx.waker().clone());
            return Poll::Pending;
        };
        if due > time::now() {
            if incoming
                .delivery
                .as_ref()
                .is_none_or(|d| d.deadline() != due)
            {
                incoming.delivery = Some(time::sleep_until(due));
            }
            let delivery = incoming.delivery.as_mut().expect("just set");
            if Pin::new(delivery).poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        incoming.delivery = None;
        let (_, frame) = incoming.queue.pop_front().expect("a head frame");
        if let Some(sender) = incoming.sender.take() {
            sender.wake();
        }
        let stats = &mut wire.stats[self.side];
        stats.rx_packets += 1;
        stats.rx_bytes += frame.len() as u64;
        Poll::Ready(frame)
    }

    fn poll_transmit_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut wire = self.wire.borrow_mut();
        let outgoing = &mut wire.directions[self.side];
        if outgoing.queue.len() < QUEUE_FRAMES {
            Poll::Ready(())
        } else {
            outgoing.sender = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn transmit<R>(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R {
        let mut frame = vec![0; len];
        let result = fill(&mut frame);
        let mut wire = self.wire.borrow_mut();
        let wire = &mut *wire;
        if len > MTU + ETHERNET_HEADER_LEN || wire.directions[self.side].queue.len() >= QUEUE_FRAMES
        {
            wire.stats[self.side].tx_dropped += 1;
            return result;
        }
        let stats = &mut wire.stats[self.side];
        stats.tx_packets += 1;
        stats.tx_bytes += len as u64;
        let faults = wire.faults;
        if wire.chance(faults.loss) {
            wire.directions[self.side].faults.lost += 1;
            return result;
        }
        let corruptible = len > ETHERNET_HEADER_LEN && frame[12..14] == ETHERTYPE_IPV4;
        if corruptible && wire.chance(faults.corruption) {
            let span = (len - ETHERNET_HEADER_LEN) as u64;
            let at = ETHERNET_HEADER_LEN + (wire.next() % span) as usize;
            let flip = (wire.next() % 255) as u8 + 1;
            frame[at] ^= flip;
            wire.directions[self.side].faults.corrupted += 1;
        }
        let duplicate = wire.chance(faults.duplication);
        let due = time::now() + faults.latency;
        let outgoing = &mut wire.directions[self.side];
        if duplicate {
            outgoing.faults.duplicated += 1;
            outgoing.queue.push_back((due, frame.clone()));
        }
        outgoing.queue.push_back((due, frame));
        if let Some(receiver) = outgoing.receiver.take() {
            receiver.wake();
        }
        result
    }
}
