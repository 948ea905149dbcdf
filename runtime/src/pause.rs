//! Yielding to the other tasks for one round (Lwt's `pause`).
//!
//! [`pause`] reschedules the running task at the back of the run queue and
//! resolves in the next round of the event loop, after every task that was
//! runnable has run and after timers and signals were looked at. Because
//! the loop runs its queue in batches, a pause made while the paused tasks
//! of this round are being resumed waits for the next round, as in Lwt.
//! A pause is cancelable.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::Error;
use crate::executor::with_core;

/// Resolves in the next round of the event loop.
#[inline]
pub fn pause() -> Pause {
    Pause { round: None }
}

/// The future of [`pause`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Pause {
    /// The round in which the pause was first polled.
    round: Option<u64>,
}

impl Future for Pause {
    type Output = Result<(), Error>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (cancel, round) = with_core(|core| (core.cancel_requested(), core.round()));
        if cancel {
            return Poll::Ready(Err(Error::Canceled));
        }
        match self.round {
            Some(started) if round > started => Poll::Ready(Ok(())),
            Some(_) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None => {
                self.round = Some(round);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}
