//! The tutorial's `heads2`: `heads1` written with `both` (Lwt's `<&>`).

use unikit_runtime::devices::Time;
use unikit_runtime::{Error, both, spawn};

/// The unikernel.
pub async fn start(time: impl Time) -> Result<(), Error> {
    let heads_time = time.clone();
    let heads = spawn(async move {
        heads_time.sleep_ns(1_000_000_000).await?;
        log::info!("Heads");
        Ok(())
    });
    let tails = spawn(async move {
        time.sleep_ns(2_000_000_000).await?;
        log::info!("Tails");
        Ok(())
    });
    both(heads, tails).await?;
    log::info!("Finished");
    Ok(())
}
