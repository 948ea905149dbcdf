//! Tasks: spawned futures, their memory layout and their wakers.
//!
//! A task is one block of its executor's slab (see [`crate::slab`])
//! holding a [`Header`] followed by the future, which is replaced in place
//! by its output when it completes. The handle returned by [`spawn`] points
//! at the same block, so a spawned task costs exactly one block; the header
//! is 48 bytes on x86_64 and is all a task costs beyond its future (its
//! output shares the future's memory).
//!
//! # The header
//!
//! * `refs`: a non-atomic reference count. The handle, every waker, and the
//!   run queue while the task is queued each hold one. A task nobody can
//!   wake and nobody holds is freed, dropping its future.
//! * `state`: flags (scheduled, complete, empty, cancel requested,
//!   detached, has local storage).
//! * `vtable`: the task's type-erased operations. Never null, which is
//!   what tells a live task from a free block when the executor looks for
//!   the tasks still pending as `run` returns (see [`crate::slab`]).
//! * `next`: the intrusive link of the run queue (Embassy's design: queuing
//!   never allocates).
//! * `waiter`: the waker of whoever awaits the task's handle, in one word:
//!   a task's waker (or a combinator's branch waker) is stored as its data
//!   pointer, tagged in the low bits; any other waker is boxed.
//! * `extras`: rarely used data (name, `on_cancel` callbacks, the
//!   promise-local storage the task inherited, a `dont_wait` handler), boxed
//!   so that tasks without them pay one pointer.
//!
//! # Wakers, and why they are sound without atomics
//!
//! A waker is one pointer to the header (Embassy's one-pointer waker) with a
//! reference count, so waking never allocates. The count and the run queue
//! are plain `Cell`s, which is what makes waking cheap: no atomic
//! read-modify-write on the hot path.
//!
//! [`Waker`] is `Send + Sync`, so safe code may clone, wake or drop one on
//! another thread. Every waker operation therefore first asks whether it runs
//! on the thread that owns the task's executor (one thread-local address
//! compared with one stored in the executor). On the owner thread it touches
//! the `Cell`s directly. On any other thread it never touches them: it
//! queues the operation (clone, wake, drop) in a mutex-protected list of the
//! executor ([`crate::foreign`]) and wakes the event loop, which applies the
//! operations in order on the owner thread. A clone made on a foreign thread
//! is a separate boxed waker whose every operation goes through that list,
//! so a reference it stands for is never released before it was taken; and
//! when the count reaches zero on the owner thread, the list is applied
//! before the task is freed, since a foreign clone's reference may still be
//! queued there while its original came back and was dropped. This
//! costs a thread-local read per waker operation instead of atomics on every
//! one; a promise cell, which never leaves its thread, asks once, when it
//! stores a waker ([`Waiter`]). Without the `std` feature (bare metal) there
//! is one thread of control; interrupt handlers must not touch wakers and
//! use [`crate::InterruptSignal`] instead.

use alloc::alloc::Layout;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::{Cell, UnsafeCell};
use core::future::Future;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use crate::Error;
use crate::executor::{self, Core};
use crate::local::Locals;
use crate::ready::BRANCH_WAKER;

/// The task is in the run queue.
pub(crate) const SCHEDULED: u32 = 1;
/// The future has completed (it is gone from the task's memory).
pub(crate) const COMPLETE: u32 = 2;
/// Once complete: there is no output in the task's memory (not written yet,
/// or moved out).
const EMPTY: u32 = 16;
/// A cancellation was requested; the next poll delivers it.
pub(crate) const CANCEL: u32 = 4;
/// Nobody will await the task: failures go to the failure handler.
pub(crate) const DETACHED: u32 = 8;
/// The extras hold promise-local storage the task inherited: set at spawn,
/// never cleared (the extras' `locals` are never replaced), so that a poll
/// finds out with the flags it reads anyway that it has none to install.
const LOCALS: u32 = 32;
/// The tag bits of a stored waiter word (data pointers are 8-aligned).
const TAG: usize = 0b11;
/// A boxed `Waker`.
const BOXED: usize = 0b01;
/// A branch waker of a combinator ([`crate::ready`]).
const BRANCH: usize = 0b10;

/// A handler for the failure of one detached task ([`crate::dont_wait`]).
pub(crate) type FailureHandler = Box<dyn FnOnce(Error)>;

/// What a task rarely needs, allocated on first use.
#[derive(Default)]
pub(crate) struct Extras {
    pub(crate) name: Option<&'static str>,
    pub(crate) on_cancel: Vec<Box<dyn FnOnce()>>,
    pub(crate) locals: Locals,
    pub(crate) handler: Option<FailureHandler>,
}

/// The type-erased operations of a task.
pub(crate) struct Vtable {
    /// Polls the future once; completes the task when it is ready. The
    /// task must not be complete (the caller has read its flags already).
    poll: unsafe fn(NonNull<Header>),
    /// Drops the future or output and frees the allocation.
    dealloc: unsafe fn(NonNull<Header>),
    /// Drops a pending task's future and rejects it with `Canceled`.
    abort: unsafe fn(NonNull<Header>),
    /// Where the output (`Result<T, Error>`) is, once complete, from the
    /// start of the task: a number, not a function, so that joining a task
    /// makes no indirect call.
    output_offset: usize,
}

