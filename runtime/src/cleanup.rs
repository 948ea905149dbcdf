//! Handling rejections and cleaning up (Lwt's `catch` and `finalize`).
//!
//! With `async`/`.await`, most of what Lwt's combinators do is a `match` on
//! the awaited `Result`. These two remain as functions because they name
//! common patterns:
//!
//! * [`catch`] turns a rejection into whatever its handler resolves with;
//! * [`finalize`] runs a cleanup after a future resolves, whatever the
//!   outcome: fulfilled, rejected or canceled. If the cleanup fails, its
//!   error replaces the result (as an exception raised in Lwt's finalizer
//!   does).
//!
//! Lwt's versions take thunks so that exceptions raised while *creating*
//! the promise are caught too; Rust futures do nothing until polled, so a
//! future is enough. The cleanup runs shielded from cancellation
//! ([`crate::no_cancel`]): canceling a task while it cleans up does not
//! interrupt the cleanup (in Lwt it would cancel the cleanup's promise).

use core::future::IntoFuture;

use crate::Error;
use crate::cancel::no_cancel;

/// Awaits `future`; if it is rejected, awaits `handler(error)` instead
/// (Lwt's `catch`).
pub async fn catch<F, H, G, T>(future: F, handler: H) -> Result<T, Error>
where
    F: IntoFuture<Output = Result<T, Error>>,
    H: FnOnce(Error) -> G,
    G: IntoFuture<Output = Result<T, Error>>,
{
    match future.await {
        Ok(v) => Ok(v),
        Err(e) => handler(e).await,
    }
}

/// Awaits `future`, then `cleanup()` whatever the outcome; returns the
/// future's result unless the cleanup fails (Lwt's `finalize`).
pub async fn finalize<F, C, G, T>(future: F, cleanup: C) -> Result<T, Error>
where
    F: IntoFuture<Output = Result<T, Error>>,
    C: FnOnce() -> G,
    G: IntoFuture<Output = Result<(), Error>>,
{
    let result = future.await;
    no_cancel(cleanup()).await?;
    result
}
