//! The monotonic clock: nanoseconds since kernel entry, read from the TSC.
//!
//! At entry the kernel records the TSC (time zero) and then learns the TSC's
//! rate: from CPUID leaf 0x15 when the CPU states it, otherwise by counting
//! TSC ticks across a known PIT interval. Reading the clock is one `rdtsc`
//! and an exact conversion (whole seconds, then the remainder), so it does
//! not drift however long the unikernel runs; a fixed-point factor would be
//! cheaper but loses tens of microseconds a day.

use core::sync::atomic::{AtomicU64, Ordering};
use unikit_drivers::{pit, tsc};

/// How long each PIT window lasts when CPUID does not give the TSC rate.
pub const CALIBRATION_MICROS: u32 = 2_000;
/// How many PIT windows are measured; the median is kept, so one window
/// stretched by the host descheduling the guest does not skew the rate.
pub const CALIBRATION_WINDOWS: usize = 3;

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
/// The TSC rate. Zero until calibrated, which makes every timestamp before
/// calibration read 0.
static TSC_HZ: AtomicU64 = AtomicU64::new(0);

/// Where the TSC rate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateSource {
    /// CPUID leaf 0x15.
    Cpuid,
    /// Measured across a PIT interval.
    Pit,
}

impl core::fmt::Display for RateSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RateSource::Cpuid => "CPUID",
            RateSource::Pit => "PIT",
        })
    }
}

/// The outcome of calibration, for the boot banner.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// The TSC rate in Hz.
    pub tsc_hz: u64,
    /// How it was learnt.
    pub source: RateSource,
}

/// Makes `entry_tsc` time zero and learns the TSC rate. Call once, early,
/// with interrupts disabled.
pub fn init(entry_tsc: u64) -> Calibration {
    BOOT_TSC.store(entry_tsc, Ordering::Relaxed);
    let calibration = match tsc::frequency_from_cpuid() {
        Some(tsc_hz) => Calibration {
            tsc_hz,
            source: RateSource::Cpuid,
        },
        None => Calibration {
            tsc_hz: measure_against_pit(),
            source: RateSource::Pit,
        },
    };
    TSC_HZ.store(calibration.tsc_hz, Ordering::Relaxed);
    calibration
}

/// The TSC rate in Hz the clock runs on.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Nanoseconds since kernel entry.
pub fn now_ns() -> u64 {
    ticks_to_ns(
        tsc::read().saturating_sub(BOOT_TSC.load(Ordering::Relaxed)),
        TSC_HZ.load(Ordering::Relaxed),
    )
}

/// TSC ticks in `nanos` nanoseconds at the calibrated rate.
pub fn ns_to_ticks(nanos: u64) -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed);
    let seconds = nanos / 1_000_000_000;
    let remainder = nanos % 1_000_000_000;
    seconds * hz + remainder * hz / 1_000_000_000
}

/// The TSC value at kernel entry.
pub fn entry_tsc() -> u64 {
    BOOT_TSC.load(Ordering::Relaxed)
}

/// The TSC rate measured against the PIT: the median of
/// [`CALIBRATION_WINDOWS`] windows of [`CALIBRATION_MICROS`] each.
pub fn measure_against_pit() -> u64 {
    measure_tsc_rate(CALIBRATION_MICROS, CALIBRATION_WINDOWS)
}

/// The median TSC rate over `windows` PIT windows of `micros` each (at most
/// 16 windows). Interrupts must be disabled.
pub fn measure_tsc_rate(micros: u32, windows: usize) -> u64 {
    let ticks = pit::ticks_for_micros(micros);
    let mut rates = [0u64; 16];
    let rates = &mut rates[..windows.clamp(1, 16)];
    for rate in rates.iter_mut() {
        let (start, end) = pit::measure(ticks, tsc::read);
        *rate = rate_from_interval(end - start, ticks);
    }
    median(rates)
}

/// The median of `values` (the upper one of the middle two for an even
/// count), sorting them in place.
pub fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// The TSC rate implied by `tsc_ticks` elapsing over `pit_ticks`.
fn rate_from_interval(tsc_ticks: u64, pit_ticks: u16) -> u64 {
    (u128::from(tsc_ticks) * u128::from(pit::FREQUENCY_HZ) / u128::from(pit_ticks)) as u64
}

/// Converts TSC ticks to nanoseconds at `tsc_hz`, exactly (truncated), for
/// any rate below 18 GHz; 0 while the rate is unknown.
fn ticks_to_ns(ticks: u64, tsc_hz: u64) -> u64 {
    if tsc_hz == 0 {
        return 0;
    }
    let seconds = ticks / tsc_hz;
    let remainder = ticks % tsc_hz;
    seconds * 1_000_000_000 + remainder * 1_000_000_000 / tsc_hz
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_of_ticks_reads_one_second() {
        for hz in [1_000_000_000, 2_111_999_000, 3_400_000_000] {
            let ns = ticks_to_ns(hz, hz);
            assert!(ns == 1_000_000_000, "{hz} Hz: {ns} ns");
        }
    }

    #[test]
    fn a_day_of_ticks_reads_exactly_a_day() {
        let hz = 2_500_000_000u64;
        let day = 86_400u64;
        let ns = ticks_to_ns(hz * day, hz);
        assert_eq!(ns, day * 1_000_000_000);
    }

    #[test]
    fn rate_from_a_pit_interval() {
        let pit_ticks = pit::ticks_for_micros(CALIBRATION_MICROS);
        let tsc_ticks = 2_000_000_000 * u64::from(pit_ticks) / pit::FREQUENCY_HZ;
        let rate = rate_from_interval(tsc_ticks, pit_ticks);
        assert!(rate.abs_diff(2_000_000_000) < 200_000, "{rate}");
    }

    #[test]
    fn median_ignores_one_outlier_window() {
        assert_eq!(median(&mut [2_000, 9_999, 2_001]), 2_001);
        assert_eq!(median(&mut [5]), 5);
        assert_eq!(median(&mut []), 0);
    }

    #[test]
    fn uncalibrated_clock_reads_zero() {
        assert_eq!(ticks_to_ns(123_456, 0), 0);
    }
}