/// The start of every task allocation.
#[repr(C)]
pub(crate) struct Header {
    // `vtable` is at the slab's live word (checked below).
    refs: Cell<u32>,
    state: Cell<u32>,
    vtable: &'static Vtable,
    /// The executor, kept alive by a strong count per task.
    core: NonNull<Core>,
    pub(crate) next: Cell<Option<NonNull<Header>>>,
    /// 0, a task waker's data pointer, or a `Box<Waker>` pointer with the
    /// low bit set (see `set_waiter`).
    waiter: Cell<usize>,
    extras: Cell<Option<Box<Extras>>>,
}

const _: () = assert!(core::mem::offset_of!(Header, vtable) == crate::slab::LIVE_WORD);

/// The future, replaced in place by its output. The header's flags tell
/// which is there (the future until `COMPLETE`, then the output unless
/// `EMPTY`), so the output shares the future's bytes and needs no tag.
union Stage<F: Future> {
    future: ManuallyDrop<F>,
    output: ManuallyDrop<F::Output>,
}

#[repr(C)]
struct Task<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

impl Header {
    pub(crate) fn state(&self) -> u32 {
        self.state.get()
    }

    /// Replaces the stored waiter word, dropping the previous waiter.
    fn set_waiter_word(&self, word: usize) {
        drop(self.take_waiter());
        self.waiter.set(word);
    }

    /// Takes the waiter out.
    fn take_waiter(&self) -> Option<Waker> {
        // SAFETY: the word `set_waiter` stored, taken out once.
        unsafe { decode(self.waiter.replace(0)) }
    }

    fn set(&self, flag: u32) {
        self.state.set(self.state.get() | flag);
    }

    fn clear(&self, flag: u32) {
        self.state.set(self.state.get() & !flag);
    }

    pub(crate) fn core(&self) -> &Core {
        // SAFETY: every task holds a strong count on its executor's core, so
        // the core outlives the header.
        unsafe { self.core.as_ref() }
    }

    /// Runs `f` on the extras, allocating them on first use.
    pub(crate) fn with_extras<R>(&self, f: impl FnOnce(&mut Extras) -> R) -> R {
        let mut extras = self.extras.take().unwrap_or_default();
        let r = f(&mut extras);
        self.extras.set(Some(extras));
        r
    }

    /// The context a poll installs when the task has a cancellation to
    /// deliver or local storage (`CANCEL` or `LOCALS` set): whether it is
    /// canceled (clearing the request) and its promise-local storage. Out
    /// of line: most polls have neither.
    #[cold]
    #[inline(never)]
    fn take_context(&self) -> (bool, Locals) {
        let cancel = self.state() & CANCEL != 0;
        self.clear(CANCEL);
        let locals = self.peek_extras(|extras| extras.and_then(|e| e.locals.clone()));
        (cancel, locals)
    }

    /// Drops what the header owns, before its block is freed: the waiter
    /// and the extras, each behind an inline check (most tasks have
    /// neither by then). Its other fields are plain values, so this stands
    /// for the header's drop, whose glue for the extras was a call that
    /// saved six registers before finding nothing to drop.
    #[inline]
    fn drop_contents(&self) {
        if self.waiter.get() != 0 {
            drop(self.take_waiter());
        }
        if let Some(extras) = self.extras.take() {
            drop_extras(extras);
        }
    }

    /// Runs `f` on the extras if there are any.
    pub(crate) fn peek_extras<R>(&self, f: impl FnOnce(Option<&mut Extras>) -> R) -> R {
        let mut extras = self.extras.take();
        let r = f(extras.as_deref_mut());
        self.extras.set(extras);
        r
    }
}

#[cold]
#[inline(never)]
fn drop_extras(extras: Box<Extras>) {
    drop(extras);
}

/// Whether the waker a waiter word encodes (0 for none, a task's or a
/// branch waker's data pointer, or a boxed waker, tagged as in
/// [`Header::waiter`]) would wake what `waker` wakes.
///
/// # Safety
/// `word` is a waiter word whose boxed waker, if any, is still owned.
unsafe fn stored_will_wake(word: usize, waker: &Waker) -> bool {
    match word & TAG {
        _ if word == 0 => false,
        BOXED => {
            // SAFETY: a boxed waker still owned (the caller's contract).
            unsafe { &*((word & !TAG) as *const Waker) }.will_wake(waker)
        }
        BRANCH => word & !TAG == waker.data() as usize && ptr::eq(waker.vtable(), &BRANCH_WAKER),
        _ => word == waker.data() as usize && ptr::eq(waker.vtable(), &TASK_WAKER),
    }
}

/// One counted reference to a task (on the owner thread).
pub(crate) struct TaskRef {
    ptr: NonNull<Header>,
}

