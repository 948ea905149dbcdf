//! The network device: the first virtio-net card on PCI, as the runtime's
//! [`Net`].
//!
//! Nothing happens at boot. The first [`open`] (through
//! `Devices::net`) finds the card ([`pci::find`], stopping at the first
//! virtio-net function), enables it, starts it with
//! [`unikit_drivers::virtio_net`] over [`KernelHal`], routes its INTx line
//! and logs one line saying what it found. Later calls return the same
//! handle, or the same error (with no card, one that says to boot with
//! `--net user`).
//!
//! # Interrupts and wakeups
//!
//! The card's interrupt handler ([`crate::interrupts`]) reads the ISR
//! status byte, mapped at start and kept in [`ISR_STATUS`] (a plain atomic,
//! no lock), which acknowledges the device and lowers its level-triggered
//! line; then it raises [`events::NET`] and signals end-of-interrupt.
//!
//! In task context, [`KernelNet::poll_receive`] and
//! [`KernelNet::poll_transmit_ready`] first look at the device (a used
//! receive buffer; a free transmit buffer, after taking back completed
//! ones). Only when there is nothing do they keep the caller's waker (one
//! receiving and one sending waiter) and poll a `Raised` future of
//! `events::NET.wait()` with the device's own waker, which wakes both
//! waiters. If the signal was already raised the poll resolves, and they
//! look at the device again; otherwise the event loop wakes the waiters
//! when the next interrupt raises it. So an interrupt between looking and
//! waiting is never lost, and neither waiter can steal the other's wakeup.
//!
//! # Telling the card about frames
//!
//! A notification is a register write, which under QEMU can wait behind
//! QEMU's own thread for tens of microseconds, so frames are announced in
//! batches ([`VirtioNet::flush`]). [`KernelNet::transmit`] only queues a
//! frame and wakes the doorbell task ([`ring_doorbell`], spawned with the
//! card); the event loop runs it after the tasks already woken (the
//! stack's runner is usually in the middle of sending several frames), and
//! it announces everything queued by then with one write. The driver also
//! announces on its own once [`virtio_net::FLUSH_BATCH`] frames wait. When
//! the unikernel exits, the event loop drops the doorbell task, which rings
//! a last time and gives the card a moment to send what is still queued.
//!
//! # Buffers and locking
//!
//! The device and its counters live behind one spin lock that only task
//! code takes, never with user code running under it: [`KernelNet::transmit`]
//! borrows a transmit buffer under the lock, lets the caller fill it without
//! the lock, and queues it under the lock again; a received frame
//! ([`KernelRxFrame`]) owns its buffer and gives it back to the receive
//! ring when dropped. DMA buffers are heap memory, which lies in the
//! linear mapping of physical memory and so is physically contiguous;
//! [`KernelHal`] translates through the page tables and checks both ends.

use crate::{apic, clock, events, memory};
use alloc::alloc::{alloc_zeroed, dealloc};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec;
use core::alloc::Layout;
use core::future::{Future, poll_fn};
use core::ops::Deref;
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use spin::mutex::SpinMutex;
use unikit_drivers::pci;
use unikit_drivers::virtio_net::{self, Received, RxBuffer, VirtioNet};
use unikit_runtime::devices::net::{MacAddress, Net, NetStats};
use unikit_runtime::signal::Raised;
use unikit_runtime::{Builder, Error};
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};

/// The virtual address of the card's ISR status byte (0 before start).
static ISR_STATUS: AtomicU64 = AtomicU64::new(0);

/// The card, once the first [`open`] looked for it (leaked: it lives as
/// long as the kernel).
static NET: spin::Once<Result<&'static Shared, String>> = spin::Once::new();

/// Acknowledges the card's interrupt by reading its ISR status byte, which
/// resets it and lowers the INTx line. For the interrupt handler: no lock,
/// no allocation.
pub fn acknowledge_interrupt() {
    let isr = ISR_STATUS.load(Ordering::Acquire);
    if isr != 0 {
        // SAFETY: `isr` is the uncached mapping of the card's ISR status
        // byte, set once the card was started; reading it is how a virtio
        // driver acknowledges an interrupt.
        unsafe { core::ptr::read_volatile(isr as *const u8) };
    }
}

/// DMA memory and device registers for `virtio-drivers`.
#[derive(Debug)]
pub struct KernelHal;

fn dma_layout(pages: usize) -> Option<Layout> {
    Layout::from_size_align(pages.checked_mul(PAGE_SIZE)?.max(PAGE_SIZE), PAGE_SIZE).ok()
}

/// The physical address of a buffer the device will read or write, which
/// must be physically contiguous (heap memory is).
fn physical(virt: u64, len: usize) -> PhysAddr {
    let start = memory::virt_to_phys(virt).expect("DMA buffers are mapped memory");
    if let Some(last) = (len as u64).checked_sub(1).filter(|&last| last > 0) {
        let end = memory::virt_to_phys(virt + last).expect("DMA buffers are mapped memory");
        assert_eq!(
            end.wrapping_sub(start),
            last,
            "DMA buffer not physically contiguous"
        );
    }
    start
}

