//! A virtio-net card on PCI, around `virtio-drivers`' non-blocking
//! `VirtIONetRaw`.
//!
//! `VirtIONetRaw` only queues and completes caller-owned buffers; this
//! module owns them, so that the kernel above sees frames, not descriptors:
//!
//! * Receive: [`QUEUE_SIZE`] buffers of [`BUFFER_LEN`] bytes are queued at
//!   start. [`VirtioNet::receive`] completes the next used one and hands it
//!   out as an [`RxBuffer`] (the frame, without the virtio header); the
//!   caller gives it back with [`VirtioNet::recycle`], which queues it again
//!   at once, so the ring stays full except for frames being read. A frame
//!   whose length is impossible (shorter than an Ethernet header, longer
//!   than header plus MTU, or longer than the buffer) is requeued on the
//!   spot and reported as [`Received::Malformed`].
//! * Transmit: [`QUEUE_SIZE`] buffers wait in a free list.
//!   [`VirtioNet::tx_buffer`] first takes back the buffers of completed
//!   transmissions, then lends one out; [`VirtioNet::submit`] writes the
//!   virtio header in front of the frame and queues it. Nothing here waits:
//!   with no free buffer the caller learns it and waits for the interrupt
//!   that completes one.
//!
//! Buffers are ordinary heap allocations. The kernel's heap lies in its
//! linear mapping of physical memory, so each buffer is physically
//! contiguous, which is what the device's DMA needs; the `Hal` given as
//! `H` translates addresses. The buffers are moved (as `Box`es, whose
//! contents stay put) into per-token slots while the device owns them, and
//! are neither read nor written until the device returns them.
//!
//! Both kinds of device work: the transitional one (QEMU's default, PCI
//! device 0x1000, legacy I/O registers plus the modern capabilities) and
//! the modern-only one (0x1041, `disable-legacy=on`). Both are driven
//! through the modern capabilities, which `virtio-drivers`' PCI transport
//! reads; the legacy I/O BAR is left alone.
//!
//! The interrupt is the kernel's: it routes the function's INTx line and
//! acknowledges the device by reading the ISR status byte, whose physical
//! address [`isr_status_address`] finds in the capability list.

use crate::pci::{self, Bar, Function};
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::{Deref, Range};
use pci_types::PciAddress;
use virtio_drivers::Hal;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::pci::bus::PciRoot;
use virtio_drivers::transport::pci::{PciTransport, VirtioPciError};

/// The virtio PCI vendor.
pub const VENDOR: u16 = 0x1af4;
/// The transitional network device's PCI device ID.
pub const TRANSITIONAL_DEVICE: u16 = 0x1000;
/// The modern network device's PCI device ID (0x1040 + device type 1).
pub const MODERN_DEVICE: u16 = 0x1041;
/// Descriptors per queue, and buffers per direction.
pub const QUEUE_SIZE: usize = 64;
/// The Ethernet payload the card carries.
pub const MTU: usize = 1500;
/// The Ethernet header.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// The longest frame: header plus MTU.
pub const MAX_FRAME_LEN: usize = ETHERNET_HEADER_LEN + MTU;
/// A buffer's length: the longest virtio header (12 bytes) plus the
/// longest frame; also the least `virtio-drivers` accepts for receiving.
pub const BUFFER_LEN: usize = 12 + MAX_FRAME_LEN;

const VENDOR_CAPABILITY: u8 = 0x09;
const ISR_CONFIGURATION: u8 = 3;

/// Whether `function` is a virtio network card.
pub fn is_virtio_net(function: &Function) -> bool {
    function.vendor == VENDOR
        && (function.device == TRANSITIONAL_DEVICE || function.device == MODERN_DEVICE)
}

/// The physical address of the ISR status byte of the virtio function at
/// `address`: its vendor capability of type 3 names a BAR and an offset.
pub fn isr_status_address(address: PciAddress) -> Option<u64> {
    pci::capabilities(address)
        .filter(|capability| capability.id == VENDOR_CAPABILITY)
        .find_map(|capability| {
            let header = pci::read(address, capability.offset);
            if (header >> 24) as u8 != ISR_CONFIGURATION {
                return None;
            }
            let bar = pci::read(address, capability.offset + 4) as u8;
            let offset = pci::read(address, capability.offset + 8);
            match pci::bar(address, bar)? {
                Bar::Memory { address, size, .. } if u64::from(offset) < size => {
                    Some(address + u64::from(offset))
                }
                _ => None,
            }
        })
}

/// Why a card could not be started.
#[derive(Debug)]
pub enum InitError {
    /// The PCI transport found no usable modern capabilities.
    Transport(VirtioPciError),
    /// The device refused the queues or features.
    Device(virtio_drivers::Error),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Transport(error) => write!(f, "virtio PCI transport: {error}"),
            InitError::Device(error) => write!(f, "virtio-net device: {error}"),
        }
    }
}

