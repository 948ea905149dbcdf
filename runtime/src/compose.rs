//! Composing promises: waiting for all of them, or for the first.
//!
//! Lwt's combinators take promises that are already running. These take
//! anything awaitable ([`IntoFuture`] with output `Result<T, Error>`), so a
//! list of spawned [`crate::Promise`]s behaves exactly as in Lwt, and plain
//! futures run inside the combinator (lazily, like any Rust future, without
//! a task of their own).
//!
//! | function | waits for | result | the others |
//! |---|---|---|---|
//! | [`join`], [`all`], [`both`] | all | the values, or the first rejection (in time) once all are resolved | — |
//! | [`choose`] | the first | its value or rejection | dropped (a dropped task promise keeps running) |
//! | [`pick`] | the first | its value or rejection | canceled |
//! | [`nchoose`] | the first | every value resolved by then, or the first of their rejections | dropped |
//! | [`npick`] | the first | as `nchoose` | canceled |
//! | [`nchoose_split`] | the first | as `nchoose`, plus the pending ones | returned |
//!
//! When several are resolved by the time a combinator looks (notably when
//! it is first awaited), `choose` and `pick` select one at random with the
//! executor's seeded generator ([`crate::random`]); runs are reproducible
//! given the seed. The first-to-wait combinators on no promise at all
//! resolve with [`Error::InvalidArgument`] (Lwt raises `Invalid_argument`:
//! the result would be pending forever).
//!
//! "Canceled" means polled once under a cancellation request (see
//! [`crate::cancel`]) and then dropped: a task promise passes the request to
//! its task, a `task` promise is rejected, a sleep is disarmed.
//!
//! A combinator of more than a few branches gives each branch a waker of
//! its own and, when woken, polls only the branches that were woken (all of
//! them under a cancellation request); a small one polls them all.

use alloc::vec::Vec;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::Error;
use crate::cancel::with_request;
use crate::executor::with_core;
use crate::ready::Readiness;

enum Branch<F: Future> {
    Running(F),
    Done(F::Output),
    Gone,
}

/// Up to this many branches, polling them all when woken costs less than
/// giving each a waker of its own.
const SMALL: usize = 8;

/// Futures polled in place: the vector is never resized once built, so its
/// elements never move.
struct Set<F: Future> {
    items: Vec<Branch<F>>,
    /// How many items are `Running`: whether all are done is then known
    /// without a pass over the items at every wake.
    running: usize,
    /// The branches' wakers, built at the first poll.
    readiness: Option<Readiness>,
}

impl<F: Future> Set<F> {
    fn new<I>(futures: I) -> Self
    where
        I: IntoIterator,
        I::Item: IntoFuture<IntoFuture = F>,
    {
        let items: Vec<_> = futures
            .into_iter()
            .map(|f| Branch::Running(f.into_future()))
            .collect();
        Set {
            running: items.len(),
            items,
            readiness: None,
        }
    }

    /// Polls the running branches that were woken (all of them in a small
    /// set, at the first poll, under a cancellation request, or for a new
    /// parent task); returns the indices that completed now, in order.
    fn poll_running(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Vec<usize> {
        // SAFETY: the elements are structurally pinned: the vector is never
        // resized and a running future is only dropped in place.
        let this = unsafe { self.get_unchecked_mut() };
        let n = this.items.len();
        let mut done = Vec::new();
        let running = &mut this.running;
        let mut poll = |items: &mut Vec<Branch<F>>, i: usize, cx: &mut Context<'_>| {
            if let Branch::Running(f) = &mut items[i] {
                // SAFETY: as above.
                if let Poll::Ready(out) = unsafe { Pin::new_unchecked(f) }.poll(cx) {
                    items[i] = Branch::Done(out);
                    *running -= 1;
                    done.push(i);
                }
            }
        };
        if n <= SMALL {
            (0..n).for_each(|i| poll(&mut this.items, i, cx));
            return done;
        }
        let all = match &this.readiness {
            Some(r) if r.wakes(cx.waker()) => crate::cancel::cancel_requested(),
            _ => {
                this.readiness = Some(Readiness::new(cx.waker().clone(), n));
                true
            }
        };
        let readiness = this.readiness.as_ref().expect("built above");
        let woken = readiness.take_woken();
        let mut poll_woken = |i: usize| {
            let waker = readiness.waker(i);
            poll(&mut this.items, i, &mut Context::from_waker(&waker));
        };
        if all {
            (0..n).for_each(&mut poll_woken);
        } else {
            woken.into_iter().for_each(&mut poll_woken);
        }
        done
    }

    /// Polls every running branch once under a cancellation request, then
    /// drops it.
    fn cancel_running(self: Pin<&mut Self>, cx: &mut Context<'_>) {
        // SAFETY: as in `poll_running`.
        let this = unsafe { self.get_unchecked_mut() };
        for branch in this.items.iter_mut() {
            if let Branch::Running(f) = branch {
                // SAFETY: as in `poll_running`; the result is ignored.
                let _ = with_request(true, || unsafe { Pin::new_unchecked(f) }.poll(cx));
                *branch = Branch::Gone;
            }
        }
        this.running = 0;
    }

