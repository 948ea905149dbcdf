//! The wall clock: the CMOS RTC read once at boot, advanced by the
//! monotonic clock. The RTC counts whole seconds, so the wall clock is
//! within a second of true at boot and then as good as the TSC.

use crate::clock;
use core::sync::atomic::{AtomicU64, Ordering};
use unikit_drivers::rtc;

/// Unix time, in nanoseconds, of kernel entry.
static BOOT_UNIX_NANOS: AtomicU64 = AtomicU64::new(0);

/// Reads the RTC. Call once at boot, after the clock is calibrated.
pub fn init() {
    let unix_nanos = rtc::read().unix_seconds() * 1_000_000_000;
    BOOT_UNIX_NANOS.store(
        unix_nanos.saturating_sub(clock::now_ns()),
        Ordering::Relaxed,
    );
}

/// Nanoseconds since 1970-01-01T00:00:00Z.
pub fn now_unix_ns() -> u64 {
    BOOT_UNIX_NANOS.load(Ordering::Relaxed) + clock::now_ns()
}
