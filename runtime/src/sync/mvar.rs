//! Mailbox variables (Lwt's `Lwt_mvar`): a cell that is empty or holds one
//! value.
//!
//! [`MVar::put`] fills an empty mailbox at once and waits while it is full;
//! [`MVar::take`] empties a full mailbox at once and waits while it is
//! empty. Blocked putters and blocked takers are each served in FIFO order,
//! so with several writers each value is taken in turn, one take between
//! two puts (seed 003: "reader-driven", back-pressure without a buffer).
//!
//! # Handoff
//!
//! When a value arrives while takers wait, it is *reserved* for the first
//! of them: the mailbox stays full (so a `put` queues and a new `take`
//! queues behind) until that taker's task runs and collects it. When the
//! taker collects it, the first blocked putter's value moves in at once. A
//! reserved taker that is dropped leaves the value to the next taker; one
//! that is canceled while still queued leaves the queue, and a canceled
//! putter's value is never put.
//!
//! # Cost
//!
//! `put` and `take` are always inlined into their callers. Out of line,
//! they returned their future through memory, written field by field with
//! narrow stores that the caller then copied with 16-byte loads: the loads
//! could not be forwarded from the pending stores and stalled, twice per
//! round trip of the pingpong benchmark (97 -> 61 ns per round trip).
//!
//! A queued `Take`'s poll is inlined too, with the collection of the
//! value, and reads its ticket in place (`WaitQueue::poll_in_place`): the
//! slot is looked up once for the grant, the cancellation check and the
//! waker, and the stage is written only when the take finishes. It used to
//! move its whole stage out and back (`mem::replace`) and run the generic
//! `WaitQueue::poll` and the collection out of line, each returning its
//! outcome through memory. Only the rare paths (a value taken at once, a cancellation) are
//! out of line.
//!
//! # Differences from Lwt
//!
//! * `put` on an empty mailbox with a waiting taker only schedules the
//!   taker; it does not run it before `put` returns (seed 003's epilogue:
//!   Lwt prints "r" before "w"; here "w" comes first).
//! * Construction is [`MVar::new`] (Lwt's `create`) and [`MVar::new_empty`]
//!   (Lwt's `create_empty`).

use core::cell::RefCell;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use super::waiters::{Left, Polled, Ticket, WaitQueue};
use crate::Error;

/// A mailbox holding at most one `T`.
pub struct MVar<T> {
    state: RefCell<State<T>>,
}

struct State<T> {
    content: Content<T>,
    /// Blocked takers; only while the mailbox is empty or its value is
    /// reserved.
    takers: WaitQueue<(), ()>,
    /// Blocked putters; only while the mailbox is full.
    putters: WaitQueue<T, ()>,
}

enum Content<T> {
    Empty,
    /// Full, the value free for the next take.
    Full(T),
    /// Full, the value belonging to the taker granted last, which has not
    /// collected it yet.
    Reserved(T),
}

/// Wakers to wake once the state is no longer borrowed: a putter whose
/// value moved in, and a taker the value is now reserved for.
#[derive(Default)]
struct Woken {
    putter: Option<Waker>,
    taker: Option<Waker>,
}

impl Woken {
    #[inline(always)]
    fn wake(self) {
        if let Some(waker) = self.putter {
            crate::task::wake(waker);
        }
        if let Some(waker) = self.taker {
            crate::task::wake(waker);
        }
    }
}

impl<T> State<T> {
    /// Fills the empty mailbox with `value`, reserved for the first blocked
    /// taker if there is one; returns that taker's waker.
    #[inline(always)]
    fn fill(&mut self, value: T) -> Option<Waker> {
        match self.takers.grant_front(|()| ()) {
            Some(waker) => {
                self.content = Content::Reserved(value);
                waker
            }
            None => {
                self.content = Content::Full(value);
                None
            }
        }
    }

    /// Refills the mailbox just emptied with the first blocked putter's
    /// value, if any.
    #[inline(always)]
    fn refill(&mut self) -> Woken {
        let mut value = None;
        let Some(putter) = self.putters.grant_front(|v| value = Some(v)) else {
            return Woken::default();
        };
        let taker = self.fill(value.expect("a granted putter's value"));
        Woken { putter, taker }
    }

