//! Simulated time on the host.

use super::{Events, Instant, Platform};

/// A clock that stands still while tasks run and jumps to the next timer's
/// deadline when every task waits. A run on simulated time takes no real
/// time and, given the seed, always does the same thing.
///
/// # Panics
/// `wait` panics when every task waits, no timer is pending and no event
/// is: nothing could ever happen again (a deadlock).
#[derive(Debug, Clone)]
pub struct Simulated {
    now: Instant,
    seed: u64,
}

impl Simulated {
    /// A clock at time zero; random choices seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Simulated {
            now: Instant::ZERO,
            seed,
        }
    }
}

impl Platform for Simulated {
    fn now(&mut self) -> Instant {
        self.now
    }

    fn wait(&mut self, deadline: Option<Instant>, events: &Events<'_>) {
        if events.pending() {
            return;
        }
        match deadline {
            Some(d) => self.now = self.now.max(d),
            None => panic!("simulated time: every task waits and no timer is pending (deadlock)"),
        }
    }

    fn seed(&mut self) -> u64 {
        self.seed
    }
}
