//! Tickless one-shot alarms: the hardware timer is programmed for the
//! earliest deadline the event loop has, and for nothing else.
//!
//! Three sources, best first; each can be forced with the runtime argument
//! `alarm=tsc-deadline|lapic|pit`, and the test suite boots with each so
//! the fallbacks are exercised:
//!
//! - **TSC deadline**: the local APIC fires when the TSC reaches the value
//!   written to `IA32_TSC_DEADLINE`. Exact, absolute, no conversion beyond
//!   nanoseconds to TSC ticks. Needs CPUID.01H:ECX[24].
//! - **LAPIC one-shot**: the local APIC timer counts down from an initial
//!   count; its rate is measured against the TSC at boot, over the same
//!   stretch of boot as the TSC's own calibration. Relative, and at
//!   most 2^32 counts (over a minute at QEMU's rate), so a longer sleep
//!   wakes early and the loop re-arms.
//! - **PIT**: channel 0 in mode 0 raises IRQ0 (through the I/O APIC, on the
//!   GSI the MADT says) after at most about 55 ms; longer sleeps re-arm.
//!
//! One more mode exists only as the peer of the idle-cost benchmark: with
//! `alarm=tick-1khz` the local APIC timer interrupts every millisecond
//! whatever the deadlines are, as a classic ticking kernel does, and
//! deadlines are noticed at the next tick.
//!
//! Every source raises [`events::ALARM`] and ends a `hlt`; waking early is
//! harmless because the loop compares the clock with its deadlines, never
//! counts interrupts.

use crate::apic::{self, LapicTimerMode, vectors};
use crate::{clock, events};
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use unikit_drivers::{pit, tsc};
use x86_64::registers::model_specific::Msr;

const IA32_TSC_DEADLINE: u32 = 0x6e0;

/// A hardware source of one-shot alarms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AlarmSource {
    /// The local APIC in TSC-deadline mode.
    TscDeadline = 1,
    /// The local APIC timer's one-shot countdown.
    LapicOneShot = 2,
    /// The PIT's channel 0 in mode 0.
    Pit = 3,
    /// A periodic 1 kHz local APIC tick: the benchmark's ticking peer.
    Tick1kHz = 4,
}

impl AlarmSource {
    /// Every source, best first (the periodic tick last: it is never
    /// chosen unless asked for).
    pub const ALL: [AlarmSource; 4] = [
        AlarmSource::TscDeadline,
        AlarmSource::LapicOneShot,
        AlarmSource::Pit,
        AlarmSource::Tick1kHz,
    ];

    /// The name used by the `alarm=` runtime argument.
    pub fn name(self) -> &'static str {
        match self {
            AlarmSource::TscDeadline => "tsc-deadline",
            AlarmSource::LapicOneShot => "lapic",
            AlarmSource::Pit => "pit",
            AlarmSource::Tick1kHz => "tick-1khz",
        }
    }

    /// The source named `name`.
    pub fn from_name(name: &str) -> Option<AlarmSource> {
        Self::ALL.into_iter().find(|source| source.name() == name)
    }

    /// Whether this machine has it.
    pub fn is_available(self) -> bool {
        match self {
            AlarmSource::TscDeadline => tsc::has_deadline_timer(),
            AlarmSource::LapicOneShot | AlarmSource::Pit | AlarmSource::Tick1kHz => true,
        }
    }

    /// The best one-shot source this machine has.
    pub fn best_available() -> AlarmSource {
        Self::ALL
            .into_iter()
            .find(|source| source.is_available())
            .unwrap_or(AlarmSource::Pit)
    }

    /// How the local APIC timer must count for this source.
    pub fn lapic_timer_mode(self) -> LapicTimerMode {
        match self {
            AlarmSource::TscDeadline => LapicTimerMode::TscDeadline,
            AlarmSource::LapicOneShot | AlarmSource::Pit => LapicTimerMode::OneShot,
            AlarmSource::Tick1kHz => LapicTimerMode::Periodic,
        }
    }
}

