//! A mutual exclusion lock for tasks (Lwt's `Lwt_mutex`).
//!
//! [`Mutex::lock`] takes the lock at once if it is free; otherwise the
//! caller joins a FIFO queue. Releasing the lock (dropping the
//! [`MutexGuard`]) hands it directly to the first queued waiter, so the
//! lock is never free while someone waits and nobody can barge in ahead of
//! the queue.
//!
//! # Differences from Lwt
//!
//! * The mutex owns the data it protects (`Mutex<T>`, `Mutex<()>` for pure
//!   serialisation) and the lock is released by dropping the guard, so it
//!   cannot be forgotten on an error path, nor released by someone who does
//!   not hold it (Lwt's `unlock` does not check).
//! * A waiter whose task is canceled, or whose future is dropped, while it
//!   is queued leaves the queue at once and never gets the lock (see
//!   [`crate::sync`]).
//! * Unlocking only schedules the next holder; it runs in the next round.

use core::cell::{RefCell, UnsafeCell};
use core::fmt;
use core::future::Future;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::task::{Context, Poll};

use super::waiters::{Left, Polled, Ticket, WaitQueue};
use crate::Error;

/// A lock protecting a `T`, handed over in FIFO order.
pub struct Mutex<T = ()> {
    state: RefCell<State>,
    value: UnsafeCell<T>,
}

struct State {
    locked: bool,
    /// Waiters for the lock; never non-empty while the lock is free.
    waiters: WaitQueue<(), ()>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex protecting `value` (Lwt's `create`).
    pub fn new(value: T) -> Self {
        Mutex {
            state: RefCell::new(State {
                locked: false,
                waiters: WaitQueue::default(),
            }),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock (Lwt's `lock`): at once if it is free, else after
    /// everyone queued before. The lock is held from the moment it is
    /// handed over, even before the returned future is polled; dropping
    /// the future gives it back (or leaves the queue).
    ///
    /// Resolves with [`Error::Canceled`] if the task is canceled while
    /// queued.
    pub fn lock(&self) -> Lock<'_, T> {
        let mut state = self.state.borrow_mut();
        let stage = if state.locked {
            Stage::Queued(state.waiters.push((), None))
        } else {
            state.locked = true;
            Stage::Acquired
        };
        Lock { mutex: self, stage }
    }

    /// Runs `f` with the lock held and releases it afterwards, whether `f`
    /// succeeds, fails or is canceled (Lwt's `with_lock`). Like `lock`, it
    /// queues when called.
    pub fn with_lock<R>(
        &self,
        f: impl AsyncFnOnce(&mut T) -> Result<R, Error>,
    ) -> impl Future<Output = Result<R, Error>> {
        let lock = self.lock();
        async move {
            let mut guard = lock.await?;
            f(&mut guard).await
        }
    }

    /// Whether the lock is held (Lwt's `is_locked`).
    pub fn is_locked(&self) -> bool {
        self.state.borrow().locked
    }

    /// How many tasks are queued for the lock (Lwt's `is_empty` is
    /// `waiters() == 0`).
    pub fn waiters(&self) -> usize {
        self.state.borrow().waiters.len()
    }

    /// Releases the lock: hands it to the first waiter, or frees it.
    fn unlock(&self) {
        let waker = {
            let mut state = self.state.borrow_mut();
            match state.waiters.grant_front(|()| ()) {
                Some(waker) => waker,
                None => {
                    state.locked = false;
                    None
                }
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("Mutex")
            .field("locked", &state.locked)
            .field("waiters", &state.waiters.len())
            .finish_non_exhaustive()
    }
}

enum Stage {
    /// The lock is ours; the guard is not handed out yet.
    Acquired,
    /// In the queue (or granted, until polled).
    Queued(Ticket),
    /// The guard was handed out, or the wait was canceled.
    Done,
}

/// The future of [`Mutex::lock`].
#[must_use = "the lock is released when this future is dropped"]
pub struct Lock<'a, T> {
    mutex: &'a Mutex<T>,
    stage: Stage,
}

impl<'a, T> Future for Lock<'a, T> {
    type Output = Result<MutexGuard<'a, T>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mutex = self.mutex;
        match core::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Acquired => Poll::Ready(Ok(MutexGuard { mutex })),
            Stage::Queued(ticket) => {
                let polled = mutex.state.borrow_mut().waiters.poll(ticket, cx.waker());
                match polled {
                    Polled::Granted(()) => Poll::Ready(Ok(MutexGuard { mutex })),
                    Polled::Canceled(()) => Poll::Ready(Err(Error::Canceled)),
                    Polled::Waiting(ticket) => {
                        self.stage = Stage::Queued(ticket);
                        Poll::Pending
                    }
                }
            }
            Stage::Done => panic!("`Lock` polled after completion"),
        }
    }
}

impl<T> Drop for Lock<'_, T> {
    fn drop(&mut self) {
        match core::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Acquired => self.mutex.unlock(),
            Stage::Queued(ticket) => {
                let left = self.mutex.state.borrow_mut().waiters.cancel(ticket);
                if let Left::Granted(()) = left {
                    self.mutex.unlock();
                }
            }
            Stage::Done => {}
        }
    }
}

/// The lock, held: gives access to the protected value; dropping it
/// releases the lock (to the next waiter, if any).
#[must_use = "the lock is released when the guard is dropped"]
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

impl<'a, T> MutexGuard<'a, T> {
    /// Releases the lock (Lwt's `unlock`); the same as dropping the guard.
    pub fn unlock(self) {
        drop(self);
    }

    /// The mutex this guard holds.
    pub fn mutex(this: &Self) -> &'a Mutex<T> {
        this.mutex
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a guard exists only while the lock is held, and each
        // acquisition produces exactly one guard, so no `&mut T` from
        // another guard can exist while this shared borrow lives.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this borrow unique
        // among the borrows made through this guard.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MutexGuard").field(&**self).finish()
    }
}
