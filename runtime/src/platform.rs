//! Platforms: what the event loop needs from the machine.
//!
//! The loop needs three things: the time, a way to wait until a deadline or
//! until something external happens, and a seed for its random choices. That
//! is the whole [`Platform`] trait, so the same loop runs on bare metal (the
//! kernel implements it with the TSC, a one-shot timer and `hlt`), on the
//! host in real time ([`RealTime`]) and on the host in simulated time
//! ([`Simulated`]).
//!
//! # Implementing `wait` on bare metal
//!
//! ```text
//! fn wait(&mut self, deadline: Option<Instant>, events: &Events<'_>) {
//!     cli();
//!     if events.pending() { sti(); return; }   // raised before we looked
//!     if let Some(d) = deadline { arm_one_shot(d); }
//!     sti_hlt();                                // atomic: sti; hlt
//! }
//! ```
//!
//! `wait` may return early (spuriously): the loop just looks again.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

use crate::executor::Core;

#[cfg(feature = "std")]
mod real;
#[cfg(feature = "std")]
mod sim;

#[cfg(feature = "std")]
pub use real::RealTime;
#[cfg(feature = "std")]
pub use sim::Simulated;

/// A point in time: nanoseconds since the platform's epoch (usually boot).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The platform's epoch.
    pub const ZERO: Instant = Instant(0);

    /// The instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time since the epoch.
    pub const fn since_epoch(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the end of time instead of overflowing.
    fn add(self, d: Duration) -> Instant {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }
}

impl Sub for Instant {
    type Output = Duration;

    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    /// Seconds with nanoseconds, like the console's timestamps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}s",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

/// The machine under the event loop.
pub trait Platform {
    /// The current time. Monotonic.
    fn now(&mut self) -> Instant;

    /// Waits until `deadline` (if any) or until an external event, whichever
    /// comes first. Called only when no task is runnable.
    ///
    /// To not lose a wakeup, check [`Events::pending`] in the same atomic
    /// step as starting to wait (on bare metal: with interrupts disabled,
    /// then `sti; hlt`), and return at once if it is true.
    fn wait(&mut self, deadline: Option<Instant>, events: &Events<'_>);

    /// A seed for the runtime's random choices.
    fn seed(&mut self) -> u64;
}

/// What the event loop would handle if the platform stopped waiting.
pub struct Events<'a> {
    core: &'a Core,
}

impl<'a> Events<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Events { core }
    }

    /// Whether an external event (a raised [`crate::InterruptSignal`] a task
    /// waits for, or a waker woken on another thread) is waiting to be
    /// handled. Reads atomics only; call it with interrupts disabled.
    pub fn pending(&self) -> bool {
        self.core.events_pending()
    }
}
