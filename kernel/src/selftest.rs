//! In-guest tests: named checks that run inside QEMU, on the emulated
//! hardware, where host unit tests cannot reach.
//!
//! A test image lists its checks and hands them to [`run`], which prints one
//! line per check and a summary, all in the log line format under the source
//! `selftest`:
//!
//! ```text
//! [    0.004012] INFO [selftest] check tsc_rate_agrees_with_pit ... ok
//! [    0.004518] ERROR [selftest] check heap_round_trip ... FAILED: lost a byte
//! [    0.004600] INFO [selftest] 1 passed, 1 failed
//! ```
//!
//! [`run`] returns an error when any check failed, so the image exits with
//! status 1 and the host test that booted it fails. A check that panics or
//! faults ends the image with that fatal report instead; the culprit is the
//! check after the last one printed.

pub mod checks;

use alloc::string::String;
use core::fmt;

/// A named in-guest check.
pub struct Check {
    /// The check's name, printed on its line.
    pub name: &'static str,
    /// The check: `Err` carries what went wrong.
    pub run: fn() -> Result<(), String>,
}

/// How many checks failed, out of how many.
#[derive(Debug)]
pub struct Failures {
    /// Checks that returned an error.
    pub failed: usize,
    /// Checks run.
    pub total: usize,
}

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} in-guest checks failed",
            self.failed, self.total
        )
    }
}

/// Runs every check in order and prints the results.
pub fn run(checks: &[Check]) -> Result<(), Failures> {
    let mut failed = 0;
    for check in checks {
        match (check.run)() {
            Ok(()) => log::info!(target: "selftest", "check {} ... ok", check.name),
            Err(why) => {
                failed += 1;
                log::error!(target: "selftest", "check {} ... FAILED: {why}", check.name);
            }
        }
    }
    log::info!(target: "selftest", "{} passed, {} failed", checks.len() - failed, failed);
    if failed == 0 {
        Ok(())
    } else {
        Err(Failures {
            failed,
            total: checks.len(),
        })
    }
}

/// Fails a check with a formatted message unless `condition` holds.
#[macro_export]
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(alloc::format!($($message)+));
        }
    };
}