    /// Hands the reserved value to the taker collecting it.
    #[inline(always)]
    fn collect(&mut self) -> (T, Woken) {
        let Content::Reserved(value) = core::mem::replace(&mut self.content, Content::Empty) else {
            unreachable!("a granted taker's value is reserved")
        };
        (value, self.refill())
    }
}

impl<T> MVar<T> {
    /// A full mailbox holding `value` (Lwt's `create`).
    pub fn new(value: T) -> Self {
        MVar::with(Some(value))
    }

    /// An empty mailbox (Lwt's `create_empty`).
    pub fn new_empty() -> Self {
        MVar::with(None)
    }

    fn with(value: Option<T>) -> Self {
        MVar {
            state: RefCell::new(State {
                content: value.map_or(Content::Empty, Content::Full),
                takers: WaitQueue::default(),
                putters: WaitQueue::default(),
            }),
        }
    }

    /// Puts `value` in the mailbox (Lwt's `put`): at once if it is empty
    /// (the future is then already resolved), else after every putter
    /// queued before, each time a take empties it. Acts when called.
    ///
    /// Resolves with [`Error::Canceled`] if the task is canceled while the
    /// put is queued; the value is then dropped, never put. Dropping the
    /// future of a queued put withdraws it the same way.
    // Always inlined, like `take` (see "Cost" in the module docs).
    #[inline(always)]
    pub fn put(&self, value: T) -> Put<'_, T> {
        let (stage, woken) = {
            let mut state = self.state.borrow_mut();
            if let Content::Empty = state.content {
                let taker = state.fill(value);
                (
                    PutStage::Done,
                    Woken {
                        putter: None,
                        taker,
                    },
                )
            } else {
                (
                    PutStage::Queued(state.putters.push(value, None)),
                    Woken::default(),
                )
            }
        };
        woken.wake();
        Put { mvar: self, stage }
    }

    /// Takes the value out of the mailbox (Lwt's `take`): at once if it is
    /// full and nobody queued before, else when a put brings one. Acts when
    /// called.
    ///
    /// A value taken at once belongs to the returned future: dropping the
    /// future unpolled drops the value, as ignoring a resolved Lwt promise
    /// does. A queued take resolves with [`Error::Canceled`] if its task is
    /// canceled; dropped or canceled while queued, it leaves the queue, and
    /// a value reserved for it goes to the next taker.
    // Always inlined, like `put` (see "Cost" in the module docs).
    #[inline(always)]
    pub fn take(&self) -> Take<'_, T> {
        let (stage, woken) = {
            let mut state = self.state.borrow_mut();
            if let Content::Full(_) = state.content {
                let Content::Full(value) = core::mem::replace(&mut state.content, Content::Empty)
                else {
                    unreachable!("checked full")
                };
                (TakeStage::Taken(value), state.refill())
            } else {
                let ticket = state.takers.push((), None);
                (TakeStage::Queued(ticket), Woken::default())
            }
        };
        woken.wake();
        Take { mvar: self, stage }
    }

    /// Takes the value if the mailbox is full and the value is not
    /// reserved for a queued taker (Lwt's `take_available`).
    pub fn take_available(&self) -> Option<T> {
        let (value, woken) = {
            let mut state = self.state.borrow_mut();
            let Content::Full(_) = state.content else {
                return None;
            };
            let Content::Full(value) = core::mem::replace(&mut state.content, Content::Empty)
            else {
                unreachable!("checked full")
            };
            (value, state.refill())
        };
        woken.wake();
        Some(value)
    }

    /// Whether the mailbox is empty, that is whether a `put` would not
    /// wait (Lwt's `is_empty`). A value reserved for a queued taker still
    /// fills it.
    pub fn is_empty(&self) -> bool {
        matches!(self.state.borrow().content, Content::Empty)
    }
}

impl<T> fmt::Debug for MVar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("MVar")
            .field("full", &!matches!(state.content, Content::Empty))
            .field("takers", &state.takers.len())
            .field("putters", &state.putters.len())
            .finish()
    }
}

enum PutStage {
    Done,
    Queued(Ticket),
    Finished,
}

/// The future of [`MVar::put`].
#[must_use = "a queued put is withdrawn when this future is dropped"]
pub struct Put<'a, T> {
    mvar: &'a MVar<T>,
    stage: PutStage,
}

