//! Real time on the host.

use std::time::Duration;

use super::{Events, Instant, Platform};
use crate::foreign::NOTIFIER;

/// The host's monotonic clock; waits block the thread (on a condition
/// variable that [`crate::InterruptSignal::raise`] and wakers woken on other
/// threads notify).
#[derive(Debug)]
pub struct RealTime {
    epoch: std::time::Instant,
    seed: u64,
}

impl RealTime {
    /// A clock whose epoch is now; random choices seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        RealTime {
            epoch: std::time::Instant::now(),
            seed,
        }
    }
}

impl Default for RealTime {
    fn default() -> Self {
        RealTime::new(0)
    }
}

impl Platform for RealTime {
    fn now(&mut self) -> Instant {
        Instant::from_nanos(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn wait(&mut self, deadline: Option<Instant>, events: &Events<'_>) {
        let timeout = deadline.map(|d| d.saturating_duration_since(self.now()));
        if timeout == Some(Duration::ZERO) {
            return;
        }
        NOTIFIER.wait(timeout, || events.pending());
    }

    fn seed(&mut self) -> u64 {
        self.seed
    }
}