impl TaskRef {
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: this reference keeps the allocation alive.
        unsafe { self.ptr.as_ref() }
    }

    /// The header this reference points at.
    pub(crate) fn ptr(&self) -> NonNull<Header> {
        self.ptr
    }

    /// Takes over the reference `ptr` stands for.
    ///
    /// # Safety
    /// `ptr` must be a live task whose count includes one reference that the
    /// caller gives up.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> Self {
        TaskRef { ptr }
    }

    /// Polls the task once, with its cancellation request, local storage and
    /// identity installed as the executor's current context.
    #[inline]
    pub(crate) fn poll(&self) {
        // SAFETY: the vtable belongs to this allocation, and `in_context`
        // runs the poll only if the task is not complete.
        self.in_context(|| unsafe { (self.header().vtable.poll)(self.ptr) });
    }

    /// Runs `poll` (a poll of the task's future) with the task's
    /// cancellation request, local storage and identity installed as the
    /// executor's current context, unless the task is complete.
    #[inline(always)]
    fn in_context(&self, poll: impl FnOnce()) {
        let header = self.header();
        let state = header.state();
        // One test for the common case: not complete, no cancellation to
        // deliver, no local storage.
        let (cancel, locals) = if state & (COMPLETE | CANCEL | LOCALS) == 0 {
            (false, None)
        } else if state & COMPLETE == 0 {
            header.take_context()
        } else {
            return;
        };
        let core = header.core();
        let saved = core.enter(self.ptr, cancel, locals);
        poll();
        core.leave(saved);
    }

    /// Drops the future of a pending task and rejects it with `Canceled`,
    /// without waking or reporting anything (executor shutdown).
    pub(crate) fn abort(&self) {
        // SAFETY: the vtable belongs to this allocation.
        unsafe { (self.header().vtable.abort)(self.ptr) };
    }

    /// Asks the task to deliver a cancellation at its next poll, and
    /// schedules that poll.
    pub(crate) fn request_cancel(&self) {
        let header = self.header();
        if header.state() & COMPLETE == 0 {
            header.set(CANCEL);
            schedule_by_ref(self.ptr);
        }
    }

    /// Registers the waker of whoever awaits the task.
    pub(crate) fn set_waiter(&self, waker: &Waker) {
        let header = self.header();
        // SAFETY: the word is the task's waiter word, owned by the header.
        if unsafe { stored_will_wake(header.waiter.get(), waker) } {
            return;
        }
        let clone = waker.clone();
        // A task waker cloned on its owner thread is a task waker again, and
        // a branch waker a branch waker: both are stored as their (aligned)
        // data pointer, whose reference the clone took; anything else is
        // boxed.
        header.set_waiter_word(if ptr::eq(clone.vtable(), &TASK_WAKER) {
            ManuallyDrop::new(clone).data() as usize
        } else if ptr::eq(clone.vtable(), &BRANCH_WAKER) {
            ManuallyDrop::new(clone).data() as usize | BRANCH
        } else {
            Box::into_raw(Box::new(clone)) as usize | BOXED
        });
    }

    /// The output, once complete.
    ///
    /// # Safety
    /// `T` must be the task's output value type.
    pub(crate) unsafe fn output<T>(&self) -> Option<&Result<T, Error>> {
        let header = self.header();
        if header.state() & COMPLETE == 0 {
            return None;
        }
        if header.state() & EMPTY != 0 {
            return None;
        }
        // SAFETY: complete and not empty, so the stage holds the output, of
        // type `Result<T, Error>` (the caller vouches for `T`); it is only
        // moved out by `take_output`, which the handle's owner calls with
        // no reference into it alive.
        Some(unsafe { self.output_ptr::<T>().as_ref() })
    }

    /// Where the output is (see [`Vtable::output_offset`]).
    fn output_ptr<T>(&self) -> NonNull<Result<T, Error>> {
        // SAFETY: the offset of the stage within this task's block.
        unsafe {
            self.ptr
                .cast::<u8>()
                .add(self.header().vtable.output_offset)
                .cast()
        }
    }

    /// Moves the output out, once complete.
    ///
    /// # Safety
    /// `T` must be the task's output value type, and the output must not be
    /// borrowed.
    pub(crate) unsafe fn take_output<T>(&self) -> Option<Result<T, Error>> {
        let header = self.header();
        if header.state() & (COMPLETE | EMPTY) != COMPLETE {
            return None;
        }
        // Complete and not empty: the output is there, of type
        // `Result<T, Error>` (the caller vouches for `T`).
        let output = self.output_ptr::<T>();
        header.set(EMPTY);
        // Read here, where `T` is known, rather than written by the vtable
        // into a slot of the caller's: the caller would copy that slot with
        // wide loads of narrow stores just made (a store-forwarding stall).
        // SAFETY: the output is in place and not borrowed (caller's
        // contract); `EMPTY` now says it was moved out, so it is read once.
        Some(unsafe { output.read() })
    }

    pub(crate) fn add_on_cancel(&self, f: Box<dyn FnOnce()>) {
        self.header().with_extras(|e| e.on_cancel.push(f));
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> Self {
        let refs = &self.header().refs;
        refs.set(refs.get() + 1);
        TaskRef { ptr: self.ptr }
    }
}

impl Drop for TaskRef {
    /// Inlined, like `release`: in crates using this one (where futures
    /// are instantiated) it was an out-of-line call.
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this reference is counted and is given up here.
        unsafe { release(self.ptr) };
    }
}

/// Drops one reference; frees the task at zero. Inlined: most releases
/// only decrement (a waker woken or dropped while its task lives on).
///
/// # Safety
/// The caller gives up one counted reference to a live task, on the owner
/// thread.
#[inline]
pub(crate) unsafe fn release(ptr: NonNull<Header>) {
    // SAFETY: live by the caller's contract.
    let header = unsafe { ptr.as_ref() };
    let n = header.refs.get() - 1;
    header.refs.set(n);
    if n == 0 {
        // SAFETY: that was the last counted reference, given up here.
        unsafe { release_last(ptr) };
    }
}

