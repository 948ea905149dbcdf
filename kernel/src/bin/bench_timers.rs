//! Benchmark image for timer accuracy: sleeps of 1 ms to 1 s, one after the
//! other, each timed on the monotonic clock; logs how late each woke up as
//! percentiles, in one line `kernel-bench` parses:
//!
//! ```text
//! [   25.101234] INFO [bench_timers] lateness over 155 sleeps of 1 ms..1 s: min_ns=... p50_ns=... p99_ns=... max_ns=... intercept_ns=... slope_ppm=...
//! ```
//!
//! `intercept_ns` and `slope_ppm` are the least-squares line through
//! (duration, lateness): a fixed cost per wake-up, and a part that grows
//! with the sleep's length (a timer counting at another rate than the
//! clock it was calibrated against).
//!
//! The durations are the R10 preferred numbers (1, 1.25, 1.6, ... 8) of
//! each decade from 1 ms to 100 ms, and 1 s: log-uniform over the range.
//! Each sleep gets a different sub-millisecond offset, so sleeps do not all
//! start in step with a periodic tick. The runtime argument `passes`
//! (default 5, about 5 s each) sets how many times the list runs; `alarm=`
//! picks the timer. A negative lateness (an early wake-up) would show as a
//! negative minimum.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use unikit_runtime::Error;
use unikit_runtime::devices::{Args, Mclock, Time};

unikit_kernel::unikernel!("bench-timers", |d| start(d.time, d.mclock, d.args));

/// The R10 series in microseconds, for the decade starting at 1 ms.
const R10_US: [u64; 10] = [
    1_000, 1_250, 1_600, 2_000, 2_500, 3_150, 4_000, 5_000, 6_300, 8_000,
];

/// Sleep durations in nanoseconds: 1 ms up to 1 s, log-uniformly.
fn durations_ns() -> impl Iterator<Item = u64> {
    [1, 10, 100]
        .into_iter()
        .flat_map(|decade| R10_US.iter().map(move |us| us * decade * 1_000))
        .chain([1_000_000_000])
}

async fn start(time: impl Time, mclock: impl Mclock, args: impl Args) -> Result<(), Error> {
    let passes: u64 = args.get_parsed("passes", 5, "a whole number of passes")?;
    let mut samples: Vec<(i64, i64)> = Vec::new();
    for pass in 0..passes {
        for (index, duration) in (0u64..).zip(durations_ns()) {
            let offset = (pass * 31 + index) * 137_000 % 1_000_000;
            let duration = duration + offset;
            let before = mclock.elapsed_ns();
            time.sleep_ns(duration).await?;
            let slept = mclock.elapsed_ns() - before;
            samples.push((duration as i64, slept as i64 - duration as i64));
        }
    }
    let (intercept_ns, slope_ppm) = fit(&samples);
    let mut lateness_ns: Vec<i64> = samples.iter().map(|&(_, lateness)| lateness).collect();
    lateness_ns.sort_unstable();
    let count = lateness_ns.len();
    let Some((&min, &max)) = lateness_ns.first().zip(lateness_ns.last()) else {
        return Err(Error::msg("passes=0: nothing to measure"));
    };
    let percentile = |p: usize| lateness_ns[(count * p).div_ceil(100).max(1) - 1];
    log::info!(
        "lateness over {count} sleeps of 1 ms..1 s: min_ns={min} p50_ns={} p99_ns={} max_ns={max} intercept_ns={intercept_ns} slope_ppm={slope_ppm}",
        percentile(50),
        percentile(99)
    );
    Ok(())
}

/// The least-squares line through (duration, lateness) samples, in
/// nanoseconds: its intercept (ns) and slope (ns per second, i.e. ppm).
fn fit(samples: &[(i64, i64)]) -> (i128, i128) {
    let n = samples.len() as i128;
    let (mut sum_d, mut sum_l, mut sum_dd, mut sum_dl) = (0i128, 0i128, 0i128, 0i128);
    for &(duration, lateness) in samples {
        let (d, l) = (i128::from(duration), i128::from(lateness));
        sum_d += d;
        sum_l += l;
        sum_dd += d * d;
        sum_dl += d * l;
    }
    let spread = n * sum_dd - sum_d * sum_d;
    if spread == 0 {
        return (sum_l / n.max(1), 0);
    }
    let slope_ppm = (n * sum_dl - sum_d * sum_l) * 1_000_000 / spread;
    let intercept_ns = (sum_l * 1_000_000 - slope_ppm * sum_d) / (n * 1_000_000);
    (intercept_ns, slope_ppm)
}
