//! The tutorial's `echo_server`: reads ten lines from the dummy input
//! generator and logs each.

use crate::random_below;
use alloc::string::String;
use rand_core::Rng;
use unikit_runtime::Error;
use unikit_runtime::devices::Time;

/// The tutorial's dummy input generator: sleeps a random 0-2499 ms, then
/// returns a line of 0-19 `a`.
pub async fn read_line(time: &impl Time, random: &mut impl Rng) -> Result<String, Error> {
    let delay_ms = random_below(random, 2500);
    time.sleep_ns(u64::from(delay_ms) * 1_000_000).await?;
    let length = random_below(random, 20) as usize;
    Ok("a".repeat(length))
}

/// The unikernel.
pub async fn start(time: impl Time, mut random: impl Rng) -> Result<(), Error> {
    for _ in 0..10 {
        let line = read_line(&time, &mut random).await?;
        log::info!("{line}");
    }
    Ok(())
}
