//! The tutorial's `heads1`: two threads sleep 1 s and 2 s and print
//! `Heads` and `Tails`; when both are done, `Finished`.

use unikit_runtime::devices::Time;
use unikit_runtime::{Error, join, spawn};

/// The unikernel.
pub async fn start(time: impl Time) -> Result<(), Error> {
    let heads_time = time.clone();
    join([
        spawn(async move {
            heads_time.sleep_ns(1_000_000_000).await?;
            log::info!("Heads");
            Ok(())
        }),
        spawn(async move {
            time.sleep_ns(2_000_000_000).await?;
            log::info!("Tails");
            Ok(())
        }),
    ])
    .await?;
    log::info!("Finished");
    Ok(())
}