// SAFETY: `dma_alloc` returns zeroed, page-aligned heap memory, which the
// linear mapping makes physically contiguous, and its physical address
// (0 when the heap is exhausted, which `virtio-drivers` reports as a DMA
// error); `share` returns a buffer's physical address after checking it
// is contiguous; `mmio_phys_to_virt` maps device registers uncached.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let allocation = dma_layout(pages).and_then(|layout| {
            // SAFETY: the layout's size is at least one page.
            NonNull::new(unsafe { alloc_zeroed(layout) })
                .map(|pointer| (physical(pointer.as_ptr() as u64, layout.size()), pointer))
        });
        allocation.unwrap_or((0, NonNull::dangling()))
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let layout = dma_layout(pages).expect("the layout `dma_alloc` used");
        // SAFETY: `vaddr` came from `dma_alloc` with this many pages.
        unsafe { dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let virt = memory::map_mmio(paddr, size as u64).unwrap_or_else(|error| {
            panic!("net: cannot map the card's registers at {paddr:#x}: {error:?}")
        });
        NonNull::new(virt as *mut u8).expect("a mapping is never at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        physical(buffer.cast::<u8>().as_ptr() as u64, buffer.len())
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// The device, its counters and its waiters.
struct State {
    device: Box<VirtioNet<KernelHal>>,
    stats: NetStats,
    /// The pending wait for the card's interrupt signal, if any.
    signal: Option<Raised>,
    receiver: Option<Waker>,
    sender: Option<Waker>,
    /// The doorbell task, while it waits for frames to announce.
    doorbell: Option<Waker>,
}

impl State {
    /// Waits for the card's signal on behalf of the waiters; `true` if it
    /// was already raised (so the device has news to look at).
    fn signal_raised(&mut self, wake_waiters: &Waker) -> bool {
        let raised = self.signal.get_or_insert_with(|| events::NET.wait());
        match Pin::new(raised).poll(&mut Context::from_waker(wake_waiters)) {
            Poll::Ready(outcome) => {
                self.signal = None;
                outcome.is_ok()
            }
            Poll::Pending => false,
        }
    }
}

/// Keeps `waker` in `slot`; returns the waker it replaces, to be dropped
/// once the lock is released (dropping a task's last waker may drop the
/// task, and with it a frame whose drop takes the lock).
#[must_use]
fn keep_waker(slot: &mut Option<Waker>, waker: &Waker) -> Option<Waker> {
    match slot {
        Some(kept) if kept.will_wake(waker) => None,
        _ => slot.replace(waker.clone()),
    }
}

struct Shared {
    state: SpinMutex<State>,
    /// Wakes both waiters; the waker the signal wait is polled with.
    wake_waiters: Waker,
    mac: MacAddress,
}

/// The waker of the card's signal wait: wakes whoever waits to receive or
/// to send (in task context: the event loop calls it).
struct WakeWaiters;

impl Wake for WakeWaiters {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(Ok(shared)) = NET.get() {
            let (receiver, sender) = {
                let mut state = shared.state.lock();
                (state.receiver.take(), state.sender.take())
            };
            receiver.into_iter().chain(sender).for_each(Waker::wake);
        }
    }
}

/// A handle on the network card. Copies share the one card.
#[derive(Clone, Copy)]
pub struct KernelNet {
    shared: &'static Shared,
}

impl core::fmt::Debug for KernelNet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KernelNet")
            .field("mac", &format_mac(self.shared.mac))
            .finish()
    }
}

/// The card, started on the first call (see the module documentation).
pub fn open() -> Result<KernelNet, Error> {
    match NET.call_once(start) {
        Ok(shared) => Ok(KernelNet { shared }),
        Err(message) => Err(Error::msg(message.clone())),
    }
}

fn format_mac(mac: MacAddress) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

fn start() -> Result<&'static Shared, String> {
    let function = pci::find(virtio_net::is_virtio_net).ok_or_else(|| {
        "no network card: boot with `--net user` (or `--net tap`) to give the unikernel a \
         virtio-net NIC"
            .to_string()
    })?;
    let address = function.address;
    let name = format!(
        "virtio-net at {:02x}:{:02x}.{}",
        address.bus(),
        address.device(),
        address.function()
    );
    let interrupt =
        pci::interrupt(address).ok_or_else(|| format!("{name}: no INTx line was routed"))?;
    let isr = virtio_net::isr_status_address(address)
        .ok_or_else(|| format!("{name}: no ISR status register in a memory BAR"))?;
    let isr = memory::map_mmio(isr, 1)
        .map_err(|error| format!("{name}: cannot map the ISR status register: {error:?}"))?;
    pci::enable(address);
    // The line is routed (level-triggered) before the card starts: a frame
    // that arrives while the receive ring is being filled raises it at
    // once, and an I/O APIC entry still masked and edge-triggered at that
    // moment ignores the rising edge (QEMU's model does), leaving the line
    // high with no interrupt ever delivered, and reception stalled for good.
    // The handler only reads the ISR byte, harmless before the card starts.
    ISR_STATUS.store(isr, Ordering::Release);
    let route = apic::route_pci_irq(interrupt.line, apic::vectors::NET)
        .ok_or_else(|| format!("{name}: no I/O APIC to route IRQ {}", interrupt.line))?;
    let device =
        VirtioNet::<KernelHal>::new(address).map_err(|error| format!("{name}: {error}"))?;
    let mac = device.mac();
    let kind = if function.device == virtio_net::TRANSITIONAL_DEVICE {
        "transitional"
    } else {
        "modern"
    };
    log::info!(
        target: "net",
        "{name} ({kind}), MAC {}, IRQ {} (GSI {}, level, active-{})",
        format_mac(mac),
        interrupt.line,
        route.gsi,
        if route.active_low { "low" } else { "high" },
    );
    let shared: &'static Shared = Box::leak(Box::new(Shared {
        state: SpinMutex::new(State {
            device,
            stats: NetStats::default(),
            signal: None,
            receiver: None,
            sender: None,
            doorbell: None,
        }),
        wake_waiters: Waker::from(Arc::new(WakeWaiters)),
        mac,
    }));
    Builder::new()
        .name("net-doorbell")
        .async_(ring_doorbell(shared));
    Ok(shared)
}

