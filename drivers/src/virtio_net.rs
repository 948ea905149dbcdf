//! A virtio-net card on PCI: `virtio-drivers`' PCI transport and split
//! virtqueues, driven by this module, which owns the buffers and decides
//! when the device is told about them.
//!
//! The kernel above sees frames, not descriptors:
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
//! # Telling the device: notifications and interrupts
//!
//! Under QEMU every access to the card's registers leaves the emulated CPU
//! and takes QEMU's global lock, which QEMU's own thread holds while it
//! moves frames between the card and the network: an access can wait
//! behind a whole batch of frames. This driver touches registers as little
//! as a virtio driver can:
//!
//! * The rings use the flag-based suppression of virtio 1.x (the driver
//!   does not accept `VIRTIO_F_RING_EVENT_IDX`): the device sets "no
//!   notify" on a ring while it is working through it, and the driver only
//!   notifies a ring the device is not already looking at. A receive
//!   buffer given back while the device has others is never announced;
//!   transmitted frames are announced once per batch by
//!   [`VirtioNet::flush`] (or when [`FLUSH_BATCH`] are waiting), which the
//!   caller runs once it has queued what it had to send.
//! * A notification is one 16-bit write to the queue's doorbell, whose
//!   address is worked out once at start from the notification capability
//!   (not the transport's select-read-write of three registers).
//!
//! That is why this module drives the transport and `VirtQueue` itself
//! rather than through `virtio-drivers`' own `VirtIONetRaw`: measured on
//! the echo benchmark, `VirtIONetRaw` notified the card for every receive
//! buffer given back and every frame sent (three register accesses each),
//! and those notifications were most of the guest's time per segment.
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
//! through the modern capabilities; the legacy I/O BAR is left alone.
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
use core::sync::atomic::{Ordering, fence};
use pci_types::PciAddress;
use virtio_drivers::Hal;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::pci::bus::PciRoot;
use virtio_drivers::transport::pci::{PciTransport, VirtioPciError};
use virtio_drivers::transport::{DeviceStatus, Transport};

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
/// The virtio-net header in front of every frame (virtio 1.x: flags, GSO
/// type, header length, GSO size, checksum start and offset, buffer
/// count). All zeros on transmit: no offload asked for.
pub const HEADER_LEN: usize = 12;
/// A buffer's length: the virtio header plus the longest frame.
pub const BUFFER_LEN: usize = HEADER_LEN + MAX_FRAME_LEN;
/// Queued frames that make [`VirtioNet::submit`] notify without waiting
/// for [`VirtioNet::flush`], so the device starts on a long burst early.
pub const FLUSH_BATCH: usize = 16;

const QUEUE_RECEIVE: u16 = 0;
const QUEUE_TRANSMIT: u16 = 1;

/// The device has a MAC address in its configuration space.
const FEATURE_MAC: u64 = 1 << 5;
/// virtio 1.x (the modern interface), which the PCI transport requires.
const FEATURE_VERSION_1: u64 = 1 << 32;

const VENDOR_CAPABILITY: u8 = 0x09;
const COMMON_CONFIGURATION: u8 = 1;
const NOTIFY_CONFIGURATION: u8 = 2;
const ISR_CONFIGURATION: u8 = 3;
/// In the common configuration: the queue the next fields are about, and
/// that queue's doorbell index.
const QUEUE_SELECT: u64 = 0x16;
const QUEUE_NOTIFY_OFF: u64 = 0x1e;

/// Whether `function` is a virtio network card.
pub fn is_virtio_net(function: &Function) -> bool {
    function.vendor == VENDOR
        && (function.device == TRANSITIONAL_DEVICE || function.device == MODERN_DEVICE)
}

/// The physical address a virtio vendor capability of `cfg_type` points
/// to (its BAR plus offset, when the BAR is memory and holds the offset),
/// and the capability's offset in configuration space.
fn vendor_capability(address: PciAddress, cfg_type: u8) -> Option<(u64, u16)> {
    pci::capabilities(address)
        .filter(|capability| capability.id == VENDOR_CAPABILITY)
        .find_map(|capability| {
            let header = pci::read(address, capability.offset);
            if (header >> 24) as u8 != cfg_type {
                return None;
            }
            let bar = pci::read(address, capability.offset + 4) as u8;
            let offset = pci::read(address, capability.offset + 8);
            match pci::bar(address, bar)? {
                Bar::Memory { address, size, .. } if u64::from(offset) < size => {
                    Some((address + u64::from(offset), capability.offset))
                }
                _ => None,
            }
        })
}

