//! Benchmark image for the idle cost: logs `idle starts`, sleeps for the
//! runtime argument `seconds` (default 10) with every task asleep, logs
//! `idle ends` and exits. `kernel-bench` reads QEMU's CPU time at the first
//! line and at exit, so boot is left out of the figure; `alarm=` picks the
//! timer (`lapic` tickless against `tick-1khz`).

#![no_std]
#![no_main]

use unikit_runtime::Error;
use unikit_runtime::devices::{Args, Time};

unikit_kernel::unikernel!("bench-idle", |d| start(d.time, d.args));

async fn start(time: impl Time, args: impl Args) -> Result<(), Error> {
    let seconds: u64 = args.get_parsed("seconds", 10, "a whole number of seconds")?;
    log::info!("idle starts: every task sleeps for {seconds} s");
    time.sleep_ns(seconds * 1_000_000_000).await?;
    log::info!("idle ends");
    Ok(())
}