impl<T> Future for Put<'_, T> {
    type Output = Result<(), Error>;

    /// A put that went in at once, the common case, is inlined.
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let PutStage::Done = self.stage {
            self.stage = PutStage::Finished;
            return Poll::Ready(Ok(()));
        }
        self.poll_queued(cx)
    }
}

impl<T> Put<'_, T> {
    #[inline(never)]
    fn poll_queued(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match core::mem::replace(&mut self.stage, PutStage::Finished) {
            PutStage::Done => unreachable!("handled by poll"),
            PutStage::Queued(ticket) => {
                let polled = self
                    .mvar
                    .state
                    .borrow_mut()
                    .putters
                    .poll(ticket, cx.waker());
                match polled {
                    Polled::Granted(()) => Poll::Ready(Ok(())),
                    Polled::Canceled(withdrawn) => {
                        drop(withdrawn);
                        Poll::Ready(Err(Error::Canceled))
                    }
                    Polled::Waiting(ticket) => {
                        self.stage = PutStage::Queued(ticket);
                        Poll::Pending
                    }
                }
            }
            PutStage::Finished => panic!("`Put` polled after completion"),
        }
    }
}

impl<T> Drop for Put<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let PutStage::Queued(_) = self.stage {
            self.withdraw();
        }
    }
}

impl<T> Put<'_, T> {
    /// Takes a put still queued out of the queue; its value is dropped.
    #[inline(never)]
    fn withdraw(&mut self) {
        if let PutStage::Queued(ticket) = core::mem::replace(&mut self.stage, PutStage::Finished) {
            let left = self.mvar.state.borrow_mut().putters.cancel(ticket);
            drop(left);
        }
    }
}

/// The future of [`MVar::take`].
#[must_use = "a queued take leaves the queue when this future is dropped"]
pub struct Take<'a, T> {
    mvar: &'a MVar<T>,
    stage: TakeStage<T>,
}

enum TakeStage<T> {
    /// It took the value at once; the value, until the future is polled.
    Taken(T),
    /// Queued: its place among the takers.
    Queued(Ticket),
    Finished,
}

impl<T> Unpin for Take<'_, T> {}

impl<T> Future for Take<'_, T> {
    type Output = Result<T, Error>;

    /// A queued take's polls, granted or still waiting, are inlined: they
    /// read the ticket in place and write it only when the take finishes.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = Pin::into_inner(self);
        let TakeStage::Queued(ticket) = &this.stage else {
            return this.finish_taken();
        };
        let mut state = this.mvar.state.borrow_mut();
        match state.takers.poll_in_place(ticket, cx.waker()) {
            Polled::Granted(()) => {
                this.stage = TakeStage::Finished;
                let (value, woken) = state.collect();
                drop(state);
                woken.wake();
                Poll::Ready(Ok(value))
            }
            Polled::Canceled(()) => {
                this.stage = TakeStage::Finished;
                Poll::Ready(Err(Error::Canceled))
            }
            Polled::Waiting(()) => Poll::Pending,
        }
    }
}

impl<T> Take<'_, T> {
    /// Resolves a take that took the value at once.
    #[inline(never)]
    fn finish_taken(&mut self) -> Poll<Result<T, Error>> {
        match core::mem::replace(&mut self.stage, TakeStage::Finished) {
            TakeStage::Taken(value) => Poll::Ready(Ok(value)),
            TakeStage::Queued(_) => unreachable!("handled by poll"),
            TakeStage::Finished => panic!("`Take` polled after completion"),
        }
    }
}

impl<T> Drop for Take<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let TakeStage::Queued(_) = self.stage {
            self.withdraw();
        }
    }
}

impl<T> Take<'_, T> {
    /// Takes a take still queued out of the queue, passing a value reserved
    /// for it on to the next taker.
    #[inline(never)]
    fn withdraw(&mut self) {
        if let TakeStage::Queued(ticket) = core::mem::replace(&mut self.stage, TakeStage::Finished)
        {
            let woken = {
                let mut state = self.mvar.state.borrow_mut();
                match state.takers.cancel(ticket) {
                    Left::Queued(()) => Woken::default(),
                    Left::Granted(()) => {
                        let Content::Reserved(value) =
                            core::mem::replace(&mut state.content, Content::Empty)
                        else {
                            unreachable!("a granted taker's value is reserved")
                        };
                        Woken {
                            putter: None,
                            taker: state.fill(value),
                        }
                    }
                }
            };
            woken.wake();
        }
    }
}