/// Frees a task whose count reached zero, unless other threads queued
/// references to it.
///
/// # Safety
/// As for [`release`], once the count is zero.
#[inline(never)]
unsafe fn release_last(ptr: NonNull<Header>) {
    // SAFETY: live by the caller's contract.
    let header = unsafe { ptr.as_ref() };
    if !foreign_references_pending(header) {
        // SAFETY: that was the last reference.
        unsafe { (header.vtable.dealloc)(ptr) };
    }
}

/// Called when the count reached zero: applies the waker operations other
/// threads queued, which may take references the count does not show yet,
/// and tells whether the task is referenced after all.
///
/// A foreign thread holding a waker can clone it (queuing a `Retain`) and
/// send the original back to this thread, which drops it here: the clone's
/// `Retain` was queued before the original was sent, so applying the queue
/// now restores the clone's reference before the task could be freed.
#[cfg(feature = "std")]
fn foreign_references_pending(header: &Header) -> bool {
    let core = header.core();
    if !core.remote_pending() {
        return false;
    }
    // Hold a reference while applying, so that a queued release of this
    // task does not free it under our feet.
    header.refs.set(1);
    core.apply_remote();
    let n = header.refs.get() - 1;
    header.refs.set(n);
    n != 0
}

/// Without `std` no other thread queues waker operations.
#[cfg(not(feature = "std"))]
fn foreign_references_pending(_: &Header) -> bool {
    false
}

/// Puts the task in its executor's run queue unless it is already there,
/// complete, or its executor has stopped. Takes a new reference for the
/// queue.
#[inline]
pub(crate) fn schedule_by_ref(ptr: NonNull<Header>) {
    // SAFETY: callers hold a reference.
    let header = unsafe { ptr.as_ref() };
    if schedulable(header) {
        header.refs.set(header.refs.get() + 1);
        queue(header, ptr);
    }
}

/// `schedule_by_ref` then `release` (a waker woken by value), without
/// touching the count when the task is queued: the reference given up
/// becomes the queue's.
///
/// # Safety
/// As for [`release`].
#[inline]
unsafe fn schedule_owned(ptr: NonNull<Header>) {
    // SAFETY: the caller gives up a counted reference, so the task is alive.
    let header = unsafe { ptr.as_ref() };
    if schedulable(header) {
        queue(header, ptr);
    } else {
        // SAFETY: by the caller's contract.
        unsafe { release(ptr) };
    }
}

/// Whether the task can be queued: not queued already, not complete, and
/// its executor still running.
#[inline]
fn schedulable(header: &Header) -> bool {
    header.state() & (SCHEDULED | COMPLETE) == 0 && header.core().is_open()
}

/// Queues the task, with a reference the caller hands to the queue.
#[inline]
fn queue(header: &Header, ptr: NonNull<Header>) {
    header.set(SCHEDULED);
    header.core().queue.push(ptr);
}

/// Called by the run loop on a task taken from the queue.
pub(crate) fn unschedule(header: &Header) {
    header.clear(SCHEDULED);
}

// ---------------------------------------------------------------------------
// Spawning

/// Allocates a task for `future` in the current executor, polls it once
/// (promises are eager), and returns the reference the spawner holds.
///
/// Inlined, like `spawn`, so that the future is built in place in its
/// block: passed on out of line, a future just written field by field was
/// copied with wide loads, a store-forwarding stall per spawn.
#[inline]
pub(crate) fn spawn_raw<F, T>(future: F, flags: u32, extras: Option<Box<Extras>>) -> TaskRef
where
    F: Future<Output = Result<T, Error>> + 'static,
    T: 'static,
{
    let task = new_task(future, flags, extras);
    task.poll();
    task
}

/// Allocates a task for `future` in the current executor, not polled yet.
#[inline]
fn new_task<F, T>(future: F, flags: u32, extras: Option<Box<Extras>>) -> TaskRef
where
    F: Future<Output = Result<T, Error>> + 'static,
    T: 'static,
{
    let core = executor::current_core_counted();
    let flags = match &extras {
        Some(extras) if extras.locals.is_some() => flags | LOCALS,
        _ => flags,
    };
    let layout = Layout::new::<Task<F>>();
    // SAFETY: the core is alive (the new task holds a count on it).
    let ptr = unsafe { core.as_ref() }
        .slab
        .alloc(layout)
        .cast::<Task<F>>();
    // SAFETY: a fresh block of the task's layout.
    unsafe {
        ptr.write(Task {
            header: Header {
                refs: Cell::new(1),
                state: Cell::new(flags),
                vtable: &Task::<F>::VTABLE,
                core,
                next: Cell::new(None),
                waiter: Cell::new(0),
                extras: Cell::new(extras),
            },
            stage: UnsafeCell::new(Stage {
                future: ManuallyDrop::new(future),
            }),
        });
    }
    let ptr = ptr.cast::<Header>();
    // SAFETY: the new allocation's count is 1 and is handed over.
    unsafe { TaskRef::from_raw(ptr) }
}

// ---------------------------------------------------------------------------
// Held tasks

