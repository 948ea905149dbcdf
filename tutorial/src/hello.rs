//! MirageOS's `hello`: logs `hello` four times, one second apart.

use unikit_runtime::Error;
use unikit_runtime::devices::Time;

/// Logs `text` four times under the source `source`, sleeping one second
/// after each.
pub async fn greet(time: &impl Time, source: &str, text: &str) -> Result<(), Error> {
    for _ in 0..4 {
        log::info!(target: source, "{text}");
        time.sleep_ns(1_000_000_000).await?;
    }
    Ok(())
}

/// The unikernel.
pub async fn start(time: impl Time) -> Result<(), Error> {
    greet(&time, "hello", "hello").await
}