/// The physical address of the ISR status byte of the virtio function at
/// `address`: its vendor capability of type 3 names a BAR and an offset.
pub fn isr_status_address(address: PciAddress) -> Option<u64> {
    vendor_capability(address, ISR_CONFIGURATION).map(|(isr, _)| isr)
}

/// Why a card could not be started.
#[derive(Debug)]
pub enum InitError {
    /// The PCI transport found no usable modern capabilities.
    Transport(VirtioPciError),
    /// No notification or common configuration capability in a memory
    /// BAR.
    Capabilities,
    /// The device lacks a feature the driver needs (virtio 1.x, a MAC
    /// address) or refused the features the driver accepted.
    Features,
    /// The device refused the queues.
    Device(virtio_drivers::Error),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Transport(error) => write!(f, "virtio PCI transport: {error}"),
            InitError::Capabilities => {
                write!(f, "no notification or common configuration in a memory BAR")
            }
            InitError::Features => write!(f, "the device lacks virtio 1.x or a MAC address"),
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
}

impl TxBuffer {
    /// The first `len` bytes of the frame area (`len` at most
    /// [`MAX_FRAME_LEN`]).
    pub fn frame_mut(&mut self, len: usize) -> &mut [u8] {
        &mut self.data[HEADER_LEN..HEADER_LEN + len]
    }
}

