//! Promises: values that will be known later (Lwt's `'a Lwt.t`).
//!
//! A [`Promise<T>`] is pending, then fulfilled with a `T` or rejected with
//! an [`Error`], and never changes again. Its [`state`](Promise::state) can be
//! observed at any time, and awaiting it gives `Result<T, Error>`.
//!
//! Promises are *eager*: whatever produces the value is already under way
//! when the promise exists. They come from:
//!
//! * [`Promise::fulfilled`] and [`Promise::rejected`] (Lwt's `return` and
//!   `fail`): already resolved; these do not allocate;
//! * [`wait`] and [`task`] (Lwt's `wait` and `task`): a pending promise and
//!   the [`Resolver`] that resolves it. A `task` promise is cancelable, a
//!   `wait` promise is not;
//! * [`crate::spawn()`]: the promise of a task running a future. It is
//!   cancelable: canceling it delivers the cancellation to what the task
//!   awaits (see [`crate::cancel`]).
//!
//! # Ownership instead of runtime checks
//!
//! Where Lwt checks at run time, types check here:
//!
//! * resolving consumes the [`Resolver`], so a promise cannot be resolved
//!   twice (Lwt raises `Invalid_argument`);
//! * awaiting consumes the `Promise` and moves the value out, so `T` needs
//!   no `Clone`; a promise has one consumer. To wait for one result in
//!   several places, spawn a task per place that awaits a clone of the
//!   value, or use the companions (a `Condition`, a `Stream`);
//! * dropping a `Resolver` without resolving rejects its promise with
//!   [`Error::Abandoned`] (Lwt leaves it pending forever, a silent hang).
//!
//! Resolving only schedules the waiting task: it runs in the next round of
//! the event loop, never inside the resolver (see [`crate::executor`]).

use alloc::alloc::Layout;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::{Cell, UnsafeCell};
use core::fmt;
use core::future::{Future, IntoFuture};
use core::marker::PhantomData;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ops::Deref;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll};

use crate::Error;
use crate::blocks;
use crate::task::{self, Header, TaskRef};