static SOURCE: AtomicU8 = AtomicU8::new(0);
/// Local APIC timer counts per second (after the divider).
static LAPIC_TIMER_HZ: AtomicU64 = AtomicU64::new(0);

/// The source in use, once [`init`] has run.
pub fn source() -> Option<AlarmSource> {
    match SOURCE.load(Ordering::Relaxed) {
        1 => Some(AlarmSource::TscDeadline),
        2 => Some(AlarmSource::LapicOneShot),
        3 => Some(AlarmSource::Pit),
        4 => Some(AlarmSource::Tick1kHz),
        _ => None,
    }
}

/// Local APIC timer counts per second, as measured at boot.
pub fn lapic_timer_hz() -> u64 {
    LAPIC_TIMER_HZ.load(Ordering::Relaxed)
}

/// An alarm source chosen, waiting for the TSC rate: see [`prepare`].
pub struct Prepared {
    source: AlarmSource,
    lapic_window: Option<LapicWindow>,
}

/// Prepares `source` before the TSC is calibrated (the APIC must be
/// initialised with its timer mode): when the source needs the LAPIC
/// timer's rate, starts the timer counting now, so the measurement runs
/// alongside the TSC's own calibration instead of after it.
pub fn prepare(source: AlarmSource) -> Prepared {
    Prepared {
        source,
        lapic_window: matches!(source, AlarmSource::LapicOneShot | AlarmSource::Tick1kHz)
            .then(LapicWindow::open),
    }
}

/// Starts using the prepared source once the TSC rate is known, finishing
/// the LAPIC timer's rate measurement if it needs one. Returns the source.
pub fn init(prepared: Prepared) -> AlarmSource {
    let Prepared {
        source,
        lapic_window,
    } = prepared;
    if let Some(window) = lapic_window {
        LAPIC_TIMER_HZ.store(window.close(), Ordering::Relaxed);
    }
    if source == AlarmSource::Tick1kHz {
        let period = (lapic_timer_hz() / 1_000).clamp(1, u64::from(u32::MAX)) as u32;
        // SAFETY: periodic mode: the initial count is the tick's period.
        apic::with_local_apic(|local| unsafe { local.set_timer_initial(period) });
    }
    if source == AlarmSource::Pit {
        apic::route_isa_irq(0, vectors::PIT);
    }
    SOURCE.store(source as u8, Ordering::Relaxed);
    source
}

/// The LAPIC timer counting down from its maximum, and where it stood at
/// the start. Its rate is the count read at two moments at least
/// [`LapicWindow::MIN_NANOS`] apart, each read bracketed by two TSC reads
/// and timed at their midpoint (the tightest of several attempts). Under
/// TCG a register access takes tens of microseconds; timing the window from
/// the write of the initial count instead, as a naive measurement does,
/// overstates the rate by about 1%, and every sleep then ends 1% late.
struct LapicWindow {
    start_tsc: u64,
    start_count: u32,
}

impl LapicWindow {
    /// The shortest window: 2 ms.
    const MIN_NANOS: u64 = 2_000_000;
    const ATTEMPTS: usize = 4;

    /// Starts the countdown from the maximum (interrupts must be off).
    fn open() -> LapicWindow {
        apic::with_local_apic(|local| {
            // SAFETY: counting down from the maximum and stopping the timer
            // (initial count 0) before it could reach zero, over a minute
            // later, raises no interrupt, in one-shot and periodic mode alike.
            unsafe { local.set_timer_initial(u32::MAX) };
            let (start_tsc, start_count) = Self::sample(local);
            LapicWindow {
                start_tsc,
                start_count,
            }
        })
        .unwrap_or(LapicWindow {
            start_tsc: tsc::read(),
            start_count: 0,
        })
    }