/// Where a received frame lies in a buffer of `capacity` bytes of which
/// the device wrote `used` (header and frame), or `None` when that length
/// is impossible.
pub fn frame_range(used: usize, capacity: usize) -> Option<Range<usize>> {
    let frame_len = used.checked_sub(HEADER_LEN)?;
    (ETHERNET_HEADER_LEN..=MAX_FRAME_LEN)
        .contains(&frame_len)
        .then_some(HEADER_LEN..used)
        .filter(|_| used <= capacity)
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

/// A queue's doorbell: the virtual address of its 16-bit notification
/// register, mapped uncached.
#[derive(Clone, Copy, Debug)]
struct Doorbell(u64);

impl Doorbell {
    /// Finds and maps the doorbell of `queue`: the notification
    /// capability gives a base and a multiplier, the common configuration
    /// the queue's index (read with the queue selected).
    fn find<H: Hal>(address: PciAddress, queue: u16) -> Option<Doorbell> {
        let (common, _) = vendor_capability(address, COMMON_CONFIGURATION)?;
        let (base, capability) = vendor_capability(address, NOTIFY_CONFIGURATION)?;
        let multiplier = pci::read(address, capability + 16);
        // SAFETY: the common configuration is the device's register block
        // in a memory BAR; the transport is not using it meanwhile.
        let index = unsafe {
            let common = H::mmio_phys_to_virt(common, QUEUE_NOTIFY_OFF as usize + 2);
            let register = |offset: u64| common.as_ptr().add(offset as usize).cast::<u16>();
            register(QUEUE_SELECT).write_volatile(queue);
            register(QUEUE_NOTIFY_OFF).read_volatile()
        };
        let doorbell = base + u64::from(index) * u64::from(multiplier);
        // SAFETY: the doorbell lies in the notification region of a memory
        // BAR (the capability's offset was checked against the BAR's size).
        let mapped = unsafe { H::mmio_phys_to_virt(doorbell, 2) };
        Some(Doorbell(mapped.as_ptr() as u64))
    }

    /// Tells the device that `queue` has new buffers.
    fn ring(self, queue: u16) {
        // SAFETY: `self.0` is the mapped doorbell register of a started
        // device; writing the queue's index there is a notification.
        unsafe { (self.0 as *mut u16).write_volatile(queue) };
    }
}

/// A started virtio-net card and its buffers.
pub struct VirtioNet<H: Hal> {
    transport: PciTransport,
    rx: VirtQueue<H, QUEUE_SIZE>,
    tx: VirtQueue<H, QUEUE_SIZE>,
    rx_doorbell: Doorbell,
    tx_doorbell: Doorbell,
    mac: [u8; 6],
    rx_queued: Slots,
    tx_queued: Slots,
    tx_lengths: [usize; QUEUE_SIZE],
    tx_free: Vec<Box<[u8]>>,
    /// Frames queued since the device was last told.
    tx_unannounced: usize,
}

impl<H: Hal> VirtioNet<H> {
    /// Starts the card at `address` (already enabled for memory decoding
    /// and bus mastering) and fills its receive queue. Boxed: the queues'
    /// bookkeeping is kilobytes, not to be moved around on the stack.
    pub fn new(address: PciAddress) -> Result<Box<Self>, InitError> {
        let mut root = PciRoot::new(pci::PortIo);
        let mut transport = PciTransport::new::<H, _>(&mut root, pci::to_device_function(address))
            .map_err(InitError::Transport)?;
        let rx_doorbell =
            Doorbell::find::<H>(address, QUEUE_RECEIVE).ok_or(InitError::Capabilities)?;
        let tx_doorbell =
            Doorbell::find::<H>(address, QUEUE_TRANSMIT).ok_or(InitError::Capabilities)?;
        negotiate(&mut transport)?;
        let mac = transport
            .read_config_space::<[u8; 6]>(0)
            .map_err(InitError::Device)?;
        let rx = VirtQueue::new(&mut transport, QUEUE_RECEIVE, false, false)
            .map_err(InitError::Device)?;
        let tx = VirtQueue::new(&mut transport, QUEUE_TRANSMIT, false, false)
            .map_err(InitError::Device)?;
        transport.finish_init();
        let mut net = Box::new(VirtioNet {
            transport,
            rx,
            tx,
            rx_doorbell,
            tx_doorbell,
            mac,
            rx_queued: Slots::new(),
            tx_queued: Slots::new(),
            tx_lengths: [0; QUEUE_SIZE],
            tx_free: (0..QUEUE_SIZE)
                .map(|_| vec![0u8; BUFFER_LEN].into_boxed_slice())
                .collect(),
            tx_unannounced: 0,
        });
        for _ in 0..QUEUE_SIZE {
            net.queue_receive(vec![0u8; BUFFER_LEN].into_boxed_slice())
                .map_err(InitError::Device)?;
        }
        net.rx_doorbell.ring(QUEUE_RECEIVE);
        Ok(net)
    }

    /// The card's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn queue_receive(&mut self, mut buffer: Box<[u8]>) -> Result<(), virtio_drivers::Error> {
        // SAFETY: the buffer moves into `rx_queued` and is not touched
        // until the device returns its token.
        let token = unsafe { self.rx.add(&[], &mut [&mut buffer[..]])? };
        self.rx_queued.put(token, buffer);
        Ok(())
    }

    /// The next frame the device received, if any.
    pub fn receive(&mut self) -> Option<Received> {
        let token = self.rx.peek_used()?;
        let mut buffer = self.rx_queued.take(token);
        // SAFETY: `buffer` is the one queued under `token`.
        let used = unsafe { self.rx.pop_used(token, &[], &mut [&mut buffer[..]]) };
        let frame = used
            .ok()
            .and_then(|used| frame_range(used as usize, buffer.len()));
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
        // Only a device that ran out of buffers waits to be told.
        if wants_notification(&self.rx) {
            self.rx_doorbell.ring(QUEUE_RECEIVE);
        }
    }

    /// Takes back the buffers of completed transmissions.
    fn reclaim(&mut self) {
        while let Some(token) = self.tx.peek_used() {
            let buffer = self.tx_queued.take(token);
            let len = self.tx_lengths[usize::from(token)];
            // SAFETY: `buffer[..len]` is what was queued under `token`.
            let completed = unsafe { self.tx.pop_used(token, &[&buffer[..len]], &mut []) };
            debug_assert!(completed.is_ok(), "transmit completion: {completed:?}");
            self.tx_free.push(buffer);
        }
    }

    /// Whether a frame can be queued now (after taking back completed
    /// transmissions).
    pub fn can_transmit(&mut self) -> bool {
        self.reclaim();
        !self.tx_free.is_empty()
    }

    /// A free transmit buffer, or `None` while all are queued.
    pub fn tx_buffer(&mut self) -> Option<TxBuffer> {
        if !self.can_transmit() {
            return None;
        }
        self.tx_free.pop().map(|data| TxBuffer { data })
    }

    /// Queues the first `len` bytes of `buffer`'s frame area; the device
    /// hears of it at the next [`VirtioNet::flush`] (or at once when
    /// [`FLUSH_BATCH`] frames are waiting). Returns whether the queue took
    /// it (it always has room for a buffer lent by
    /// [`VirtioNet::tx_buffer`]).
    pub fn submit(&mut self, mut buffer: TxBuffer, len: usize) -> bool {
        let total = HEADER_LEN + len.min(MAX_FRAME_LEN);
        buffer.data[..HEADER_LEN].fill(0);
        // SAFETY: the buffer moves into `tx_queued` and is not touched
        // until the device returns its token.
        match unsafe { self.tx.add(&[&buffer.data[..total]], &mut []) } {
            Ok(token) => {
                self.tx_lengths[usize::from(token)] = total;
                self.tx_queued.put(token, buffer.data);
                self.tx_unannounced += 1;
                if self.tx_unannounced >= FLUSH_BATCH {
                    self.flush();
                }
                true
            }
            Err(_) => {
                self.tx_free.push(buffer.data);
                false
            }
        }
    }

    /// Whether queued frames are not sent yet (after taking back the
    /// buffers of completed transmissions).
    pub fn transmitting(&mut self) -> bool {
        self.reclaim();
        self.tx_free.len() < QUEUE_SIZE
    }

    /// Whether frames were queued that the device has not been told of.
    pub fn needs_flush(&self) -> bool {
        self.tx_unannounced > 0
    }

    /// Tells the device of the frames queued since the last time, unless
    /// it is already working through the ring (then it finds them).
    pub fn flush(&mut self) {
        if self.tx_unannounced > 0 {
            self.tx_unannounced = 0;
            if wants_notification(&self.tx) {
                self.tx_doorbell.ring(QUEUE_TRANSMIT);
            }
        }
    }
}