/// The doorbell task: tells the card of the frames queued since it last
/// ran. [`KernelNet::transmit`] wakes it, so it runs once the tasks
/// already woken have run: a burst of frames gets one notification.
async fn ring_doorbell(shared: &'static Shared) -> Result<(), Error> {
    let _last = LastRing(shared);
    poll_fn(|cx| {
        let mut state = shared.state.lock();
        state.device.flush();
        let replaced = keep_waker(&mut state.doorbell, cx.waker());
        drop(state);
        drop(replaced);
        Poll::Pending
    })
    .await
}

/// How long the card may take, when the unikernel exits, to send the
/// frames still queued.
const EXIT_DRAIN_NS: u64 = 200_000_000;

/// Rings the doorbell a last time when the event loop drops the doorbell
/// task (the unikernel is exiting), and waits a little for the card to
/// send what was queued, so that frames queued just before exiting still
/// leave.
struct LastRing(&'static Shared);

impl Drop for LastRing {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.device.flush();
        let deadline = clock::now_ns() + EXIT_DRAIN_NS;
        while state.device.transmitting() && clock::now_ns() < deadline {
            core::hint::spin_loop();
        }
    }
}

/// A received frame, in its receive buffer until dropped.
pub struct KernelRxFrame {
    buffer: Option<RxBuffer>,
    shared: &'static Shared,
}

impl Deref for KernelRxFrame {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.buffer.as_deref().unwrap_or_default()
    }
}

impl Drop for KernelRxFrame {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.shared.state.lock().device.recycle(buffer);
        }
    }
}

impl Net for KernelNet {
    type RxFrame = KernelRxFrame;

    fn mac(&self) -> MacAddress {
        self.shared.mac
    }

    fn mtu(&self) -> usize {
        virtio_net::MTU
    }

    fn stats(&self) -> NetStats {
        self.shared.state.lock().stats
    }

    fn poll_receive(&self, cx: &mut Context<'_>) -> Poll<KernelRxFrame> {
        let mut state = self.shared.state.lock();
        let mut replaced = None;
        let poll = 'look: loop {
            while let Some(received) = state.device.receive() {
                match received {
                    Received::Frame(buffer) => {
                        state.stats.rx_packets += 1;
                        state.stats.rx_bytes += buffer.len() as u64;
                        break 'look Poll::Ready(KernelRxFrame {
                            buffer: Some(buffer),
                            shared: self.shared,
                        });
                    }
                    Received::Malformed => state.stats.rx_dropped += 1,
                }
            }
            replaced = keep_waker(&mut state.receiver, cx.waker()).or(replaced);
            if !state.signal_raised(&self.shared.wake_waiters) {
                break Poll::Pending;
            }
        };
        drop(state);
        drop(replaced);
        poll
    }

    fn poll_transmit_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.state.lock();
        let mut replaced = None;
        let poll = loop {
            if state.device.can_transmit() {
                break Poll::Ready(());
            }
            replaced = keep_waker(&mut state.sender, cx.waker()).or(replaced);
            if !state.signal_raised(&self.shared.wake_waiters) {
                break Poll::Pending;
            }
        };
        drop(state);
        drop(replaced);
        poll
    }

    fn transmit<R>(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R {
        let buffer = if len <= virtio_net::MAX_FRAME_LEN {
            self.shared.state.lock().device.tx_buffer()
        } else {
            None
        };
        let Some(mut buffer) = buffer else {
            self.shared.state.lock().stats.tx_dropped += 1;
            return fill(&mut vec![0; len]);
        };
        let result = fill(buffer.frame_mut(len));
        let mut state = self.shared.state.lock();
        if state.device.submit(buffer, len) {
            state.stats.tx_packets += 1;
            state.stats.tx_bytes += len as u64;
        } else {
            state.stats.tx_dropped += 1;
        }
        let doorbell = if state.device.needs_flush() {
            state.doorbell.take()
        } else {
            None
        };
        drop(state);
        if let Some(doorbell) = doorbell {
            doorbell.wake();
        }
        result
    }
}
