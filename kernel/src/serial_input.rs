//! Bytes typed on the serial console, received on IRQ4.
//!
//! The interrupt handler drains the UART's receive FIFO into a ring of
//! [`CAPACITY`] bytes; tasks read from the other end. It is a
//! single-producer single-consumer ring over two atomic indices: the handler
//! only advances `written`, readers only advance `read`, and on one core the
//! handler can interrupt a reader but never the reverse, so neither ever
//! sees a half-updated slot. When the ring is full, further bytes are
//! dropped and counted, never blocking the handler.

use crate::apic::{self, vectors};
use crate::console;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Bytes the ring holds before dropping input.
pub const CAPACITY: usize = 4096;

struct Ring {
    bytes: UnsafeCell<[u8; CAPACITY]>,
    written: AtomicUsize,
    read: AtomicUsize,
    dropped: AtomicU64,
}

// SAFETY: slot `i % CAPACITY` is written only by the producer while
// `written - read < CAPACITY` and before `written` is published past it
// (Release), and read only by the consumer after seeing `written` (Acquire)
// and before publishing `read` past it; there is one producer (the IRQ4
// handler) and one consumer (task context on the only core).
unsafe impl Sync for Ring {}

static RING: Ring = Ring {
    bytes: UnsafeCell::new([0; CAPACITY]),
    written: AtomicUsize::new(0),
    read: AtomicUsize::new(0),
    dropped: AtomicU64::new(0),
};

/// Turns on the UART's receive interrupt and routes IRQ4 to this CPU.
pub fn enable() {
    console::enable_receive_interrupt();
    apic::route_isa_irq(4, vectors::SERIAL);
}

/// Called by the IRQ4 handler: moves every received byte into the ring.
pub fn on_interrupt() {
    console::drain_received(|byte| {
        let written = RING.written.load(Ordering::Relaxed);
        if written - RING.read.load(Ordering::Acquire) >= CAPACITY {
            RING.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // SAFETY: see `impl Sync for Ring`: this slot is free and only the
        // producer writes it.
        unsafe { (*RING.bytes.get())[written % CAPACITY] = byte };
        RING.written.store(written + 1, Ordering::Release);
    });
}

/// Copies received bytes into `buffer`; returns how many (0 if none).
pub fn read(buffer: &mut [u8]) -> usize {
    let read = RING.read.load(Ordering::Relaxed);
    let available = RING.written.load(Ordering::Acquire) - read;
    let count = available.min(buffer.len());
    for (offset, slot) in buffer[..count].iter_mut().enumerate() {
        // SAFETY: see `impl Sync for Ring`: the slot was published by the
        // producer and only the consumer reads it.
        *slot = unsafe { (*RING.bytes.get())[(read + offset) % CAPACITY] };
    }
    RING.read.store(read + count, Ordering::Release);
    count
}

/// Bytes dropped because the ring was full.
pub fn dropped() -> u64 {
    RING.dropped.load(Ordering::Relaxed)
}