/// A task whose future is held and polled by its owner instead of living in
/// the task's block: `run`'s main future, which stays on `run`'s stack, as
/// the future of Tokio's `block_on` does. The block holds the header (so
/// the task has wakers, a cancellation flag and promise-local storage like
/// any other) and room for the output; its own future, `Pending`, is never
/// polled: the run queue hands the task to its owner ([`poll_held`]).
///
/// Why: the main task is usually the one running the program's loop, and
/// polled here its poll is a direct call that can be inlined into the
/// event loop, instead of an indirect call through the task's vtable; its
/// state sits on the stack next to the stack slots its code uses, not in a
/// heap block whose address varies from run to run, and which the
/// compiler must assume other code can reach (see "Nothing escapes" on
/// `Awaiting`, in promise.rs).
#[inline]
pub(crate) fn spawn_held<T: 'static>() -> TaskRef {
    new_task(core::future::pending::<Result<T, Error>>(), 0, None)
}

/// Polls the future of a held task (see [`spawn_held`]) once, as the
/// executor polls a task's own future: with the task's cancellation
/// request, local storage and identity installed, and its waker. When the
/// future completes, it is dropped in place (`slot` becomes `None`) and
/// its output becomes the task's, which completes it.
///
/// # Safety
/// `task` was made by `spawn_held::<T>()` and `slot` holds the future it
/// stands for, polled by nothing else.
#[inline(always)]
pub(crate) unsafe fn poll_held<F, T>(task: &TaskRef, mut slot: Pin<&mut Option<F>>)
where
    F: Future<Output = Result<T, Error>>,
{
    task.in_context(|| {
        let Some(future) = slot.as_mut().as_pin_mut() else {
            return;
        };
        // As in `Task::poll`: the owner's reference keeps the task alive,
        // and this borrowed waker is never dropped.
        // SAFETY: the raw waker follows the contract of `TASK_WAKER`.
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw_waker(task.ptr)) });
        if let Poll::Ready(output) = future.poll(&mut Context::from_waker(&waker)) {
            let header = task.header();
            let failure = output.as_ref().err().cloned();
            header.set(COMPLETE | EMPTY);
            // Assigning drops the future in place (and still writes `None`
            // if its drop panics).
            slot.set(None);
            // SAFETY: the task's stage is a `Pending<Result<T, Error>>` (the
            // caller's contract) that was never polled and is complete and
            // empty now: its output slot holds nothing to drop.
            unsafe { task.output_ptr::<T>().write(output) };
            header.clear(EMPTY);
            complete(header, failure);
        }
    });
}

impl<F, T> Task<F>
where
    F: Future<Output = Result<T, Error>> + 'static,
    T: 'static,
{
    const VTABLE: Vtable = Vtable {
        poll: Self::poll,
        dealloc: Self::dealloc,
        abort: Self::abort,
        // The output is at the start of the stage (a union).
        output_offset: core::mem::offset_of!(Task<F>, stage),
    };

    unsafe fn poll(ptr: NonNull<Header>) {
        // SAFETY: the vtable is only reached through a `Task<F>` header.
        let task = unsafe { ptr.cast::<Task<F>>().as_ref() };
        // SAFETY: the stage is only accessed by this poll while the task is
        // not complete (the handle's accessors wait for `COMPLETE`), and
        // polls of one task never nest.
        let stage = unsafe { &mut *task.stage.get() };
        // SAFETY: not complete (the vtable's contract), so the future is in
        // place; it stays there in its heap block until dropped there, so
        // it is pinned.
        let future = unsafe { Pin::new_unchecked(&mut *stage.future) };
        // The executor's own reference keeps the task alive during the poll;
        // this borrowed waker is never dropped, so it takes no reference.
        // SAFETY: the raw waker follows the contract of `TASK_WAKER`.
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw_waker(ptr)) });
        let mut cx = Context::from_waker(&waker);
        if let Poll::Ready(output) = future.poll(&mut cx) {
            let failure = output.as_ref().err().cloned();
            // From here on nothing is in the stage until the output is
            // written: a panic in the future's drop leaks, never drops twice.
            task.header.set(COMPLETE | EMPTY);
            // SAFETY: the future is in place and is dropped exactly once.
            unsafe { ManuallyDrop::drop(&mut stage.future) };
            stage.output = ManuallyDrop::new(output);
            task.header.clear(EMPTY);
            complete(&task.header, failure);
        }
    }

    /// Used when the executor shuts down: nothing is woken or reported.
    unsafe fn abort(ptr: NonNull<Header>) {
        // SAFETY: the vtable is only reached through a `Task<F>` header.
        let task = unsafe { ptr.cast::<Task<F>>().as_ref() };
        if task.header.state() & COMPLETE != 0 {
            return;
        }
        task.header.set(COMPLETE | EMPTY);
        // SAFETY: not complete, so the future was in place; no poll runs
        // during shutdown, and `COMPLETE | EMPTY` is set before the drop.
        unsafe { ManuallyDrop::drop(&mut (*task.stage.get()).future) };
        // SAFETY: as above; the stage is empty.
        unsafe { (*task.stage.get()).output = ManuallyDrop::new(Err(Error::Canceled)) };
        task.header.clear(EMPTY | CANCEL);
        // The waiter's reference may close a cycle (a parent awaiting this
        // task, held by this task's future): release it.
        drop(task.header.take_waiter());
    }

    unsafe fn dealloc(ptr: NonNull<Header>) {
        let task = ptr.cast::<Task<F>>();
        // SAFETY: this was the last reference: the task is alive and nothing
        // else uses it from here on.
        let (core, state) = unsafe { (task.as_ref().header.core, task.as_ref().header.state()) };
        // SAFETY: as above; the flags tell what the stage holds.
        unsafe {
            let stage = &mut *(*task.as_ptr()).stage.get();
            if state & COMPLETE == 0 {
                ManuallyDrop::drop(&mut stage.future);
            } else if state & EMPTY == 0 {
                ManuallyDrop::drop(&mut stage.output);
            }
            (*task.as_ptr()).header.drop_contents();
        }
        // SAFETY: the block came from this core's slab with this layout
        // and its contents were just dropped; the core is alive until the
        // count the task held is released below.
        unsafe {
            core.as_ref()
                .slab
                .free(ptr.cast(), Layout::new::<Task<F>>())
        };
        // SAFETY: the task's strong count on its core, taken at spawn.
        unsafe { executor::release_core(core) };
    }
}