/// The outcome of [`VirtioNet::receive`].
#[derive(Debug)]
pub enum Received {
    /// A frame, to be given back with [`VirtioNet::recycle`].
    Frame(RxBuffer),
    /// The device returned an impossible length; the buffer was requeued.
    Malformed,
}

/// A received frame in its receive buffer.
#[derive(Debug)]
pub struct RxBuffer {
    data: Box<[u8]>,
    frame: Range<usize>,
}

impl Deref for RxBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.data[self.frame.clone()]
    }
}

/// A free transmit buffer, lent out by [`VirtioNet::tx_buffer`].
#[derive(Debug)]
pub struct TxBuffer {
    data: Box<[u8]>,
    header_len: usize,
}

impl TxBuffer {
    /// The first `len` bytes of the frame area (`len` at most
    /// [`MAX_FRAME_LEN`]).
    pub fn frame_mut(&mut self, len: usize) -> &mut [u8] {
        &mut self.data[self.header_len..self.header_len + len]
    }
}

/// Where a received frame lies in its buffer, or `None` when the lengths
/// the device reported are impossible.
pub fn frame_range(header_len: usize, frame_len: usize, capacity: usize) -> Option<Range<usize>> {
    let end = header_len.checked_add(frame_len)?;
    (ETHERNET_HEADER_LEN..=MAX_FRAME_LEN)
        .contains(&frame_len)
        .then_some(header_len..end)
        .filter(|_| end <= capacity)
}

/// One buffer per queue slot, indexed by the token the queue returned.
struct Slots(Vec<Option<Box<[u8]>>>);

impl Slots {
    fn new() -> Self {
        Slots((0..QUEUE_SIZE).map(|_| None).collect())
    }

    fn put(&mut self, token: u16, buffer: Box<[u8]>) {
        let slot = &mut self.0[usize::from(token)];
        debug_assert!(slot.is_none(), "virtqueue token {token} reused");
        *slot = Some(buffer);
    }

    /// The buffer queued under `token`. The queue only returns tokens it
    /// handed out, each once.
    fn take(&mut self, token: u16) -> Box<[u8]> {
        self.0
            .get_mut(usize::from(token))
            .and_then(Option::take)
            .expect("the virtqueue returned a token it never handed out")
    }
}

/// A started virtio-net card and its buffers.
pub struct VirtioNet<H: Hal> {
    raw: VirtIONetRaw<H, PciTransport, QUEUE_SIZE>,
    header_len: usize,
    rx_queued: Slots,
    tx_queued: Slots,
    tx_lengths: [usize; QUEUE_SIZE],
    tx_free: Vec<Box<[u8]>>,
}

impl<H: Hal> VirtioNet<H> {
    /// Starts the card at `address` (already enabled for memory decoding
    /// and bus mastering) and fills its receive queue. Boxed: the queues'
    /// bookkeeping is kilobytes, not to be moved around on the stack.
    pub fn new(address: PciAddress) -> Result<Box<Self>, InitError> {
        let mut root = PciRoot::new(pci::PortIo);
        let transport = PciTransport::new::<H, _>(&mut root, pci::to_device_function(address))
            .map_err(InitError::Transport)?;
        let raw = VirtIONetRaw::new(transport).map_err(InitError::Device)?;
        let mut probe = [0u8; 16];
        let header_len = raw
            .fill_buffer_header(&mut probe)
            .map_err(InitError::Device)?;
        let mut net = Box::new(VirtioNet {
            raw,
            header_len,
            rx_queued: Slots::new(),
            tx_queued: Slots::new(),
            tx_lengths: [0; QUEUE_SIZE],
            tx_free: (0..QUEUE_SIZE)
                .map(|_| vec![0u8; BUFFER_LEN].into_boxed_slice())
                .collect(),
        });
        for _ in 0..QUEUE_SIZE {
            net.queue_receive(vec![0u8; BUFFER_LEN].into_boxed_slice())
                .map_err(InitError::Device)?;
        }
        Ok(net)
    }