    fn take(self: Pin<&mut Self>, i: usize) -> Option<F::Output> {
        // SAFETY: replacing a done branch moves no future.
        let items = unsafe { &mut self.get_unchecked_mut().items };
        match core::mem::replace(&mut items[i], Branch::Gone) {
            Branch::Done(out) => Some(out),
            other => {
                items[i] = other;
                None
            }
        }
    }

    fn all_done(&self) -> bool {
        self.running == 0
    }
}

// ---------------------------------------------------------------------------
// Waiting for all

/// Waits for every future; the first rejection (in time) wins, once all are
/// resolved (Lwt's `all`).
pub fn all<I, F, T>(futures: I) -> All<F>
where
    I: IntoIterator,
    I::Item: IntoFuture<IntoFuture = F>,
    F: Future<Output = Result<T, Error>>,
{
    All {
        set: Set::new(futures),
        first_error: None,
    }
}

/// The future of [`all`].
#[must_use = "futures do nothing unless awaited"]
pub struct All<F: Future> {
    set: Set<F>,
    first_error: Option<Error>,
}

impl<F, T> Future for All<F>
where
    F: Future<Output = Result<T, Error>>,
{
    type Output = Result<Vec<T>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `set` is structurally pinned; `first_error` is not.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let mut set = unsafe { Pin::new_unchecked(&mut this.set) };
        for i in set.as_mut().poll_running(cx) {
            if let Branch::Done(Err(e)) = &set.items[i] {
                this.first_error.get_or_insert_with(|| e.clone());
            }
        }
        if !set.all_done() {
            return Poll::Pending;
        }
        if let Some(e) = this.first_error.take() {
            return Poll::Ready(Err(e));
        }
        let n = set.items.len();
        Poll::Ready(Ok((0..n)
            .filter_map(|i| set.as_mut().take(i).and_then(Result::ok))
            .collect()))
    }
}

/// Waits for every future; the first rejection (in time) wins, once all are
/// resolved (Lwt's `join`).
pub fn join<I, F>(futures: I) -> Join<F>
where
    I: IntoIterator,
    I::Item: IntoFuture<IntoFuture = F>,
    F: Future<Output = Result<(), Error>>,
{
    Join { all: all(futures) }
}

/// The future of [`join`].
#[must_use = "futures do nothing unless awaited"]
pub struct Join<F: Future> {
    all: All<F>,
}

impl<F: Future<Output = Result<(), Error>>> Future for Join<F> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `all` is structurally pinned.
        unsafe { self.map_unchecked_mut(|s| &mut s.all) }
            .poll(cx)
            .map(|r| r.map(drop))
    }
}

/// Waits for both; the first rejection (in time) wins, once both are
/// resolved (Lwt's `both`).
pub async fn both<A, B, TA, TB>(a: A, b: B) -> Result<(TA, TB), Error>
where
    A: IntoFuture<Output = Result<TA, Error>>,
    B: IntoFuture<Output = Result<TB, Error>>,
{
    let mut a = core::pin::pin!(a.into_future());
    let mut b = core::pin::pin!(b.into_future());
    let mut ra = None;
    let mut rb = None;
    let mut first_error = None;
    core::future::poll_fn(|cx| {
        if ra.is_none()
            && let Poll::Ready(r) = a.as_mut().poll(cx)
        {
            if let Err(e) = &r {
                first_error.get_or_insert_with(|| e.clone());
            }
            ra = Some(r);
        }
        if rb.is_none()
            && let Poll::Ready(r) = b.as_mut().poll(cx)
        {
            if let Err(e) = &r {
                first_error.get_or_insert_with(|| e.clone());
            }
            rb = Some(r);
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    if let Some(e) = first_error {
        return Err(e);
    }
    match (ra, rb) {
        (Some(Ok(a)), Some(Ok(b))) => Ok((a, b)),
        _ => unreachable!("both resolved without error"),
    }
}

// ---------------------------------------------------------------------------
// Waiting for the first

/// What to do with the others once some are resolved.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Others {
    Drop,
    Cancel,
}

/// The futures of [`choose`], [`pick`], [`nchoose`] and [`npick`].
#[must_use = "futures do nothing unless awaited"]
pub struct Select<F: Future> {
    set: Set<F>,
    others: Others,
}

impl<F: Future> Select<F> {
    /// Polls the pending ones; once some are resolved, deals with the
    /// others and returns the indices of the resolved ones.
    fn poll_first(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Vec<usize>, Error>> {
        // SAFETY: `set` is structurally pinned; `others` is not.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let mut set = unsafe { Pin::new_unchecked(&mut this.set) };
        if set.items.is_empty() {
            return Poll::Ready(Err(Error::InvalidArgument(&"choosing among no promise")));
        }
        let done = set.as_mut().poll_running(cx);
        if done.is_empty() {
            return Poll::Pending;
        }
        if this.others == Others::Cancel {
            set.cancel_running(cx);
        }
        Poll::Ready(Ok(done))
    }

    fn set(self: Pin<&mut Self>) -> Pin<&mut Set<F>> {
        // SAFETY: `set` is structurally pinned.
        unsafe { self.map_unchecked_mut(|s| &mut s.set) }
    }
}

fn select<I, F>(futures: I, others: Others) -> Select<F>
where
    I: IntoIterator,
    I::Item: IntoFuture<IntoFuture = F>,
    F: Future,
{
    Select {
        set: Set::new(futures),
        others,
    }
}

/// Resolves as the first future to resolve; a random one among those
/// resolved when it looks (Lwt's `choose`). The others are dropped.
pub fn choose<I, F, T>(futures: I) -> Choose<F>
where
    I: IntoIterator,
    I::Item: IntoFuture<IntoFuture = F>,
    F: Future<Output = Result<T, Error>>,
{
    Choose {
        select: select(futures, Others::Drop),
    }
}

/// Like [`choose`], and cancels the others (Lwt's `pick`).
pub fn pick<I, F, T>(futures: I) -> Choose<F>
where
    I: IntoIterator,
    I::Item: IntoFuture<IntoFuture = F>,
    F: Future<Output = Result<T, Error>>,
{
    Choose {
        select: select(futures, Others::Cancel),
    }
}

/// The future of [`choose`] and [`pick`].
#[must_use = "futures do nothing unless awaited"]
pub struct Choose<F: Future> {
    select: Select<F>,
}

impl<F, T> Future for Choose<F>
where
    F: Future<Output = Result<T, Error>>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `select` is structurally pinned.
        let mut select = unsafe { self.map_unchecked_mut(|s| &mut s.select) };
        let done = match select.as_mut().poll_first(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(done)) => done,
        };
        let i = done[random_index(done.len())];
        Poll::Ready(select.set().take(i).expect("a resolved branch"))
    }
}

