//! Interrupt events: how an interrupt handler tells the event loop that
//! something happened, without allocating, locking or touching a waker.
//!
//! Each source has a bit in one atomic word. A handler sets its bit
//! ([`raise`]); the loop takes the whole word ([`take`]) in task context and
//! wakes whoever waits on those sources. [`wait_for_interrupt`] closes the
//! race between "nothing pending" and `hlt`: it checks with interrupts
//! disabled, and `sti; hlt` executes as one step (an interrupt arriving
//! after `sti` is taken only once `hlt` has started, and ends it).

use core::sync::atomic::{AtomicU32, Ordering};
use x86_64::instructions::interrupts;

/// The alarm fired (LAPIC timer or PIT).
pub const ALARM: u32 = 1 << 0;
/// The serial port received bytes.
pub const SERIAL_INPUT: u32 = 1 << 1;

static PENDING: AtomicU32 = AtomicU32::new(0);

/// Marks `events` as pending. Safe from interrupt handlers.
pub fn raise(events: u32) {
    PENDING.fetch_or(events, Ordering::Release);
}

/// Takes and clears every pending event.
pub fn take() -> u32 {
    PENDING.swap(0, Ordering::Acquire)
}

/// Whether any event is pending.
pub fn any_pending() -> bool {
    PENDING.load(Ordering::Acquire) != 0
}

/// Halts until an interrupt arrives, unless an event is already pending.
/// Returns with interrupts enabled.
pub fn wait_for_interrupt() {
    interrupts::disable();
    if any_pending() {
        interrupts::enable();
    } else {
        interrupts::enable_and_hlt();
    }
}