    /// The card's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.raw.mac_address()
    }

    fn queue_receive(&mut self, mut buffer: Box<[u8]>) -> Result<(), virtio_drivers::Error> {
        // SAFETY: the buffer moves into `rx_queued` and is not touched
        // until the device returns its token.
        let token = unsafe { self.raw.receive_begin(&mut buffer)? };
        self.rx_queued.put(token, buffer);
        Ok(())
    }

    /// The next frame the device received, if any.
    pub fn receive(&mut self) -> Option<Received> {
        let token = self.raw.poll_receive()?;
        let mut buffer = self.rx_queued.take(token);
        // SAFETY: `buffer` is the one queued under `token`.
        let lengths = unsafe { self.raw.receive_complete(token, &mut buffer) };
        let frame = lengths
            .ok()
            .and_then(|(header, frame)| frame_range(header, frame, buffer.len()));
        Some(match frame {
            Some(frame) => Received::Frame(RxBuffer {
                data: buffer,
                frame,
            }),
            None => {
                self.recycle_buffer(buffer);
                Received::Malformed
            }
        })
    }

    /// Gives a received frame's buffer back to the device.
    pub fn recycle(&mut self, buffer: RxBuffer) {
        self.recycle_buffer(buffer.data);
    }

    fn recycle_buffer(&mut self, buffer: Box<[u8]>) {
        // There are as many buffers as descriptors, so the queue always
        // has room for a buffer that came out of it: this cannot fail.
        let queued = self.queue_receive(buffer);
        debug_assert!(queued.is_ok(), "receive queue full: {queued:?}");
    }

    /// Takes back the buffers of completed transmissions.
    fn reclaim(&mut self) {
        while let Some(token) = self.raw.poll_transmit() {
            let buffer = self.tx_queued.take(token);
            let len = self.tx_lengths[usize::from(token)];
            // SAFETY: `buffer[..len]` is what was queued under `token`.
            let completed = unsafe { self.raw.transmit_complete(token, &buffer[..len]) };
            debug_assert!(completed.is_ok(), "transmit completion: {completed:?}");
            self.tx_free.push(buffer);
        }
    }

    /// Whether a frame can be queued now (after taking back completed
    /// transmissions).
    pub fn can_transmit(&mut self) -> bool {
        self.reclaim();
        !self.tx_free.is_empty() && self.raw.can_send()
    }

    /// A free transmit buffer, or `None` while all are queued.
    pub fn tx_buffer(&mut self) -> Option<TxBuffer> {
        if !self.can_transmit() {
            return None;
        }
        self.tx_free.pop().map(|data| TxBuffer {
            data,
            header_len: self.header_len,
        })
    }

    /// Queues the first `len` bytes of `buffer`'s frame area. Returns
    /// whether the device took it (it always has room for a buffer lent
    /// by [`VirtioNet::tx_buffer`]).
    pub fn submit(&mut self, mut buffer: TxBuffer, len: usize) -> bool {
        let total = self.header_len + len.min(MAX_FRAME_LEN);
        let queued = self
            .raw
            .fill_buffer_header(&mut buffer.data)
            // SAFETY: the buffer moves into `tx_queued` and is not touched
            // until the device returns its token.
            .and_then(|_| unsafe { self.raw.transmit_begin(&buffer.data[..total]) });
        match queued {
            Ok(token) => {
                self.tx_lengths[usize::from(token)] = total;
                self.tx_queued.put(token, buffer.data);
                true
            }
            Err(_) => {
                self.tx_free.push(buffer.data);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_lies_after_the_virtio_header() {
        assert_eq!(frame_range(12, 60, BUFFER_LEN), Some(12..72));
        assert_eq!(frame_range(10, MAX_FRAME_LEN, BUFFER_LEN), Some(10..1524));
    }

    #[test]
    fn impossible_lengths_are_malformed() {
        assert_eq!(
            frame_range(12, 13, BUFFER_LEN),
            None,
            "shorter than a header"
        );
        assert_eq!(
            frame_range(12, MAX_FRAME_LEN + 1, BUFFER_LEN),
            None,
            "over MTU"
        );
        assert_eq!(frame_range(12, 1000, 1000), None, "beyond the buffer");
        assert_eq!(frame_range(usize::MAX, 60, BUFFER_LEN), None, "overflow");
    }

    #[test]
    fn slots_return_what_was_put_under_each_token() {
        let mut slots = Slots::new();
        slots.put(3, Box::new([3u8]));
        slots.put(0, Box::new([0u8]));
        assert_eq!(&*slots.take(3), &[3]);
        assert_eq!(&*slots.take(0), &[0]);
    }

    #[test]
    #[should_panic(expected = "never handed out")]
    fn an_unknown_token_is_a_driver_bug() {
        Slots::new().take(5);
    }

    #[test]
    fn virtio_net_functions_are_recognised_by_vendor_and_device() {
        let function = |vendor, device| Function {
            address: PciAddress::new(0, 0, 3, 0),
            vendor,
            device,
            class: 2,
            subclass: 0,
        };
        assert!(is_virtio_net(&function(VENDOR, TRANSITIONAL_DEVICE)));
        assert!(is_virtio_net(&function(VENDOR, MODERN_DEVICE)));
        assert!(!is_virtio_net(&function(VENDOR, 0x1001)), "block device");
        assert!(!is_virtio_net(&function(0x8086, 0x100e)), "e1000");
    }
}