    /// The TSC (midpoint of the tightest bracket) and the count it read.
    fn sample(local: &x2apic::lapic::LocalApic) -> (u64, u32) {
        let mut best = (u64::MAX, 0u64, 0u32);
        for _ in 0..Self::ATTEMPTS {
            let before = tsc::read();
            // SAFETY: reading the current count has no side effect.
            let count = unsafe { local.timer_current() };
            let after = tsc::read();
            if after - before < best.0 {
                best = (after - before, before + (after - before) / 2, count);
            }
        }
        (best.1, best.2)
    }

    /// Waits out the rest of the shortest window (the TSC must be
    /// calibrated), stops the countdown, and returns the timer's counts per
    /// second.
    fn close(self) -> u64 {
        let min_ticks = clock::ns_to_ticks(Self::MIN_NANOS);
        while tsc::read() - self.start_tsc < min_ticks {
            core::hint::spin_loop();
        }
        apic::with_local_apic(|local| {
            let (end_tsc, end_count) = Self::sample(local);
            // SAFETY: as in `open`: stops the countdown.
            unsafe { local.set_timer_initial(0) };
            let counts = u128::from(self.start_count.saturating_sub(end_count));
            let tsc_ticks = u128::from((end_tsc - self.start_tsc).max(1));
            (counts * u128::from(clock::tsc_hz()) / tsc_ticks) as u64
        })
        .unwrap_or(0)
    }
}

/// Programs the alarm for `deadline_ns` (monotonic) and returns `true`, or
/// returns `false` without arming anything if the deadline has passed (the
/// caller must then not halt). Bounded sources may fire earlier than a far
/// deadline.
pub fn arm(deadline_ns: u64) -> bool {
    let now = clock::now_ns();
    if deadline_ns <= now {
        return false;
    }
    let delay = deadline_ns - now;
    match source() {
        Some(AlarmSource::TscDeadline) => {
            let target = clock::entry_tsc() + clock::ns_to_ticks(deadline_ns);
            let mut msr = Msr::new(IA32_TSC_DEADLINE);
            // SAFETY: the local APIC timer is in TSC-deadline mode (CPUID
            // says the MSR exists); writing a TSC value arms it once.
            unsafe { msr.write(target.max(tsc::read() + 1)) };
        }
        Some(AlarmSource::LapicOneShot) => {
            let counts = u128::from(delay) * u128::from(lapic_timer_hz()) / 1_000_000_000;
            let counts = counts.clamp(1, u128::from(u32::MAX)) as u32;
            // SAFETY: one-shot mode; a new initial count restarts the countdown.
            apic::with_local_apic(|local| unsafe { local.set_timer_initial(counts) });
        }
        Some(AlarmSource::Pit) => pit::start_one_shot(pit::ticks_for_nanos(delay)),
        Some(AlarmSource::Tick1kHz) => {}
        None => return false,
    }
    true
}

/// Cancels the programmed alarm, if the source can (the PIT's one shot is
/// left to fire: a spurious wake-up is harmless).
pub fn disarm() {
    match source() {
        Some(AlarmSource::TscDeadline) => {
            let mut msr = Msr::new(IA32_TSC_DEADLINE);
            // SAFETY: writing 0 disarms the TSC-deadline timer.
            unsafe { msr.write(0) };
        }
        Some(AlarmSource::LapicOneShot) => {
            // SAFETY: an initial count of 0 stops the one-shot timer.
            apic::with_local_apic(|local| unsafe { local.set_timer_initial(0) });
        }
        Some(AlarmSource::Pit | AlarmSource::Tick1kHz) | None => {}
    }
}

/// Sleeps until `deadline_ns` by arming the alarm and halting, without an
/// event loop: for boot-time code and in-guest checks.
pub fn sleep_until(deadline_ns: u64) {
    while arm(deadline_ns) {
        events::wait_for_interrupt();
        events::ALARM.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip_through_their_names() {
        for source in AlarmSource::ALL {
            assert_eq!(AlarmSource::from_name(source.name()), Some(source));
        }
        assert_eq!(AlarmSource::from_name("hpet"), None);
    }
}
