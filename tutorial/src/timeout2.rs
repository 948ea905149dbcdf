//! The tutorial's `timeout2`: `timeout` with `pick`, so it returns as soon
//! as the thread does, and at 2 s at the latest (the loser is canceled).

use crate::timeout1::{heads_after_random_delay, report};
use core::time::Duration;
use rand_core::Rng;
use unikit_runtime::devices::Time;
use unikit_runtime::{Error, Promise, pick, spawn};

/// `Some(value)` as soon as `t` resolves, or `None` after `delay`; whichever
/// loses is canceled.
pub async fn timeout<T: 'static>(
    time: impl Time,
    delay: Duration,
    t: Promise<T>,
) -> Result<Option<T>, Error> {
    let expired = spawn(async move {
        time.sleep_ns(delay.as_nanos() as u64).await?;
        Ok(None)
    });
    let returned = spawn(async move { t.await.map(Some) });
    pick([expired, returned]).await
}

/// The unikernel.
pub async fn start(time: impl Time, mut random: impl Rng) -> Result<(), Error> {
    let t = heads_after_random_delay(time.clone(), &mut random);
    report("timeout2", timeout(time, Duration::from_secs(2), t).await?);
    Ok(())
}
