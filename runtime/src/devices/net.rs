//! The network device, like Mirage's `Net`: Ethernet frames in and out,
//! the MAC address, the MTU and counters.
//!
//! The trait is shaped for a TCP/IP stack's single runner task (smoltcp's
//! `Device` in `unikit-net`, the embassy-net pattern) rather than for
//! callbacks:
//!
//! * [`Net::poll_receive`] hands out the next received frame, or registers
//!   the task's waker to be woken when one arrives. The frame is a
//!   [`Net::RxFrame`] that borrows the device's receive buffer until it is
//!   dropped, so a driver can give the buffer back to the hardware then
//!   (no copy on the way in).
//! * [`Net::poll_transmit_ready`] says whether the device can queue one
//!   more frame, or registers the waker to be woken when it can;
//!   [`Net::transmit`] then writes the frame straight into the device's
//!   buffer through a closure (no copy on the way out) and never waits.
//!
//! [`Net::receive`] and [`Net::send`] wrap both halves as `async fn`s for
//! programs that handle raw frames themselves.
//!
//! Bad input never stops a device: a frame that is too long, truncated or
//! otherwise malformed is dropped and counted in [`NetStats`].

use core::future::{Future, poll_fn};
use core::ops::Deref;
use core::task::{Context, Poll};

/// A MAC (Ethernet hardware) address.
pub type MacAddress = [u8; 6];

/// The length of an Ethernet header (destination, source, EtherType); a
/// frame is at most this plus [`Net::mtu`] bytes long.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// A network device's counters since it was started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames received and handed to the stack.
    pub rx_packets: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Received frames dropped: malformed (too short, too long, a bad
    /// device header) or arriving when no buffer was free.
    pub rx_dropped: u64,
    /// Frames the stack asked to send that were dropped: too long, or the
    /// device's transmit queue was full.
    pub tx_dropped: u64,
}

/// An Ethernet device. Handles are cheap clones of one device.
pub trait Net: Clone + 'static {
    /// A received frame (Ethernet header included), held in the device's
    /// buffer until dropped.
    type RxFrame: Deref<Target = [u8]>;

    /// The device's MAC address.
    fn mac(&self) -> MacAddress;

    /// The largest Ethernet payload the device carries (1500 for standard
    /// Ethernet), excluding the [`ETHERNET_HEADER_LEN`]-byte header.
    fn mtu(&self) -> usize;

    /// The counters so far.
    fn stats(&self) -> NetStats;

    /// The next received frame, or `Pending` after arranging for `cx`'s
    /// waker to be woken when one arrives.
    fn poll_receive(&self, cx: &mut Context<'_>) -> Poll<Self::RxFrame>;

    /// `Ready` when [`Net::transmit`] can queue one more frame now, or
    /// `Pending` after arranging for `cx`'s waker to be woken when it can.
    fn poll_transmit_ready(&self, cx: &mut Context<'_>) -> Poll<()>;

    /// Queues a frame of `len` bytes, written by `fill` into the device's
    /// own buffer, and returns what `fill` returns. Never waits: when the
    /// queue is full (the caller did not wait for
    /// [`Net::poll_transmit_ready`]) or `len` exceeds the header plus the
    /// MTU, `fill` writes into a scratch buffer and the frame is dropped and
    /// counted in [`NetStats::tx_dropped`].
    fn transmit<R>(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R;

    /// Waits for the next received frame.
    fn receive(&self) -> impl Future<Output = Self::RxFrame> {
        poll_fn(|cx| self.poll_receive(cx))
    }

    /// Waits until the device can queue a frame, then queues a copy of
    /// `frame`.
    fn send(&self, frame: &[u8]) -> impl Future<Output = ()> {
        async move {
            poll_fn(|cx| self.poll_transmit_ready(cx)).await;
            self.transmit(frame.len(), |buffer| buffer.copy_from_slice(frame));
        }
    }
}
