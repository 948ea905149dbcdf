//! Time: sleeping, deadlines and timeouts.
//!
//! [`sleep`] fixes its deadline when it is called (Lwt's `sleep` starts
//! counting at once, not when first awaited) and arms a timer in the
//! executor's timer wheel when first polled. Dropping a
//! [`Sleep`] cancels its timer and frees it at once. A sleep is cancelable:
//! a cancellation delivered to it resolves it with [`Error::Canceled`].
//!
//! "Now" is read from the platform at most once per round of the event loop
//! and is the same for every task in the round; on simulated time it only
//! moves when every task waits.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::Error;
use crate::cancel::with_request;
use crate::compose::random_index;
use crate::executor::{self, with_core};
use crate::platform::Instant;

/// The current time of the running executor.
///
/// # Panics
/// Outside [`crate::run`].
#[track_caller]
#[inline]
pub fn now() -> Instant {
    with_core(|core| core.now())
}

/// How many timers are armed in the running executor.
///
/// # Panics
/// Outside [`crate::run`].
#[track_caller]
pub fn pending_timers() -> usize {
    with_core(|core| core.timers.borrow().len())
}

/// Waits for `duration` (Lwt_unix's `sleep`, Mirage's `Time.sleep_ns`).
///
/// # Panics
/// Outside [`crate::run`].
#[track_caller]
#[inline]
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(now() + duration)
}

/// Waits until `deadline`. A deadline in the past still waits for the next
/// round.
#[inline]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

/// The future of [`sleep`] and [`sleep_until`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    /// The executor and slot of the armed timer.
    timer: Option<(u64, u32)>,
}

impl Sleep {
    /// When the sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// What polling the sleep now would resolve it with, without arming it
    /// if it would not resolve: `Err(Canceled)` under a cancellation
    /// request, `Ok` if its timer fired. Disarms it either way.
    fn resolve_now(&mut self) -> Option<Result<(), Error>> {
        with_core(|core| {
            let mut timers = core.timers.borrow_mut();
            let armed = match self.timer.take() {
                Some((core_id, slot)) if core_id == core.id => Some(slot),
                _ => None,
            };
            let fired = armed.is_some_and(|slot| timers.fired(slot));
            if let Some(slot) = armed {
                timers.remove(slot);
            }
            if core.cancel_requested() {
                Some(Err(Error::Canceled))
            } else {
                fired.then_some(Ok(()))
            }
        })
    }

    fn disarm(&mut self) {
        if let Some((core_id, slot)) = self.timer.take() {
            executor::try_with_core(|core| {
                if core.id == core_id {
                    core.timers.borrow_mut().remove(slot);
                }
            });
        }
    }
}

impl Future for Sleep {
    type Output = Result<(), Error>;

    /// Inlined: out of line, its result went through memory, written with
    /// narrow stores that the caller copied with wide loads (a
    /// store-forwarding stall per poll).
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let deadline = self.deadline;
        with_core(|core| {
            let mut timers = core.timers.borrow_mut();
            let armed = match self.timer {
                Some((core_id, slot)) if core_id == core.id => Some(slot),
                _ => None,
            };
            if core.cancel_requested() {
                if let Some(slot) = armed {
                    timers.remove(slot);
                }
                self.timer = None;
                return Poll::Ready(Err(Error::Canceled));
            }
            match armed {
                Some(slot) if timers.fired(slot) => {
                    timers.remove(slot);
                    self.timer = None;
                    return Poll::Ready(Ok(()));
                }
                Some(slot) => timers.set_waker(slot, cx.waker()),
                None => {
                    let slot = timers.insert(deadline, crate::task::clone_waker(cx.waker()));
                    self.timer = Some((core.id, slot));
                }
            }
            Poll::Pending
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// A promise that is rejected with [`Error::Timeout`] after `duration`
/// (Lwt_unix's `timeout`).
#[track_caller]
pub fn timeout(duration: Duration) -> Timeout {
    Timeout {
        sleep: sleep(duration),
    }
}

/// The future of [`timeout`]: never fulfilled.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout {
    sleep: Sleep,
}

impl Future for Timeout {
    type Output = Result<core::convert::Infallible, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.sleep)
            .poll(cx)
            .map(|r| Err(r.err().unwrap_or(Error::Timeout)))
    }
}

/// Runs `future` for at most `duration`: its result if it resolves first,
/// else [`Error::Timeout`] after canceling it (Lwt_unix's `with_timeout`,
/// which is `pick [timeout d; f ()]`). The deadline is fixed when this is
/// called.
#[track_caller]
pub fn with_timeout<F, T>(duration: Duration, future: F) -> WithTimeout<F::IntoFuture>
where
    F: IntoFuture<Output = Result<T, Error>>,
{
    WithTimeout {
        future: future.into_future(),
        sleep: sleep(duration),
    }
}

/// The future of [`with_timeout`]: a [`crate::pick`] between the future
/// and a [`timeout`], with the same outcomes (the loser canceled, a random
/// choice when both are resolved), that looks at the timer without arming
/// it when the future is resolved first.
#[must_use = "futures do nothing unless awaited"]
pub struct WithTimeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F, T> Future for WithTimeout<F>
where
    F: Future<Output = Result<T, Error>>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned (never moved out, dropped
        // in place with `self`); `sleep` is `Unpin` and not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let mut future = unsafe { Pin::new_unchecked(&mut this.future) };
        let timed_out = |r: Result<(), Error>| Err(r.err().unwrap_or(Error::Timeout));
        if let Poll::Ready(result) = future.as_mut().poll(cx) {
            // Both resolved: one of them at random, as `pick` chooses.
            return Poll::Ready(match this.sleep.resolve_now() {
                Some(r) if random_index(2) == 1 => timed_out(r),
                _ => result,
            });
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                // The future lost: cancel it, as `pick` does.
                let _ = with_request(true, || future.as_mut().poll(cx));
                Poll::Ready(timed_out(r))
            }
        }
    }
}