/// Marks the task complete, runs its `on_cancel` callbacks if it was
/// canceled, then schedules its waiter, or reports its failure if detached.
fn complete(header: &Header, failure: Option<Error>) {
    header.set(COMPLETE);
    header.clear(CANCEL);
    let canceled = matches!(failure, Some(Error::Canceled));
    let (mut handler, mut name) = (None, None);
    // Taking the extras out leaves the cell as it was when there are none,
    // the common case.
    if let Some(mut extras) = header.extras.take() {
        let callbacks = if canceled {
            core::mem::take(&mut extras.on_cancel)
        } else {
            Vec::new()
        };
        handler = extras.handler.take();
        name = extras.name;
        header.extras.set(Some(extras));
        callbacks.into_iter().for_each(|f| f());
    }
    if let Some(w) = header.take_waiter() {
        wake(w);
    }
    if header.state() & DETACHED != 0
        && let Some(error) = failure
    {
        match handler {
            Some(h) => h(error),
            None => header.core().report_failure(&error, name),
        }
    }
}

// ---------------------------------------------------------------------------
// Wakers

static TASK_WAKER: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

fn raw_waker(ptr: NonNull<Header>) -> RawWaker {
    RawWaker::new(ptr.as_ptr().cast_const().cast(), &TASK_WAKER)
}

/// Whether the caller runs on the thread owning the task's executor.
#[cfg(feature = "std")]
#[inline]
fn on_owner_thread(ptr: NonNull<Header>) -> bool {
    // SAFETY: the waker calling this holds a reference, so the header and
    // (through the header's strong count) the core are alive; `core` and
    // the core's `home` are written once before any waker exists.
    unsafe { executor::is_home((*ptr.as_ptr()).core) }
}

fn header_ptr(data: *const ()) -> NonNull<Header> {
    // SAFETY: task wakers are only built from non-null header pointers.
    unsafe { NonNull::new_unchecked(data.cast_mut().cast()) }
}

// Without `std` there is one thread of control, so every waker operation
// takes the owner's path.

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned holds a reference.
    unsafe { clone_task_waker(header_ptr(data)) }
}

/// # Safety
/// The caller holds a reference to the task (through the waker cloned).
#[inline(always)]
unsafe fn clone_task_waker(ptr: NonNull<Header>) -> RawWaker {
    #[cfg(feature = "std")]
    if !on_owner_thread(ptr) {
        return foreign_clone(ptr);
    }
    // SAFETY: owner thread, live header (the cloned waker holds a count).
    let refs = unsafe { &ptr.as_ref().refs };
    refs.set(refs.get() + 1);
    raw_waker(ptr)
}

unsafe fn waker_wake(data: *const ()) {
    // SAFETY: waking by value gives up the waker's reference.
    unsafe { wake_task(header_ptr(data)) }
}

/// # Safety
/// The caller gives up one reference to the task (a waker woken by value).
#[inline(always)]
unsafe fn wake_task(ptr: NonNull<Header>) {
    #[cfg(feature = "std")]
    if !on_owner_thread(ptr) {
        return foreign_op(ptr, ForeignOp::Wake);
    }
    // SAFETY: by the caller's contract.
    unsafe { schedule_owned(ptr) };
}

/// `waker.wake()`, with a task waker's path inlined: the runtime's own
/// wake-ups skip the indirect call through the vtable.
#[inline]
pub(crate) fn wake(waker: Waker) {
    if ptr::eq(waker.vtable(), &TASK_WAKER) {
        let waker = ManuallyDrop::new(waker);
        // SAFETY: a task waker's data is its header, and waking by value
        // gives up the reference it held (it is not dropped).
        unsafe { wake_task(header_ptr(waker.data())) };
    } else {
        waker.wake();
    }
}

/// `waker.clone()`, with a task waker's path inlined (see [`wake`]).
#[inline]
pub(crate) fn clone_waker(waker: &Waker) -> Waker {
    if ptr::eq(waker.vtable(), &TASK_WAKER) {
        // SAFETY: a task waker's data is its header; `waker` holds a
        // reference while it is cloned; the raw waker follows the contract
        // of its vtable (`TASK_WAKER` or the foreign one).
        unsafe { Waker::from_raw(clone_task_waker(header_ptr(waker.data()))) }
    } else {
        waker.clone()
    }
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    let ptr = header_ptr(data);
    #[cfg(feature = "std")]
    if !on_owner_thread(ptr) {
        return foreign_op(ptr, ForeignOp::WakeByRef);
    }
    schedule_by_ref(ptr);
}

