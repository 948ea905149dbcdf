//! Cancellation: how `cancel` reaches the deepest cancelable promise.
//!
//! In Lwt, canceling a promise built with `bind` cancels the promise it
//! waits on, recursively, until a cancelable one (`task`, `sleep`, `pause`)
//! is rejected with `Canceled`; a `wait` promise stops the propagation; the
//! rejection then flows back up as an ordinary failure.
//!
//! In Rust the chain of binds is the stack of futures a task is awaiting,
//! so this runtime delivers a cancellation *by polling*:
//!
//! 1. [`Promise::cancel`](crate::Promise::cancel) on a spawned task sets a
//!    flag on the task and schedules it;
//! 2. the task's next poll runs with a *cancellation request* visible to
//!    everything it polls ([`cancel_requested`]);
//! 3. every cancelable leaf future honours it: a [`task`](crate::task)
//!    promise is rejected with [`Error::Canceled`] (its `on_cancel`
//!    callbacks run), a [`crate::time::Sleep`], [`crate::Pause`] or
//!    [`crate::signal::Raised`] resolves with `Err(Canceled)`, and the
//!    promise of another spawned task passes the request on to that task.
//!    A [`wait`](crate::wait) promise ignores it: propagation stops there;
//! 4. the `Err(Canceled)` flows up through `?` like any failure, running
//!    the cleanups (`finalize`) on the way, and the task's promise is
//!    rejected with it.
//!
//! The request lasts for one poll: a task that awaits nothing cancelable at
//! that moment ignores it, as an Lwt promise waiting on `wait` does. The
//! combinators poll all their pending branches, so a request reaches every
//! branch of a `join` or `choose`.
//!
//! Differences from Lwt: canceling a task rejects its promise when the task
//! returns the error (after its cleanups ran), not synchronously inside
//! `cancel`; and `pick`'s losers that are plain futures (not spawned
//! promises) are polled once with the request and then dropped, so their
//! cleanups must not need to wait (pass spawned promises when they do).
//!
//! [`protected`] and [`no_cancel`] stop requests: `protected(p)` resolves
//! with `Err(Canceled)` when canceled but leaves `p` running; `no_cancel(f)`
//! never sees a cancellation.

use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::Error;
use crate::executor::{self, Core};
use crate::promise::{Awaiting, Promise};

/// Whether the running code is polled under a cancellation request.
///
/// Leaf futures written outside this crate check it to be cancelable the
/// way [`crate::time::Sleep`] is: on a request, give up the wait and resolve
/// with `Err(Error::Canceled)`.
#[inline]
pub fn cancel_requested() -> bool {
    executor::try_with_core(Core::cancel_requested).unwrap_or(false)
}

/// Runs `f` with the cancellation request set to `cancel`; outside `run`
/// just runs `f`.
pub(crate) fn with_request<R>(cancel: bool, f: impl FnOnce() -> R) -> R {
    let mut f = Some(f);
    let mut call = || f.take().expect("called once")();
    executor::try_with_core(|core| core.with_cancel(cancel, &mut call)).unwrap_or_else(call)
}

/// A promise that follows `promise` but can be canceled without canceling
/// it (Lwt's `protected`): a cancellation request resolves the protected
/// future with [`Error::Canceled`] and leaves `promise` (and the task or
/// resolver behind it) alone.
pub fn protected<T>(promise: Promise<T>) -> Protected<T> {
    Protected {
        inner: promise.into_future(),
    }
}

/// The future of [`protected`].
#[must_use = "futures do nothing unless awaited"]
pub struct Protected<T> {
    inner: Awaiting<T>,
}

impl<T> Future for Protected<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if cancel_requested() {
            return Poll::Ready(Err(Error::Canceled));
        }
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// Runs `future` out of reach of cancellation (Lwt's `no_cancel`): it never
/// sees a cancellation request, and canceling the task awaiting it has no
/// effect while it runs.
pub fn no_cancel<F: IntoFuture>(future: F) -> NoCancel<F::IntoFuture> {
    NoCancel {
        future: future.into_future(),
    }
}

/// The future of [`no_cancel`].
#[must_use = "futures do nothing unless awaited"]
pub struct NoCancel<F> {
    future: F,
}

impl<F: Future> Future for NoCancel<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned and never moved out.
        let future = unsafe { self.map_unchecked_mut(|s| &mut s.future) };
        with_request(false, || future.poll(cx))
    }
}