/// The state of a promise (Lwt's `Sleep`, `Return`, `Fail`).
#[derive(Debug, PartialEq)]
pub enum State<'a, T> {
    /// Not resolved yet.
    Pending,
    /// Resolved with a value.
    Fulfilled(&'a T),
    /// Resolved with an error.
    Rejected(&'a Error),
}

/// A promise of a `T`.
#[must_use = "a promise does nothing by itself; await it, or drop it to ignore its result"]
pub struct Promise<T> {
    repr: Repr<T>,
}

enum Repr<T> {
    /// Already resolved.
    Ready(Result<T, Error>),
    /// Resolved through a [`Resolver`].
    Cell(CellRef<T>),
    /// The output of a spawned task.
    Task(TaskRef, PhantomData<fn() -> T>),
}

/// The state of a cell: no flag while pending.
const RESOLVED: u8 = 1;
/// With `RESOLVED`: rejected with `Canceled`.
const CANCELED: u8 = 2;
/// With `RESOLVED`: the value was moved out.
const TAKEN: u8 = 4;

/// The `on_cancel` callbacks of a promise.
type Callbacks = Vec<Box<dyn FnOnce()>>;

/// The shared state of a `wait`/`task` promise and its resolver.
///
/// Written once when made (the value is not: the state says when it is
/// there), with the waiter in one word ([`task::Waiter`]). A cell whose
/// value was moved out, the common case, holds nothing to drop: resolving
/// took its waiter and callbacks, and `TAKEN` says so in one check.
struct PromiseCell<T> {
    /// References from the promise and the resolver (see `CellRef`).
    refs: Cell<u32>,
    /// Flags: `RESOLVED`, `CANCELED`, `TAKEN`; 0 while pending.
    state: Cell<u8>,
    cancelable: bool,
    waiter: task::Waiter,
    /// Boxed: most promises never get one, and then this is a null check.
    on_cancel: Cell<Option<Box<Callbacks>>>,
    /// Written once, when the state becomes `RESOLVED`; moved out only by
    /// the future that consumed the promise, which sets `TAKEN`.
    value: UnsafeCell<MaybeUninit<Result<T, Error>>>,
}

impl<T> PromiseCell<T> {
    fn is_pending(&self) -> bool {
        self.state.get() == 0
    }

    /// The value, if resolved and not moved out.
    fn value(&self) -> Option<&Result<T, Error>> {
        if self.state.get() & (RESOLVED | TAKEN) != RESOLVED {
            return None;
        }
        // SAFETY: resolved and not taken, so the value is in place; it is
        // only moved out by `take`, which needs the promise's future, which
        // owns the only `Promise` handle; shared borrows come from that same
        // handle, so they cannot overlap.
        Some(unsafe { (*self.value.get()).assume_init_ref() })
    }

    /// Moves the value out.
    ///
    /// The value is read by variant, field by field, as `settle` wrote it:
    /// read whole, the 8-byte stores of a promise resolved just before were
    /// loaded with a 16-byte load, which cannot be forwarded from them (a
    /// store-forwarding stall on every await of a pending promise).
    ///
    /// # Safety
    /// The cell is resolved and its value not moved out yet, nor borrowed
    /// (no reference returned by `value` is alive).
    unsafe fn take(&self) -> Result<T, Error> {
        self.state.set(self.state.get() | TAKEN);
        // SAFETY: by the caller's contract the value is in place and not
        // borrowed; `TAKEN` now says it was moved out, so it is read once.
        match unsafe { (*self.value.get()).assume_init_ref() } {
            // SAFETY: as above.
            Ok(v) => Ok(unsafe { core::ptr::read(v) }),
            // SAFETY: as above.
            Err(e) => Err(unsafe { core::ptr::read(e) }),
        }
    }

    /// Resolves a pending promise and schedules its waiter; does nothing if
    /// it is already resolved (or canceled).
    #[inline]
    fn resolve(&self, result: Result<T, Error>) {
        if self.is_pending() {
            self.settle(result);
        }
    }

    /// Resolves the promise, which is pending.
    #[inline]
    fn settle(&self, result: Result<T, Error>) {
        let canceled = matches!(result, Err(Error::Canceled));
        // SAFETY: pending, so the value is not there yet: writing it drops
        // nothing, and no reference to it exists.
        unsafe { (*self.value.get()).write(result) };
        self.state.set(if canceled {
            RESOLVED | CANCELED
        } else {
            RESOLVED
        });
        if let Some(callbacks) = self.on_cancel.take() {
            run_on_cancel(*callbacks, canceled);
        }
        self.waiter.wake();
    }

    fn cancel(&self) {
        if self.cancelable {
            self.resolve(Err(Error::Canceled));
        }
    }

    /// Cancels the pending, cancelable promise for the cancellation request
    /// of the task awaiting it. Out of line: rare.
    #[cold]
    #[inline(never)]
    fn cancel_for_request(&self) {
        self.settle(Err(Error::Canceled));
    }

    fn on_cancel(&self, f: Box<dyn FnOnce()>) {
        if self.is_pending() {
            let mut callbacks = self.on_cancel.take().unwrap_or_default();
            callbacks.push(f);
            self.on_cancel.set(Some(callbacks));
        } else if self.state.get() & CANCELED != 0 {
            f();
        }
    }
}

/// Runs the `on_cancel` callbacks of a promise that was just canceled, or
/// drops them if it was resolved otherwise. Out of line: rare.
#[cold]
#[inline(never)]
fn run_on_cancel(callbacks: Callbacks, canceled: bool) {
    if canceled {
        callbacks.into_iter().for_each(|f| f());
    }
}

fn new_cell<T>(cancelable: bool) -> (Promise<T>, Resolver<T>) {
    let (promise, resolver) = CellRef::new_pair(cancelable);
    (
        Promise {
            repr: Repr::Cell(promise),
        },
        Resolver { cell: resolver },
    )
}

/// A counted reference to a promise cell, shared by the promise and its
/// resolver. The cell lives in a block of the running executor's cache
/// ([`crate::blocks`]), or of the global allocator outside `run`, and goes
/// back to whichever is current when it is freed.
struct CellRef<T> {
    ptr: NonNull<PromiseCell<T>>,
}

impl<T> CellRef<T> {
    /// A new pending cell and its two references: the promise's and the
    /// resolver's. The block is allocated first and the cell written into
    /// it, not built elsewhere and copied.
    #[inline]
    fn new_pair(cancelable: bool) -> (Self, Self) {
        let ptr = blocks::alloc_here(Layout::new::<PromiseCell<T>>()).cast();
        // SAFETY: a fresh block of the cell's layout.
        unsafe {
            ptr.write(PromiseCell {
                refs: Cell::new(2),
                state: Cell::new(0),
                cancelable,
                waiter: task::Waiter::new(),
                on_cancel: Cell::new(None),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
        };
        (CellRef { ptr }, CellRef { ptr })
    }
}

impl<T> Deref for CellRef<T> {
    type Target = PromiseCell<T>;

    fn deref(&self) -> &PromiseCell<T> {
        // SAFETY: this reference keeps the cell alive.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Clone for CellRef<T> {
    fn clone(&self) -> Self {
        self.refs.set(self.refs.get() + 1);
        CellRef { ptr: self.ptr }
    }
}

impl<T> Drop for CellRef<T> {
    #[inline]
    fn drop(&mut self) {
        let refs = self.refs.get() - 1;
        self.refs.set(refs);
        if refs == 0 {
            Self::free(self.ptr);
        }
    }
}

impl<T> CellRef<T> {
    /// Drops the cell and frees its memory, once the last reference is gone.
    /// A cell whose value was moved out, the common case, holds nothing to
    /// drop, so freeing it is one check and a push on the executor's free
    /// list; dropping what it still holds is out of line, which keeps this
    /// path free of spills.
    #[inline(never)]
    fn free(ptr: NonNull<PromiseCell<T>>) {
        // SAFETY: that was the last reference: nothing else accesses the
        // cell.
        let cell = unsafe { ptr.as_ref() };
        if cell.state.get() & TAKEN == 0 {
            Self::drop_contents(ptr);
        }
        // SAFETY: the last reference; the cell's contents were dropped or
        // are empty, so its block is given back once.
        unsafe { blocks::free_here(ptr.cast(), Layout::new::<PromiseCell<T>>()) };
    }

    /// Releases a reference to a cell whose value was taken, which holds
    /// nothing to drop, inline: the block goes back to the executor's free
    /// list without a call.
    ///
    /// # Safety
    /// The caller gives up a counted reference to a cell whose value was
    /// taken.
    #[inline(always)]
    unsafe fn release_taken(ptr: NonNull<PromiseCell<T>>) {
        // SAFETY: the reference keeps the cell alive.
        let cell = unsafe { ptr.as_ref() };
        let refs = cell.refs.get() - 1;
        cell.refs.set(refs);
        if refs == 0 {
            // SAFETY: the last reference; taken, so there is nothing to drop
            // (resolving took the waiter and callbacks): the block is given
            // back once.
            unsafe { blocks::free_here(ptr.cast(), Layout::new::<PromiseCell<T>>()) };
        }
    }

    #[cold]
    #[inline(never)]
    fn drop_contents(ptr: NonNull<PromiseCell<T>>) {
        // SAFETY: called once by `free` for the last reference; the value is
        // dropped if the state says it is there, and the block is given
        // back without being dropped again.
        unsafe {
            let cell = ptr.as_ptr();
            if (*cell).state.get() & (RESOLVED | TAKEN) == RESOLVED {
                (*(*cell).value.get()).assume_init_drop();
            }
            ptr.drop_in_place();
        }
    }
}

/// A pending promise that cannot be canceled, and its resolver (Lwt's
/// `wait`). Canceling it, or a task awaiting it, has no effect: the
/// cancellation stops here.
pub fn wait<T>() -> (Promise<T>, Resolver<T>) {
    new_cell(false)
}

/// A pending, cancelable promise and its resolver (Lwt's `task`). Canceling
/// it (directly, or by canceling a task that awaits it) rejects it with
/// [`Error::Canceled`] and runs its `on_cancel` callbacks.
pub fn task<T>() -> (Promise<T>, Resolver<T>) {
    new_cell(true)
}

impl<T> Promise<T> {
    /// A promise already fulfilled with `value` (Lwt's `return`).
    #[inline]
    pub fn fulfilled(value: T) -> Self {
        Promise {
            repr: Repr::Ready(Ok(value)),
        }
    }

    /// A promise already rejected with `error` (Lwt's `fail`).
    pub fn rejected(error: Error) -> Self {
        Promise {
            repr: Repr::Ready(Err(error)),
        }
    }

    pub(crate) fn from_task(task: TaskRef) -> Self {
        Promise {
            repr: Repr::Task(task, PhantomData),
        }
    }

    fn result(&self) -> Option<&Result<T, Error>> {
        match &self.repr {
            Repr::Ready(r) => Some(r),
            Repr::Cell(cell) => cell.value(),
            // SAFETY: task promises are built by `spawn` with output `T`.
            Repr::Task(task, _) => unsafe { task.output::<T>() },
        }
    }

    /// The promise's state now (Lwt's `state`).
    pub fn state(&self) -> State<'_, T> {
        match self.result() {
            None => State::Pending,
            Some(Ok(v)) => State::Fulfilled(v),
            Some(Err(e)) => State::Rejected(e),
        }
    }

    /// Whether the promise is still pending.
    pub fn is_pending(&self) -> bool {
        self.result().is_none()
    }

    /// Cancels the promise (Lwt's `cancel`).
    ///
    /// * A pending [`task`] promise is rejected with [`Error::Canceled`] at
    ///   once; its `on_cancel` callbacks run first, then its waiter is
    ///   scheduled.
    /// * A spawned task's promise delivers the cancellation to the task:
    ///   the task is scheduled and, in its next poll, the cancelable promises
    ///   it awaits are canceled in turn (down to the deepest one). A task
    ///   that awaits only non-cancelable promises ignores the cancellation.
    ///   The task's promise is rejected when the task returns its error,
    ///   normally `Err(Error::Canceled)` propagated by `?`.
    /// * [`wait`] promises and resolved promises are not affected.
    pub fn cancel(&self) {
        match &self.repr {
            Repr::Ready(_) => {}
            Repr::Cell(cell) => cell.cancel(),
            Repr::Task(task, _) => task.request_cancel(),
        }
    }

    /// Runs `f` if the promise is canceled (Lwt's `on_cancel`): at once if
    /// it already is, never if it resolves otherwise. Callbacks run exactly
    /// once, before the promise's waiter is scheduled.
    pub fn on_cancel(&self, f: impl FnOnce() + 'static) {
        match &self.repr {
            Repr::Ready(r) => {
                if matches!(r, Err(Error::Canceled)) {
                    f();
                }
            }
            Repr::Cell(cell) => cell.on_cancel(Box::new(f)),
            Repr::Task(task, _) => match self.result() {
                None => task.add_on_cancel(Box::new(f)),
                Some(Err(Error::Canceled)) => f(),
                Some(_) => {}
            },
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Promise").field(&self.state()).finish()
    }
}

impl<T> IntoFuture for Promise<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Awaiting<T>;

    #[inline]
    fn into_future(self) -> Awaiting<T> {
        let stage = match self.repr {
            Repr::Ready(result) => Stage::Ready(result),
            Repr::Cell(cell) => Stage::Cell(cell),
            Repr::Task(task, _) => Stage::Task(task),
        };
        Awaiting {
            stage: ManuallyDrop::new(stage),
        }
    }
}

/// Awaiting a [`Promise`].
///
/// Under a cancellation request (see [`crate::cancel`]) it cancels a pending
/// cancelable promise (a [`task`] promise is rejected at once; a spawned
/// task is asked to cancel) and keeps waiting on a [`wait`] promise.
///
/// # Cost of awaiting a resolved promise
///
/// Awaiting an already resolved promise costs what awaiting
/// `core::future::ready` does. `poll` first takes the stage out, as
/// `Option::take` does, and returns a `Ready` result at once (putting any
/// other stage back); a cell's result is moved into the `Ready` stage inline
/// (see `poll_cell`), a task's out of line, and taken from there field by
/// field. Every completed poll leaves `Done`, which the drop that follows an
/// await sees was just written. So a loop of awaits on resolved promises
/// compiles to a plain loop: no dispatch on the kind of promise, no drop
/// glue.
///
/// # Nothing escapes
///
/// No out-of-line code is handed a pointer into an `Awaiting`, and so into
/// the future that awaits it: a task's output comes back from `poll_task`
/// by value, and an unfinished stage is dropped by value (see `Drop`).
/// When the awaiting future lives on the stack (`run`'s main future), the
/// compiler can then keep that future's variables in registers across the
/// awaits of a loop instead of storing and reloading them around every
/// opaque call (the benchmark's `bind_ready` and `wait_wakeup` show it).
/// The stage is a `ManuallyDrop` that only `Drop::drop` drops, so the
/// drop glue of an `Awaiting` is that one small function and is inlined
/// even in builds that unwind; with the stage's own glue behind it, it was
/// called out of line there, with a pointer into the future.
#[must_use = "futures do nothing unless awaited"]
pub struct Awaiting<T> {
    /// Dropped by `Awaiting`'s own `drop` only (see there).
    stage: ManuallyDrop<Stage<T>>,
}

/// What an awaited promise is waiting for, or its result.
enum Stage<T> {
    /// Resolved; the result is not moved out yet.
    Ready(Result<T, Error>),
    /// Resolved through a [`Resolver`].
    Cell(CellRef<T>),
    /// The output of a spawned task.
    Task(TaskRef),
    /// The result was moved out.
    Done,
}

impl<T> Unpin for Awaiting<T> {}

impl<T> Drop for Awaiting<T> {
    /// An await that completed left `Done`, which this sees was just
    /// written: nothing to do, no code. Otherwise the stage is dropped out
    /// of line and by value, so that no out-of-line code (an `Rc`'s
    /// `drop_slow` in an error, say) is handed a pointer into the future
    /// that awaits (see "Nothing escapes" above).
    #[inline]
    fn drop(&mut self) {
        if !matches!(*self.stage, Stage::Done) {
            drop_stage(core::mem::replace(&mut *self.stage, Stage::Done));
        }
    }
}

#[inline(never)]
fn drop_stage<T>(stage: Stage<T>) {
    drop(stage);
}

impl<T> Future for Awaiting<T> {
    type Output = Result<T, Error>;

    /// Always inlined: with `poll_cell` inlined too, LLVM's inliner left it
    /// out of line, and awaiting a resolved promise became a call (the
    /// `Ready` path no longer folded into the caller's loop).
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Taken, then put back if not ready (see "Cost" above).
        match core::mem::replace(&mut *self.stage, Stage::Done) {
            Stage::Ready(result) => return Poll::Ready(result),
            stage => *self.stage = stage,
        }
        // The kind of promise is told here by one comparison, not by a
        // dispatch out of line.
        let polled = match &*self.stage {
            Stage::Cell(cell) => {
                let ptr = cell.ptr;
                self.poll_cell(ptr, cx)
            }
            Stage::Task(task) => {
                let ptr = task.ptr();
                match poll_task::<T>(ptr, cx) {
                    None => Poll::Pending,
                    Some(result) => {
                        // SAFETY: the stage's counted reference, released
                        // below once: the stage is overwritten without
                        // being dropped.
                        let task = unsafe { TaskRef::from_raw(ptr) };
                        // SAFETY: as in `poll_cell`.
                        unsafe { core::ptr::write(&mut *self.stage, Stage::Ready(result)) };
                        drop(task);
                        Poll::Ready(())
                    }
                }
            }
            _ => panic!("promise awaited after completion"),
        };
        if polled.is_pending() {
            return Poll::Pending;
        }
        // Read by variant, field by field, as the poll wrote it (see
        // `PromiseCell::take`), then `Done` is written over it.
        let result = match &*self.stage {
            // SAFETY: moved out once: the stage is overwritten below
            // without being dropped.
            Stage::Ready(Ok(value)) => Ok(unsafe { core::ptr::read(value) }),
            // SAFETY: as above.
            Stage::Ready(Err(error)) => Err(unsafe { core::ptr::read(error) }),
            _ => unreachable!("a completed poll leaves the result ready"),
        };
        // SAFETY: the stage's result was moved out above.
        unsafe { core::ptr::write(&mut *self.stage, Stage::Done) };
        Poll::Ready(result)
    }
}

impl<T> Awaiting<T> {
    /// Polls the cell; once it is resolved, moves its result into the
    /// `Ready` stage and releases the cell.
    ///
    /// Inlined into `poll`, unlike `poll_task`, at the cost of some code at
    /// every await of a promise that may be a cell: the result goes from the
    /// cell to the caller in registers, and the block back to the free list
    /// without a call. Out of line, the result went through the stage in
    /// memory around the call, and with unwinding the stage was
    /// read back with wide loads of the narrow stores just made (a
    /// store-forwarding stall).
    ///
    /// The stage is overwritten in place and the reference it held taken
    /// over by hand: `mem::replace` read the whole old stage back with
    /// 16-byte loads just after `poll` had rewritten its tag with an 8-byte
    /// store, which cannot be forwarded to them (a stall on every await of
    /// a pending promise).
    #[inline(always)]
    fn poll_cell(&mut self, ptr: NonNull<PromiseCell<T>>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the stage's reference keeps the cell alive.
        let cell = unsafe { ptr.as_ref() };
        if cell.is_pending() {
            if !(cell.cancelable && crate::cancel::cancel_requested()) {
                cell.waiter.set(cx.waker());
                return Poll::Pending;
            }
            cell.cancel_for_request();
        }
        // SAFETY: resolved, and not taken yet: the stage leaves `Cell` as
        // it is taken; this future owns the only handle and lends no
        // reference into the value.
        let result = unsafe { cell.take() };
        // SAFETY: the stage's reference, to a cell whose value was just
        // taken; released here and overwritten below without being dropped
        // (releasing cannot unwind, so nothing sees the stage in between).
        unsafe { CellRef::release_taken(ptr) };
        // SAFETY: as above.
        unsafe { core::ptr::write(&mut *self.stage, Stage::Ready(result)) };
        Poll::Ready(())
    }
}

/// Polls a task's handle: its output once it is complete (the handle's
/// reference is the caller's to release), else registers the waker.
/// Out of line, and given the task rather than the awaiting future, so
/// that no pointer into the future escapes (see "Nothing escapes" on
/// [`Awaiting`]); the output comes back by value, through a temporary of
/// the caller's.
#[inline(never)]
fn poll_task<T>(ptr: NonNull<Header>, cx: &mut Context<'_>) -> Option<Result<T, Error>> {
    // SAFETY: the awaiting future's reference keeps the task alive; this
    // borrowed one is never dropped.
    let task = ManuallyDrop::new(unsafe { TaskRef::from_raw(ptr) });
    // SAFETY: the output type is `T` (the handle was built by spawn with
    // it), and the handle's owner lends no reference into the output.
    let result = unsafe { task.take_output::<T>() };
    if result.is_none() {
        if crate::cancel::cancel_requested() {
            task.request_cancel();
        }
        task.set_waiter(cx.waker());
    }
    result
}

/// Resolves the promise of a [`wait`] or [`task`] pair (Lwt's `u`).
pub struct Resolver<T> {
    cell: CellRef<T>,
}

impl<T> Resolver<T> {
    /// Fulfils the promise with `value` (Lwt's `wakeup`). Does nothing if the
    /// promise was canceled.
    #[inline]
    pub fn fulfil(self, value: T) {
        self.resolve(Ok(value));
    }

    /// Rejects the promise with `error` (Lwt's `wakeup_exn`). Does nothing
    /// if the promise was canceled.
    #[inline]
    pub fn reject(self, error: Error) {
        self.resolve(Err(error));
    }

    /// Resolves the promise with `result` (Lwt's `wakeup_result`).
    #[inline]
    pub fn resolve(self, result: Result<T, Error>) {
        // Not dropped, which would resolve again: its reference is taken
        // over instead.
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the reference is released
        // once, by `cell`.
        let cell = unsafe { core::ptr::read(&this.cell) };
        cell.resolve(result);
    }

    /// Whether the promise was canceled.
    pub fn is_canceled(&self) -> bool {
        self.cell.state.get() & CANCELED != 0
    }

    /// Runs `f` if the promise is canceled (see [`Promise::on_cancel`]).
    pub fn on_cancel(&self, f: impl FnOnce() + 'static) {
        self.cell.on_cancel(Box::new(f));
    }
}

impl<T> Drop for Resolver<T> {
    fn drop(&mut self) {
        self.cell.resolve(Err(Error::Abandoned));
    }
}

impl<T> fmt::Debug for Resolver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("pending", &self.cell.is_pending())
            .finish()
    }
}
