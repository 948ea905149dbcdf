//! The tutorial's `timeout1`: a thread sleeps a random 0-2999 ms and
//! returns `"Heads"`; after exactly 2 s, `timeout` looks at its state and
//! either cancels it (`Cancelled`) or takes its value (`Returned "Heads"`).

use crate::random_below;
use core::time::Duration;
use rand_core::Rng;
use unikit_runtime::devices::Time;
use unikit_runtime::{Error, Promise, State, spawn};

/// After `delay`, `None` (and `t` canceled) if `t` is still pending, else
/// its value. Always takes exactly `delay`.
pub async fn timeout<T: 'static>(
    time: &impl Time,
    delay: Duration,
    t: Promise<T>,
) -> Result<Option<T>, Error> {
    time.sleep_ns(delay.as_nanos() as u64).await?;
    match t.state() {
        State::Pending => {
            t.cancel();
            Ok(None)
        }
        State::Fulfilled(_) | State::Rejected(_) => t.await.map(Some),
    }
}

/// The thread of both timeout tutorials: `"Heads"` after 0-2999 ms.
pub fn heads_after_random_delay(time: impl Time, random: &mut impl Rng) -> Promise<&'static str> {
    let delay_ms = random_below(random, 3000);
    spawn(async move {
        time.sleep_ns(u64::from(delay_ms) * 1_000_000).await?;
        Ok("Heads")
    })
}

/// Logs the outcome as the tutorial does, under the source `source`.
pub fn report(source: &str, outcome: Option<&str>) {
    match outcome {
        None => log::info!(target: source, "Cancelled"),
        Some(value) => log::info!(target: source, "Returned {value:?}"),
    }
}

/// The unikernel.
pub async fn start(time: impl Time, mut random: impl Rng) -> Result<(), Error> {
    let t = heads_after_random_delay(time.clone(), &mut random);
    report("timeout1", timeout(&time, Duration::from_secs(2), t).await?);
    Ok(())
}