/// Resolves when at least one future resolves, with the values of all
/// those resolved by then, in order; if one of them was rejected, with the
/// first such rejection (Lwt's `nchoose`). The others are dropped.
pub fn nchoose<I, F, T>(futures: I) -> NChoose<F>
where
    I: IntoIterator,
    I::Item: IntoFuture<IntoFuture = F>,
    F: Future<Output = Result<T, Error>>,
{
    NChoose {
        select: select(futures, Others::Drop),
    }
}

/// Like [`nchoose`], and cancels the others (Lwt's `npick`).
pub fn npick<I, F, T>(futures: I) -> NChoose<F>
where
    I: IntoIterator,
    I::Item: IntoFuture<IntoFuture = F>,
    F: Future<Output = Result<T, Error>>,
{
    NChoose {
        select: select(futures, Others::Cancel),
    }
}

/// The future of [`nchoose`] and [`npick`].
#[must_use = "futures do nothing unless awaited"]
pub struct NChoose<F: Future> {
    select: Select<F>,
}

/// The values of the branches in `done`, or the first rejection among them.
fn collect<F, T>(mut set: Pin<&mut Set<F>>, done: &[usize]) -> Result<Vec<T>, Error>
where
    F: Future<Output = Result<T, Error>>,
{
    done.iter()
        .map(|&i| set.as_mut().take(i).expect("a resolved branch"))
        .collect()
}

impl<F, T> Future for NChoose<F>
where
    F: Future<Output = Result<T, Error>>,
{
    type Output = Result<Vec<T>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `select` is structurally pinned.
        let mut select = unsafe { self.map_unchecked_mut(|s| &mut s.select) };
        select
            .as_mut()
            .poll_first(cx)
            .map(|r| r.and_then(|done| collect(select.set(), &done)))
    }
}

/// Like [`nchoose`], but also returns the futures still pending, in order
/// (Lwt's `nchoose_split`). They must be `Unpin` to be moved out;
/// [`crate::Promise`]s are.
pub fn nchoose_split<I, F, T>(futures: I) -> NChooseSplit<F>
where
    I: IntoIterator,
    I::Item: IntoFuture<IntoFuture = F>,
    F: Future<Output = Result<T, Error>> + Unpin,
{
    NChooseSplit {
        select: select(futures, Others::Drop),
    }
}

/// The future of [`nchoose_split`].
#[must_use = "futures do nothing unless awaited"]
pub struct NChooseSplit<F: Future> {
    select: Select<F>,
}

impl<F, T> Future for NChooseSplit<F>
where
    F: Future<Output = Result<T, Error>> + Unpin,
{
    type Output = Result<(Vec<T>, Vec<F>), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: the only pinned data are the futures, which are `Unpin`,
        // so moving them out below is allowed; outputs are never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let mut select = unsafe { Pin::new_unchecked(&mut this.select) };
        let done = match select.as_mut().poll_first(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(done)) => done,
        };
        let values = collect(select.set(), &done);
        let pending = core::mem::take(&mut this.select.set.items)
            .into_iter()
            .filter_map(|b| match b {
                Branch::Running(f) => Some(f),
                _ => None,
            })
            .collect();
        Poll::Ready(values.map(|v| (v, pending)))
    }
}

/// A random index below `n`, without drawing when there is no choice.
pub(crate) fn random_index(n: usize) -> usize {
    if n == 1 {
        0
    } else {
        with_core(|core| core.rng().below(n as u64) as usize)
    }
}
