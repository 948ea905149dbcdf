//! The event loop's platform on bare metal.
//!
//! The runtime's loop ([`unikit_runtime::Runtime`]) runs tasks until none
//! is runnable, then calls [`Platform::wait`] with its earliest timer. Here
//! that is the whole of idling: with interrupts disabled, return at once if
//! an interrupt signal a task waits on was raised; otherwise program the
//! one-shot alarm for the deadline ([`alarm`]) and execute `sti; hlt` as one
//! step, so no interrupt can slip in between the check and the halt. The CPU
//! sleeps until the alarm or a device interrupt; nothing ticks in between.

use crate::{alarm, clock, random};
use unikit_runtime::{Events, Instant, Platform};
use x86_64::instructions::interrupts;

/// The TSC clock, the one-shot alarm and `hlt`.
#[derive(Debug, Default)]
pub struct BareMetal;

impl Platform for BareMetal {
    fn now(&mut self) -> Instant {
        Instant::from_nanos(clock::now_ns())
    }

    fn wait(&mut self, deadline: Option<Instant>, events: &Events<'_>) {
        interrupts::disable();
        if events.pending() {
            interrupts::enable();
            return;
        }
        match deadline {
            Some(deadline) if !alarm::arm(deadline.as_nanos()) => {
                interrupts::enable();
                return;
            }
            Some(_) => {}
            None => alarm::disarm(),
        }
        interrupts::enable_and_hlt();
    }

    fn seed(&mut self) -> u64 {
        let mut seed = [0u8; 8];
        random::fill_bytes(&mut seed);
        u64::from_le_bytes(seed)
    }
}