unsafe fn waker_drop(data: *const ()) {
    let ptr = header_ptr(data);
    #[cfg(feature = "std")]
    if !on_owner_thread(ptr) {
        return foreign_op(ptr, ForeignOp::Release);
    }
    // SAFETY: dropping the waker gives up its reference.
    unsafe { release(ptr) };
}

/// A waker operation made on a thread that does not own the task.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug)]
pub(crate) enum ForeignOp {
    /// Take one reference (a clone made on a foreign thread).
    Retain,
    /// Give up one reference.
    Release,
    /// Schedule, then give up one reference.
    Wake,
    /// Schedule.
    WakeByRef,
}

/// Applies an operation queued by a foreign thread, on the owner thread.
#[cfg(feature = "std")]
///
/// # Safety
/// `ptr` is a task whose count includes every reference the queued
/// operations still to be applied will release, in queue order.
pub(crate) unsafe fn apply_foreign(ptr: NonNull<Header>, op: ForeignOp) {
    match op {
        ForeignOp::Retain => {
            // SAFETY: live by the contract.
            let refs = unsafe { &ptr.as_ref().refs };
            refs.set(refs.get() + 1);
        }
        // SAFETY: the reference released is the one the op stands for.
        ForeignOp::Release => unsafe { release(ptr) },
        // SAFETY: as above.
        ForeignOp::Wake => unsafe { schedule_owned(ptr) },
        ForeignOp::WakeByRef => schedule_by_ref(ptr),
    }
}

#[cfg(feature = "std")]
fn foreign_op(ptr: NonNull<Header>, op: ForeignOp) {
    // SAFETY: the header is alive (the calling waker holds a count that only
    // the owner thread can release, after this op in queue order) and
    // `core` is never written after creation; the core's remote queue is
    // `Sync`.
    let core = unsafe { (*ptr.as_ptr()).core };
    // SAFETY: as above: the core outlives its tasks.
    unsafe { executor::remote(core) }.push(ptr, op);
}

/// A clone made on a foreign thread: a boxed pointer whose every operation
/// goes through the owner's queue, after the `Retain` queued here.
#[cfg(feature = "std")]
fn foreign_clone(ptr: NonNull<Header>) -> RawWaker {
    foreign_op(ptr, ForeignOp::Retain);
    foreign_waker(ptr)
}

#[cfg(feature = "std")]
static FOREIGN_WAKER: RawWakerVTable = RawWakerVTable::new(
    foreign_waker_clone,
    foreign_waker_wake,
    foreign_waker_wake_by_ref,
    foreign_waker_drop,
);

#[cfg(feature = "std")]
fn foreign_waker(ptr: NonNull<Header>) -> RawWaker {
    let boxed = Box::new(ptr.as_ptr() as usize);
    RawWaker::new(Box::into_raw(boxed).cast_const().cast(), &FOREIGN_WAKER)
}

#[cfg(feature = "std")]
fn foreign_target(data: *const ()) -> NonNull<Header> {
    // SAFETY: foreign wakers are built by `foreign_waker` from a boxed,
    // non-null header address.
    unsafe { NonNull::new_unchecked(*data.cast::<usize>() as *mut Header) }
}

#[cfg(feature = "std")]
unsafe fn foreign_waker_clone(data: *const ()) -> RawWaker {
    foreign_clone(foreign_target(data))
}

#[cfg(feature = "std")]
unsafe fn foreign_waker_wake(data: *const ()) {
    foreign_op(foreign_target(data), ForeignOp::Wake);
    // SAFETY: the box made by `foreign_waker`, given up by waking by value.
    drop(unsafe { Box::from_raw(data.cast_mut().cast::<usize>()) });
}

#[cfg(feature = "std")]
unsafe fn foreign_waker_wake_by_ref(data: *const ()) {
    foreign_op(foreign_target(data), ForeignOp::WakeByRef);
}

#[cfg(feature = "std")]
unsafe fn foreign_waker_drop(data: *const ()) {
    foreign_op(foreign_target(data), ForeignOp::Release);
    // SAFETY: the box made by `foreign_waker`, given up by dropping.
    drop(unsafe { Box::from_raw(data.cast_mut().cast::<usize>()) });
}

/// A waker kept in one word by a value that never leaves its thread (a
/// promise cell): 0 for none; a task waker found on its owner thread when
/// it was stored, as its header pointer; a branch waker as its data pointer
/// tagged [`BRANCH`]; any other waker boxed, tagged [`BOXED`].
///
/// The type is not `Send`, so the thread that stored a task waker is the
/// one that wakes or drops it: a task waker checked once, when stored, is
/// woken and dropped on its owner thread without asking again. A task
/// waker stored on another thread is the foreign clone [`clone_waker`]
/// makes there, which is boxed.
pub(crate) struct Waiter {
    word: Cell<usize>,
    not_send: PhantomData<*const ()>,
}

impl Waiter {
    pub(crate) const fn new() -> Self {
        Waiter {
            word: Cell::new(0),
            not_send: PhantomData,
        }
    }

