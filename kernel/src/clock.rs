//! The monotonic clock: nanoseconds since kernel entry, read from the TSC.
//!
//! At entry the kernel records the TSC (time zero) and then learns the TSC's
//! rate: from CPUID leaf 0x15 when the CPU states it, otherwise against the
//! PIT. The PIT's channel 2 starts counting down at entry ([`PitWindow`])
//! and the rate is taken once the early boot work is done, so calibration
//! overlaps boot instead of adding to it. Each end of the window is a
//! [`PitSample`]: the PIT count latched between two TSC reads, the tightest
//! of several attempts, so a host that deschedules the guest anywhere but
//! inside the winning bracket cannot skew the rate (waiting for the PIT's
//! output edge instead would be skewed by any preemption at the edge). Reading the clock is one `rdtsc`
//! and an exact conversion (whole seconds, then the remainder), so it does
//! not drift however long the unikernel runs; a fixed-point factor would be
//! cheaper but loses tens of microseconds a day.

use core::sync::atomic::{AtomicU64, Ordering};
use unikit_drivers::{pit, tsc};

/// The shortest PIT window calibration uses: with samples bracketed to a
/// few microseconds, the rate is within about 0.1%.
pub const CALIBRATION_MICROS: u32 = 5_000;
/// Attempts per sample; the one with the tightest TSC bracket is kept.
const SAMPLE_ATTEMPTS: usize = 8;

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

/// Makes `entry_tsc` time zero and learns the TSC rate, closing `window`
/// (opened at entry) when CPUID does not state the rate. Call once, early,
/// with interrupts disabled.
pub fn init(entry_tsc: u64, window: PitWindow) -> Calibration {
    BOOT_TSC.store(entry_tsc, Ordering::Relaxed);
    let calibration = match tsc::frequency_from_cpuid() {
        Some(tsc_hz) => Calibration {
            tsc_hz,
            source: RateSource::Cpuid,
        },
        None => Calibration {
            tsc_hz: measure_tsc_rate(window, CALIBRATION_MICROS),
            source: RateSource::Pit,
        },
    };
    TSC_HZ.store(calibration.tsc_hz, Ordering::Relaxed);
    calibration
}

/// A reading of some clock taken together with the PIT's count.
#[derive(Clone, Copy, Debug)]
pub struct PitSample {
    /// The other clock: the midpoint of the two reads around the PIT read.
    pub clock: u64,
    /// The PIT's channel 2 count.
    pub count: u16,
}

/// Reads the PIT count between two reads of `clock`, several times, and
/// keeps the attempt whose two `clock` reads were closest.
pub fn sample_pit(clock: impl Fn() -> u64) -> PitSample {
    let mut best = (u64::MAX, PitSample { clock: 0, count: 0 });
    for _ in 0..SAMPLE_ATTEMPTS {
        let before = clock();
        let count = pit::read_countdown();
        let after = clock();
        let width = after - before;
        if width < best.0 {
            best = (
                width,
                PitSample {
                    clock: before + width / 2,
                    count,
                },
            );
        }
    }
    best.1
}

/// The PIT counting down from a start sample of some clock.
pub struct PitWindow {
    start: PitSample,
}

impl PitWindow {
    /// Restarts the PIT's channel 2 and samples `clock` against it.
    pub fn open(clock: impl Fn() -> u64) -> PitWindow {
        pit::start_countdown();
        PitWindow {
            start: sample_pit(clock),
        }
    }

    /// Waits until at least `micros` (at most about 50 ms) of PIT time have
    /// passed since [`open`](Self::open), then returns how far `clock`
    /// advanced and how many PIT ticks that took. `None` if the countdown
    /// wrapped (the guest was stopped for over 50 ms): open a new window.
    pub fn close(&self, micros: u32, clock: impl Fn() -> u64) -> Option<(u64, u64)> {
        let needed = u64::from(micros) * pit::FREQUENCY_HZ / 1_000_000;
        loop {
            let end = sample_pit(&clock);
            if pit::countdown_wrapped() {
                return None;
            }
            let ticks = u64::from(self.start.count - end.count);
            if ticks >= needed {
                return Some((end.clock - self.start.clock, ticks));
            }
            core::hint::spin_loop();
        }
    }
}

/// The TSC rate over `window` (opened with `tsc::read`), at least `micros`
/// long, reopening windows that wrapped.
pub fn measure_tsc_rate(mut window: PitWindow, micros: u32) -> u64 {
    loop {
        if let Some((tsc_ticks, pit_ticks)) = window.close(micros, tsc::read) {
            return rate_from_interval(tsc_ticks, pit_ticks);
        }
        window = PitWindow::open(tsc::read);
    }
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

/// The TSC rate implied by `tsc_ticks` elapsing over `pit_ticks`.
pub fn rate_from_interval(tsc_ticks: u64, pit_ticks: u64) -> u64 {
    (u128::from(tsc_ticks) * u128::from(pit::FREQUENCY_HZ) / u128::from(pit_ticks.max(1))) as u64
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
        let pit_ticks = 5_966;
        let tsc_ticks = 2_000_000_000 * pit_ticks / pit::FREQUENCY_HZ;
        let rate = rate_from_interval(tsc_ticks, pit_ticks);
        assert!(rate.abs_diff(2_000_000_000) < 200_000, "{rate}");
    }

    #[test]
    fn uncalibrated_clock_reads_zero() {
        assert_eq!(ticks_to_ns(123_456, 0), 0);
    }
}