impl<H: Hal> Drop for VirtioNet<H> {
    fn drop(&mut self) {
        // The device must stop using the rings before they are freed.
        self.transport.queue_unset(QUEUE_RECEIVE);
        self.transport.queue_unset(QUEUE_TRANSMIT);
    }
}

/// Whether the device asks to be told of new buffers on `queue`. The
/// fence orders the queue's new available index before the read of the
/// device's flag: otherwise the device could clear its flag, look at the
/// ring and miss the buffer, while this read still saw the flag set.
fn wants_notification<H: Hal>(queue: &VirtQueue<H, QUEUE_SIZE>) -> bool {
    fence(Ordering::SeqCst);
    queue.should_notify()
}

/// Feature negotiation (virtio 3.1.1): virtio 1.x and the MAC address,
/// nothing else (no offloads, no event indices: see the module
/// documentation).
fn negotiate(transport: &mut PciTransport) -> Result<(), InitError> {
    transport.set_status(DeviceStatus::empty());
    transport.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
    let wanted = FEATURE_VERSION_1 | FEATURE_MAC;
    if transport.read_device_features() & wanted != wanted {
        transport.set_status(DeviceStatus::FAILED);
        return Err(InitError::Features);
    }
    transport.write_driver_features(wanted);
    let accepted = DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK;
    transport.set_status(accepted);
    if !transport.get_status().contains(DeviceStatus::FEATURES_OK) {
        transport.set_status(DeviceStatus::FAILED);
        return Err(InitError::Features);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_lies_after_the_virtio_header() {
        assert_eq!(frame_range(12 + 60, BUFFER_LEN), Some(12..72));
        assert_eq!(
            frame_range(BUFFER_LEN, BUFFER_LEN),
            Some(12..12 + MAX_FRAME_LEN)
        );
    }

    #[test]
    fn impossible_lengths_are_malformed() {
        assert_eq!(
            frame_range(12 + 13, BUFFER_LEN),
            None,
            "shorter than a header"
        );
        assert_eq!(
            frame_range(12 + MAX_FRAME_LEN + 1, BUFFER_LEN + 1),
            None,
            "over MTU"
        );
        assert_eq!(frame_range(1000, 999), None, "beyond the buffer");
        assert_eq!(
            frame_range(5, BUFFER_LEN),
            None,
            "shorter than the virtio header"
        );
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
