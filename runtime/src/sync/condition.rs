//! Condition variables (Lwt's `Lwt_condition`): announcements to whoever
//! waits *now*.
//!
//! A [`Condition`] holds no data, only a FIFO of waiters. [`signal`]
//! hands a value to the oldest waiter, [`broadcast`] to all of them. It is
//! not sticky: with nobody waiting, the value is dropped and a later
//! `wait` does not see it (seed 003: use an [`MVar`](super::MVar) or a
//! [`Stream`](crate::stream::Stream) to keep values). Waiters that may miss
//! a signal must re-check the state they wait for, usually under a
//! [`Mutex`] with [`wait_with`].
//!
//! # Differences from Lwt
//!
//! * [`wait_with`] takes the mutex's guard and gives it back; if the wait
//!   is canceled it resolves with [`Error::Canceled`] without locking the
//!   mutex again (Lwt relocks it, then raises; here the guard would only be
//!   dropped by the `?` that propagates the error).
//! * Signalling only schedules the waiters; they run in the next round.
//! * A waiter that already received a value and is then dropped loses it,
//!   like a signal sent to nobody.
//!
//! [`signal`]: Condition::signal
//! [`broadcast`]: Condition::broadcast
//! [`wait_with`]: Condition::wait_with

use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::mutex::{Mutex, MutexGuard};
use super::waiters::{Polled, Ticket, WaitQueue};
use crate::Error;

/// A condition tasks wait on; signalling it carries a `T` to them.
pub struct Condition<T = ()> {
    waiters: RefCell<WaitQueue<(), T>>,
}

impl<T> Condition<T> {
    /// A condition nobody waits on (Lwt's `create`).
    pub fn new() -> Self {
        Condition {
            waiters: RefCell::new(WaitQueue::default()),
        }
    }

    /// Waits for the next signal or broadcast (Lwt's `wait`). The waiter is
    /// registered when this is called, so a signal sent before the future
    /// is first polled still reaches it.
    ///
    /// Resolves with [`Error::Canceled`] if the task is canceled while
    /// waiting; dropping the future leaves the queue.
    pub fn wait(&self) -> Wait<'_, T> {
        let ticket = self.waiters.borrow_mut().push((), None);
        Wait {
            condition: self,
            ticket: Some(ticket),
        }
    }

    /// Releases `guard`'s mutex, waits for the next signal or broadcast,
    /// then locks the mutex again and returns the value with the new guard
    /// (Lwt's `wait ~mutex`). The waiter is registered before the mutex is
    /// released, both when this is called, so no signal sent in between is
    /// missed.
    pub fn wait_with<'a, M>(
        &'a self,
        guard: MutexGuard<'a, M>,
    ) -> impl Future<Output = Result<(T, MutexGuard<'a, M>), Error>> + 'a {
        let mutex: &'a Mutex<M> = MutexGuard::mutex(&guard);
        let wait = self.wait();
        drop(guard);
        async move {
            let value = wait.await?;
            let guard = mutex.lock().await?;
            Ok((value, guard))
        }
    }

    /// Hands `value` to the oldest waiter (Lwt's `signal`); returns whether
    /// there was one. With nobody waiting, `value` is dropped.
    pub fn signal(&self, value: T) -> bool {
        let waker = self.waiters.borrow_mut().grant_front(|()| value);
        match waker {
            Some(waker) => {
                if let Some(waker) = waker {
                    waker.wake();
                }
                true
            }
            None => false,
        }
    }

    /// Hands a clone of `value` to every waiter (Lwt's `broadcast`);
    /// returns how many there were.
    pub fn broadcast(&self, value: T) -> usize
    where
        T: Clone,
    {
        let mut woken = Vec::new();
        {
            let mut waiters = self.waiters.borrow_mut();
            woken.reserve(waiters.len());
            while let Some(waker) = waiters.grant_front(|()| value.clone()) {
                woken.push(waker);
            }
        }
        let n = woken.len();
        for waker in woken.into_iter().flatten() {
            waker.wake();
        }
        n
    }

    /// How many tasks wait.
    pub fn waiters(&self) -> usize {
        self.waiters.borrow().len()
    }
}

impl<T> Default for Condition<T> {
    fn default() -> Self {
        Condition::new()
    }
}

impl<T> fmt::Debug for Condition<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// The future of [`Condition::wait`].
#[must_use = "the waiter leaves the queue when this future is dropped"]
pub struct Wait<'a, T> {
    condition: &'a Condition<T>,
    /// `None` once resolved.
    ticket: Option<Ticket>,
}

impl<T> Future for Wait<'_, T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let ticket = self.ticket.take().expect("`Wait` polled after completion");
        let polled = self.condition.waiters.borrow_mut().poll(ticket, cx.waker());
        match polled {
            Polled::Granted(value) => Poll::Ready(Ok(value)),
            Polled::Canceled(()) => Poll::Ready(Err(Error::Canceled)),
            Polled::Waiting(ticket) => {
                self.ticket = Some(ticket);
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Wait<'_, T> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let left = self.condition.waiters.borrow_mut().cancel(ticket);
            drop(left);
        }
    }
}
