//! Interrupt events: how an interrupt handler tells the rest of the kernel
//! that something happened, without allocating, locking or touching a
//! waker.
//!
//! Each source is a runtime [`InterruptSignal`]: a handler raises it (one
//! atomic store); a task awaits it through the event loop, which turns the
//! raise into a wakeup in task context. Code that runs without the event
//! loop (boot, in-guest checks) halts with [`wait_for_interrupt`], which
//! closes the race between "nothing raised" and `hlt`: it checks with
//! interrupts disabled, and `sti; hlt` executes as one step (an interrupt
//! arriving after `sti` is taken only once `hlt` has started, and ends it).

use unikit_runtime::InterruptSignal;
use x86_64::instructions::interrupts;

/// The alarm fired (LAPIC timer or PIT).
pub static ALARM: InterruptSignal = InterruptSignal::new();
/// The serial port received bytes.
pub static SERIAL_INPUT: InterruptSignal = InterruptSignal::new();
/// The network card used some of its buffers (frames received or sent).
pub static NET: InterruptSignal = InterruptSignal::new();

/// Halts until an interrupt arrives, unless an event is already raised.
/// Returns with interrupts enabled.
pub fn wait_for_interrupt() {
    interrupts::disable();
    if ALARM.is_raised() || SERIAL_INPUT.is_raised() {
        interrupts::enable();
    } else {
        interrupts::enable_and_hlt();
    }
}