    /// Registers `waker`. The first registration of a task waker on its
    /// owner thread, the common case, is a count and a store; anything else
    /// is out of line.
    #[inline]
    pub(crate) fn set(&self, waker: &Waker) {
        if self.word.get() == 0 && ptr::eq(waker.vtable(), &TASK_WAKER) {
            let ptr = header_ptr(waker.data());
            #[cfg(feature = "std")]
            let owner = on_owner_thread(ptr);
            #[cfg(not(feature = "std"))]
            let owner = true;
            if owner {
                // SAFETY: owner thread, live header (`waker` holds a count).
                let refs = unsafe { &ptr.as_ref().refs };
                refs.set(refs.get() + 1);
                self.word.set(ptr.as_ptr() as usize);
                return;
            }
        }
        self.set_other(waker);
    }

    #[inline(never)]
    fn set_other(&self, waker: &Waker) {
        let word = self.word.get();
        // SAFETY: the word is this waiter's, which owns what it encodes.
        if unsafe { stored_will_wake(word, waker) } {
            return;
        }
        // A task waker cloned on its owner thread is stored as its header;
        // cloned elsewhere it is a foreign clone (see `clone_task_waker`),
        // boxed like any other waker but a branch waker.
        let clone = clone_waker(waker);
        let new = if ptr::eq(clone.vtable(), &TASK_WAKER) {
            ManuallyDrop::new(clone).data() as usize
        } else if ptr::eq(clone.vtable(), &BRANCH_WAKER) {
            ManuallyDrop::new(clone).data() as usize | BRANCH
        } else {
            Box::into_raw(Box::new(clone)) as usize | BOXED
        };
        // SAFETY: the stored waiter, given up once (the word is overwritten).
        unsafe { drop_waiter(self.word.replace(new)) };
    }

    /// Wakes the waiter, if any, and forgets it.
    #[inline]
    pub(crate) fn wake(&self) {
        let word = self.word.replace(0);
        if word & TAG == 0 {
            if word != 0 {
                // SAFETY: the reference the stored waker held, given up by
                // waking it by value, on the owner thread (see the type).
                unsafe { schedule_owned(header_ptr(word as *const ())) };
            }
        } else {
            // SAFETY: a waker stored by `set_other`, taken out once.
            let stored = unsafe { decode(word) };
            if let Some(waker) = stored {
                waker.wake();
            }
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // SAFETY: the stored waiter, given up once.
        unsafe { drop_waiter(self.word.get()) };
    }
}

/// The waker a waiter word stands for (a task header's `waiter` or a
/// [`Waiter`]): none for 0, else a boxed waker, a branch waker or a task
/// waker, as its tag says.
///
/// # Safety
/// `word` was stored as a waiter word, holding the box or the reference it
/// encodes, and is given up.
unsafe fn decode(word: usize) -> Option<Waker> {
    let data = (word & !TAG) as *const ();
    match word & TAG {
        _ if word == 0 => None,
        // SAFETY: a boxed waker stored with its word, taken once.
        BOXED => Some(*unsafe { Box::from_raw(data.cast_mut().cast::<Waker>()) }),
        // SAFETY: the data pointer of a branch waker whose reference the
        // word kept; rebuilding the waker takes it back.
        BRANCH => Some(unsafe { Waker::from_raw(RawWaker::new(data, &BRANCH_WAKER)) }),
        // SAFETY: likewise for a task waker.
        _ => Some(unsafe { Waker::from_raw(RawWaker::new(data, &TASK_WAKER)) }),
    }
}

/// Drops the waker a [`Waiter`] word stands for, if any.
///
/// # Safety
/// As for [`decode`], on the thread that stored it.
unsafe fn drop_waiter(word: usize) {
    if word & TAG != 0 {
        // SAFETY: by the caller's contract.
        drop(unsafe { decode(word) });
    } else if word != 0 {
        // SAFETY: a task waker's reference, stored on its owner thread (the
        // caller's), given up.
        unsafe { release(header_ptr(word as *const ())) };
    }
}

/// The task currently polled, if the caller runs inside one.
pub(crate) fn current() -> Option<TaskRef> {
    let ptr = executor::try_with_core(|core| core.current_task())??;
    // The executor holds a reference to the task it polls; this one is new.
    let borrowed = ManuallyDrop::new(TaskRef { ptr });
    Some(TaskRef::clone(&borrowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A future of `N` bytes resolving to `()`.
    struct Sized<const N: usize>([u8; N]);

    impl<const N: usize> Future for Sized<N> {
        type Output = Result<(), Error>;

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            Poll::Ready(Ok(()))
        }
    }

    fn overhead<F: Future>() -> usize {
        core::mem::size_of::<Task<F>>() - core::mem::size_of::<F>()
    }

    #[test]
    fn a_task_costs_at_most_64_bytes_beyond_its_future() {
        assert_eq!(core::mem::size_of::<Header>(), 48);
        assert!(overhead::<Sized<24>>() <= 64, "{}", overhead::<Sized<24>>());
        assert!(
            overhead::<Sized<100>>() <= 64,
            "{}",
            overhead::<Sized<100>>()
        );
        assert!(
            overhead::<Sized<4096>>() <= 64,
            "{}",
            overhead::<Sized<4096>>()
        );
    }
}
