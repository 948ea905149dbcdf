//! Pools of reusable resources (Lwt's `Lwt_pool`): connections, buffers,
//! anything costly to create.
//!
//! A [`Pool`] holds at most `max` elements, created on demand.
//! [`Pool::use_`] lends one to a function:
//!
//! 1. an idle element, if there is one and [`Manager::validate`] accepts
//!    it (a rejected one is disposed of and a new one created in its
//!    place);
//! 2. else a new element, if fewer than `max` exist;
//! 3. else the next element released, waiting in FIFO order.
//!
//! When the function succeeds, the element goes back to the pool (straight
//! to the first waiter, if any). When it fails, [`Manager::check`] decides:
//! back to the pool, or disposed of ([`Manager::dispose`]), which frees a
//! place for a new element (a waiter then creates one).
//!
//! # Differences from Lwt
//!
//! * Lwt's optional `create`/`validate`/`check`/`dispose` functions are the
//!   methods of one [`Manager`] trait, with Lwt's defaults as default
//!   methods; `check` is asynchronous and sees the failure.
//! * An element handed directly from a releasing user to a waiter is not
//!   validated again (it was in use a moment ago).
//! * A waiter canceled while queued resolves with [`Error::Canceled`] and
//!   leaves the queue. If `use_`'s future is dropped while the function
//!   holds the element, the element is dropped without `dispose` (which
//!   would need to be awaited) and its place freed.

use alloc::collections::VecDeque;
use core::cell::RefCell;
use core::fmt;
use core::future::{Future, ready};
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::Error;
use crate::sync::waiters::{Left, Polled, Ticket, WaitQueue};

/// How a [`Pool`] makes, checks and disposes of its elements.
pub trait Manager {
    /// The pooled element.
    type Item;

    /// Makes a new element (Lwt's create function).
    fn create(&self) -> impl Future<Output = Result<Self::Item, Error>>;

    /// Whether an idle element may still be lent (Lwt's `validate`).
    /// By default, always.
    fn validate(&self, item: &mut Self::Item) -> impl Future<Output = bool> {
        let _ = item;
        ready(true)
    }

    /// Whether an element may go back to the pool after a function using
    /// it failed with `error` (Lwt's `check`). By default, yes.
    fn check(&self, item: &mut Self::Item, error: &Error) -> impl Future<Output = bool> {
        let _ = (item, error);
        ready(true)
    }

    /// Releases an element leaving the pool (Lwt's `dispose`). By default,
    /// drops it.
    fn dispose(&self, item: Self::Item) -> impl Future<Output = ()> {
        drop(item);
        ready(())
    }
}

/// What a waiter is handed.
enum Handoff<T> {
    /// An element released by its last user.
    Item(T),
    /// A free place: the waiter creates an element.
    Place,
}

struct State<T> {
    idle: VecDeque<T>,
    /// Elements that exist or are being created.
    count: usize,
    waiters: WaitQueue<(), Handoff<T>>,
}

/// At most `max` elements managed by `M`, lent to one user at a time.
pub struct Pool<M: Manager> {
    manager: M,
    max: usize,
    state: RefCell<State<M::Item>>,
}

impl<M: Manager> Pool<M> {
    /// An empty pool of at most `max` elements (Lwt's `create`).
    ///
    /// # Panics
    /// If `max` is zero.
    pub fn new(max: usize, manager: M) -> Self {
        assert!(max > 0, "a pool holds at least one element");
        Pool {
            manager,
            max,
            state: RefCell::new(State {
                idle: VecDeque::new(),
                count: 0,
                waiters: WaitQueue::default(),
            }),
        }
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.manager
    }

    /// How many elements exist (idle, lent, or being created).
    pub fn size(&self) -> usize {
        self.state.borrow().count
    }

    /// How many elements are idle in the pool.
    pub fn idle(&self) -> usize {
        self.state.borrow().idle.len()
    }

    /// How many users wait for an element (Lwt's `wait_queue_length`).
    pub fn wait_queue_length(&self) -> usize {
        self.state.borrow().waiters.len()
    }

    /// Runs `f` with an element of the pool (Lwt's `use`): see the module
    /// documentation for which element, and what happens to it after.
    pub async fn use_<R>(
        &self,
        f: impl AsyncFnOnce(&mut M::Item) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut lent = Lent {
            pool: self,
            item: Some(self.acquire().await?),
        };
        let result = f(lent.item_mut()).await;
        let keep = match &result {
            Ok(_) => true,
            Err(e) => self.manager.check(lent.item_mut(), e).await,
        };
        let item = lent.item.take().expect("still lent");
        if keep {
            self.release(item);
        } else {
            let place = Place { pool: self };
            self.manager.dispose(item).await;
            drop(place);
        }
        result
    }

    /// Disposes of every idle element (Lwt's `clear`); lent ones are not
    /// affected.
    pub async fn clear(&self) {
        let idle = {
            let mut state = self.state.borrow_mut();
            let idle = core::mem::take(&mut state.idle);
            state.count -= idle.len();
            idle
        };
        for item in idle {
            self.manager.dispose(item).await;
        }
    }

    async fn acquire(&self) -> Result<M::Item, Error> {
        enum Next<T> {
            Idle(T),
            Create,
            Wait(Ticket),
        }
        let next = {
            let mut state = self.state.borrow_mut();
            if let Some(item) = state.idle.pop_front() {
                Next::Idle(item)
            } else if state.count < self.max {
                state.count += 1;
                Next::Create
            } else {
                Next::Wait(state.waiters.push((), None))
            }
        };
        match next {
            Next::Idle(mut item) => {
                let place = Place { pool: self };
                if self.manager.validate(&mut item).await {
                    place.keep();
                    return Ok(item);
                }
                self.manager.dispose(item).await;
                self.create(place).await
            }
            Next::Create => self.create(Place { pool: self }).await,
            Next::Wait(ticket) => {
                let waiting = Waiting {
                    pool: self,
                    ticket: Some(ticket),
                };
                match waiting.await? {
                    Handoff::Item(item) => Ok(item),
                    Handoff::Place => self.create(Place { pool: self }).await,
                }
            }
        }
    }

    /// Creates an element in `place`; a failure frees the place.
    async fn create(&self, place: Place<'_, M>) -> Result<M::Item, Error> {
        let item = self.manager.create().await?;
        place.keep();
        Ok(item)
    }

    /// Gives `item` to the first waiter, or back to the idle list.
    fn release(&self, item: M::Item) {
        let mut state = self.state.borrow_mut();
        if state.waiters.len() == 0 {
            state.idle.push_back(item);
            return;
        }
        let waker = state.waiters.grant_front(|()| Handoff::Item(item));
        drop(state);
        if let Some(Some(waker)) = waker {
            waker.wake();
        }
    }

    /// An element left the pool: its place goes to the first waiter, or is
    /// freed.
    fn free_place(&self) {
        let mut state = self.state.borrow_mut();
        if state.waiters.len() == 0 {
            state.count -= 1;
            return;
        }
        let waker = state.waiters.grant_front(|()| Handoff::Place);
        drop(state);
        if let Some(Some(waker)) = waker {
            waker.wake();
        }
    }
}

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("Pool")
            .field("max", &self.max)
            .field("size", &state.count)
            .field("idle", &state.idle.len())
            .field("waiters", &state.waiters.len())
            .finish_non_exhaustive()
    }
}

/// A counted place in the pool for an element being made; freed on drop
/// unless kept (a failed or abandoned creation or validation).
struct Place<'a, M: Manager> {
    pool: &'a Pool<M>,
}

impl<M: Manager> Place<'_, M> {
    fn keep(self) {
        core::mem::forget(self);
    }
}

impl<M: Manager> Drop for Place<'_, M> {
    fn drop(&mut self) {
        self.pool.free_place();
    }
}

/// An element lent to `use_`'s function; dropped with its place freed if
/// `use_` is abandoned meanwhile.
struct Lent<'a, M: Manager> {
    pool: &'a Pool<M>,
    item: Option<M::Item>,
}

impl<M: Manager> Lent<'_, M> {
    fn item_mut(&mut self) -> &mut M::Item {
        self.item.as_mut().expect("still lent")
    }
}

impl<M: Manager> Drop for Lent<'_, M> {
    fn drop(&mut self) {
        if let Some(item) = self.item.take() {
            drop(item);
            self.pool.free_place();
        }
    }
}

/// A user queued for an element.
struct Waiting<'a, M: Manager> {
    pool: &'a Pool<M>,
    ticket: Option<Ticket>,
}

impl<M: Manager> Future for Waiting<'_, M> {
    type Output = Result<Handoff<M::Item>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let ticket = self.ticket.take().expect("polled after completion");
        let polled = self
            .pool
            .state
            .borrow_mut()
            .waiters
            .poll(ticket, cx.waker());
        match polled {
            Polled::Granted(handoff) => Poll::Ready(Ok(handoff)),
            Polled::Canceled(()) => Poll::Ready(Err(Error::Canceled)),
            Polled::Waiting(ticket) => {
                self.ticket = Some(ticket);
                Poll::Pending
            }
        }
    }
}

impl<M: Manager> Drop for Waiting<'_, M> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let left = self.pool.state.borrow_mut().waiters.cancel(ticket);
            match left {
                Left::Queued(()) => {}
                Left::Granted(Handoff::Item(item)) => self.pool.release(item),
                Left::Granted(Handoff::Place) => self.pool.free_place(),
            }
        }
    }
}
