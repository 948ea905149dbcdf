//! The event loop: [`run`] drives every task until the main one resolves.
//!
//! # One round
//!
//! The loop repeats rounds. Each round:
//!
//! 1. applies the waker operations other threads queued (`std` only);
//! 2. wakes the tasks waiting on [`crate::InterruptSignal`]s that were
//!    raised;
//! 3. wakes the tasks whose timers expired (reading the clock only when a
//!    timer is pending);
//! 4. takes the whole run queue and polls each task in it once, in the
//!    order they were woken. Tasks woken meanwhile go to the next round's
//!    batch (Embassy runs its queue the same way), which is what makes
//!    [`crate::pause()`] wait for the next round;
//! 5. stops if the main task is resolved; otherwise, if nothing is
//!    runnable, asks the [`Platform`] to wait until the earliest timer's
//!    deadline or an external event.
//!
//! # When `run` returns
//!
//! `run` returns as soon as the main task resolves. Tasks still pending
//! then are aborted: their futures are dropped (running their destructors)
//! and their promises rejected with [`Error::Canceled`]. Lwt leaves them
//! pending, to go on in a later `Lwt_main.run`; here each `run` owns its
//! tasks, and dropping them also frees tasks that keep each other alive
//! (a parent awaiting a child whose future holds the parent's handle).
//!
//! # Resolving never runs other code
//!
//! Resolving a promise, waking a task or spawning only *schedules*: the
//! woken task runs in the next round, never inside the call that woke it.
//! Lwt runs the callbacks of a promise inside the resolver (seed 003's
//! "context switch without yielding": `Lwt_mvar.put` runs the taker before
//! it returns); that is a trap this runtime deliberately does not copy. The
//! one place code runs eagerly is [`crate::spawn()`], which polls the new task
//! once before returning, as an Lwt function call runs until its first
//! blocking point. `on_cancel` callbacks, which are plain closures, also run
//! inside `cancel`, as in Lwt.
//!
//! # The current executor
//!
//! The functions of this crate (`spawn`, `sleep`, `pause`, ...) find the
//! executor through a pointer set by `run`: a thread-local with `std`, a
//! static without (bare metal has one thread of control). Calling them
//! outside `run` panics, except those documented to work anywhere (promise
//! creation and resolution).

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::pin;
use core::ptr::NonNull;
use core::task::Waker;

use crate::Error;
use crate::blocks::Blocks;
use crate::local::Locals;
use crate::platform::{Events, Instant, Platform};
use crate::random::Prng;
use crate::signal::InterruptSignal;
use crate::slab::Slab;
use crate::task::{self, Header, TaskRef};
use crate::timer::Timers;

/// Receives the failure of a detached task and the task's name, if any.
pub type FailureHook = dyn Fn(&Error, Option<&'static str>);

/// The intrusive FIFO of scheduled tasks; each queued task holds a reference
/// owned by the queue.
pub(crate) struct RunQueue {
    head: Cell<Option<NonNull<Header>>>,
    tail: Cell<Option<NonNull<Header>>>,
}

impl RunQueue {
    const fn new() -> Self {
        RunQueue {
            head: Cell::new(None),
            tail: Cell::new(None),
        }
    }

    pub(crate) fn push(&self, ptr: NonNull<Header>) {
        // SAFETY: queued tasks are alive (the queue holds a reference).
        let header = unsafe { ptr.as_ref() };
        header.next.set(None);
        match self.tail.get() {
            // SAFETY: as above.
            Some(tail) => unsafe { tail.as_ref() }.next.set(Some(ptr)),
            None => self.head.set(Some(ptr)),
        }
        self.tail.set(Some(ptr));
    }

    /// Detaches the whole queue; returns its first task.
    fn take(&self) -> Option<NonNull<Header>> {
        self.tail.set(None);
        self.head.take()
    }

    fn is_empty(&self) -> bool {
        self.head.get().is_none()
    }
}

/// The state of the polled task that code inside it can observe, saved
/// and restored around each poll.
pub(crate) struct TaskContext {
    current: *const Header,
    locals: Locals,
}

/// The bit of [`Core`]'s `current` word that tells whether a cancellation
/// is requested (headers are 8-aligned, so their low bits are free).
const CANCEL_BIT: usize = 1;

const _: () = assert!(core::mem::align_of::<Header>() > CANCEL_BIT);

/// One executor: everything `run` owns. Tasks hold strong counts on it.
pub(crate) struct Core {
    /// The identity of the owner thread.
    #[cfg(feature = "std")]
    home: usize,
    /// Unique among executors, so handles from an old one are recognised.
    pub(crate) id: u64,
    open: Cell<bool>,
    pub(crate) queue: RunQueue,
    pub(crate) blocks: Blocks,
    pub(crate) slab: Slab,
    pub(crate) timers: RefCell<Timers>,
    /// The wakers of expired timers, kept to reuse the buffer.
    woken: Cell<Vec<Waker>>,
    now: Cell<Option<Instant>>,
    round: Cell<u64>,
    /// The polled task's header (null outside tasks), its low bit set
    /// ([`CANCEL_BIT`]) while a cancellation is requested: one word, so
    /// that entering and leaving a task saves and restores one word for
    /// both.
    current: Cell<*const Header>,
    locals: Cell<Locals>,
    rng: Prng,
    pub(crate) signals: RefCell<Vec<(u64, &'static InterruptSignal, Waker)>>,
    next_registration: Cell<u64>,
    hook: RefCell<Rc<FailureHook>>,
    platform: RefCell<Box<dyn Platform>>,
    /// In the core itself, not behind a pointer: the round's check for
    /// queued operations is one load. Other threads reach it through a
    /// task's core pointer, which the task's count keeps alive.
    #[cfg(feature = "std")]
    remote: crate::foreign::Remote,
}

impl Core {
    pub(crate) fn is_open(&self) -> bool {
        self.open.get()
    }

    /// Installs a task's context; returns the previous one for `leave`.
    #[inline]
    pub(crate) fn enter(&self, task: NonNull<Header>, cancel: bool, locals: Locals) -> TaskContext {
        let current = task
            .as_ptr()
            .cast_const()
            .map_addr(|a| a | usize::from(cancel));
        TaskContext {
            current: self.current.replace(current),
            locals: self.locals.replace(locals),
        }
    }

    #[inline]
    pub(crate) fn leave(&self, saved: TaskContext) {
        self.current.set(saved.current);
        drop(self.locals.replace(saved.locals));
    }

    pub(crate) fn current_task(&self) -> Option<NonNull<Header>> {
        NonNull::new(self.current.get().map_addr(|a| a & !CANCEL_BIT).cast_mut())
    }

    #[inline]
    pub(crate) fn cancel_requested(&self) -> bool {
        self.current.get().addr() & CANCEL_BIT != 0
    }

    /// Sets the cancellation request seen by code run inside `f`.
    pub(crate) fn with_cancel<R>(&self, cancel: bool, f: impl FnOnce() -> R) -> R {
        let saved = self.current.get();
        let current = saved.map_addr(|a| a & !CANCEL_BIT | usize::from(cancel));
        self.current.set(current);
        let r = f();
        self.current.set(saved);
        r
    }

    #[inline]
    pub(crate) fn locals(&self) -> Locals {
        // Taking them out leaves the cell as it was when there are none.
        let locals = self.locals.take()?;
        self.locals.set(Some(locals.clone()));
        Some(locals)
    }

    /// Sets the local storage seen by code run inside `f`.
    pub(crate) fn with_locals<R>(&self, locals: Locals, f: impl FnOnce() -> R) -> R {
        let saved = self.locals.replace(locals);
        let r = f();
        drop(self.locals.replace(saved));
        r
    }

    /// Whether other threads queued waker operations not applied yet.
    #[cfg(feature = "std")]
    pub(crate) fn remote_pending(&self) -> bool {
        self.remote.is_pending()
    }

    /// Applies the waker operations other threads queued.
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) fn apply_remote(&self) {
        self.remote.apply();
    }

    #[inline]
    pub(crate) fn round(&self) -> u64 {
        self.round.get()
    }

    /// The platform's time, read at most once per round.
    pub(crate) fn now(&self) -> Instant {
        match self.now.get() {
            Some(now) => now,
            None => {
                let now = self.platform.borrow_mut().now();
                self.now.set(Some(now));
                now
            }
        }
    }

    pub(crate) fn rng(&self) -> &Prng {
        &self.rng
    }

    pub(crate) fn next_registration(&self) -> u64 {
        let id = self.next_registration.get();
        self.next_registration.set(id + 1);
        id
    }

    pub(crate) fn set_hook(&self, hook: Rc<FailureHook>) {
        *self.hook.borrow_mut() = hook;
    }

    pub(crate) fn report_failure(&self, error: &Error, name: Option<&'static str>) {
        let hook = self.hook.borrow().clone();
        hook(error, name);
    }

    /// Wakes the tasks waiting on raised signals.
    #[inline]
    fn poll_signals(&self) {
        if !self.signals.borrow().is_empty() {
            self.wake_raised();
        }
    }

    fn wake_raised(&self) {
        let mut woken = Vec::new();
        self.signals.borrow_mut().retain(|(_, signal, waker)| {
            let raised = signal.is_raised();
            if raised {
                woken.push(waker.clone());
            }
            !raised
        });
        for waker in woken {
            waker.wake();
        }
    }

    /// Whether an external event arrived that the loop has not handled.
    pub(crate) fn events_pending(&self) -> bool {
        #[cfg(feature = "std")]
        if self.remote.is_pending() {
            return true;
        }
        self.signals
            .borrow()
            .iter()
            .any(|(_, signal, _)| signal.is_raised())
    }

    /// Wakes the tasks whose timers expired.
    #[inline]
    fn fire_timers(&self) {
        if !self.timers.borrow().is_empty() {
            self.expire_timers();
        }
    }

    fn expire_timers(&self) {
        let now = self.now();
        if !self.timers.borrow().may_expire(now) {
            return;
        }
        let mut woken = self.woken.take();
        self.timers.borrow_mut().expire(now, &mut woken);
        if !woken.is_empty() {
            woken.drain(..).for_each(task::wake);
        }
        self.woken.set(woken);
    }

    /// Polls every task of the current batch once; the main task, whose
    /// future `run` holds, through `poll_main`.
    #[inline(always)]
    fn run_batch(&self, main: NonNull<Header>, poll_main: &mut impl FnMut()) {
        let mut next = self.queue.take();
        while let Some(ptr) = next {
            // SAFETY: the queue's reference is handed over to this TaskRef.
            let task = unsafe { TaskRef::from_raw(ptr) };
            next = task.header().next.take();
            task::unschedule(task.header());
            if ptr == main {
                poll_main();
            } else {
                task.poll();
            }
        }
    }

    /// Tears the executor down: no more scheduling; queued tasks, timers and
    /// signal registrations are dropped, then the futures of tasks still
    /// pending are dropped and their promises rejected with `Canceled`
    /// (which also breaks reference cycles such as a parent and the child
    /// it awaits), so every task nothing else refers to is freed.
    fn close(&self) {
        self.open.set(false);
        let mut next = self.queue.take();
        while let Some(ptr) = next {
            // SAFETY: the queue's reference is handed over and dropped.
            let task = unsafe { TaskRef::from_raw(ptr) };
            next = task.header().next.take();
            task::unschedule(task.header());
        }
        let timers = core::mem::take(&mut *self.timers.borrow_mut());
        drop(timers);
        let signals = core::mem::take(&mut *self.signals.borrow_mut());
        drop(signals);
        // Last, so that tasks spawned by the destructors above go too.
        loop {
            let mut pending: Vec<TaskRef> = Vec::new();
            // SAFETY: the slab's blocks are tasks (whose vtable word is
            // never null), and the closure allocates and frees no task.
            unsafe {
                self.slab.for_each(|block| {
                    let ptr = block.cast::<Header>();
                    // SAFETY: a block in use holds a live task; the clone
                    // takes a count.
                    let task = core::mem::ManuallyDrop::new(TaskRef::from_raw(ptr));
                    if task.header().state() & task::COMPLETE == 0 {
                        pending.push(TaskRef::clone(&task));
                    }
                })
            };
            if pending.is_empty() {
                break;
            }
            pending.iter().for_each(TaskRef::abort);
        }
    }
}

// ---------------------------------------------------------------------------
// The current executor

#[cfg(feature = "std")]
std::thread_local! {
    static CURRENT: Cell<*const Core> = const { Cell::new(core::ptr::null()) };
    static HOME: u8 = const { 0 };
}

#[cfg(feature = "std")]
#[inline]
fn current_ptr() -> *const Core {
    CURRENT.with(Cell::get)
}

#[cfg(feature = "std")]
fn set_current(core: *const Core) {
    CURRENT.with(|c| c.set(core));
}

/// The identity of the calling thread: the address of a thread-local, unique
/// among live threads.
#[cfg(feature = "std")]
#[inline]
fn thread_home() -> usize {
    HOME.with(|h| core::ptr::from_ref(h) as usize)
}

#[cfg(not(feature = "std"))]
static CURRENT: core::sync::atomic::AtomicPtr<Core> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

#[cfg(not(feature = "std"))]
#[inline]
fn current_ptr() -> *const Core {
    CURRENT.load(core::sync::atomic::Ordering::Relaxed)
}

#[cfg(not(feature = "std"))]
fn set_current(core: *const Core) {
    CURRENT.store(core.cast_mut(), core::sync::atomic::Ordering::Relaxed);
}

/// Whether the calling thread owns `core`.
#[cfg(feature = "std")]
///
/// # Safety
/// `core` must be alive.
#[inline]
pub(crate) unsafe fn is_home(core: NonNull<Core>) -> bool {
    // SAFETY: alive by contract; `home` is never written after creation, so
    // reading it from any thread is not a data race.
    let home = unsafe { (&raw const (*core.as_ptr()).home).read() };
    home == thread_home()
}

/// The queue other threads put waker operations in.
///
/// # Safety
/// `core` must be alive and stay so while the returned reference is used.
#[cfg(feature = "std")]
pub(crate) unsafe fn remote<'a>(core: NonNull<Core>) -> &'a crate::foreign::Remote {
    // SAFETY: alive by contract; `remote` is never written after creation
    // and `Remote` is `Sync`.
    unsafe { &(*core.as_ptr()).remote }
}

/// Runs `f` with the current executor, if the caller runs inside `run`.
#[inline]
pub(crate) fn try_with_core<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    let ptr = current_ptr();
    // SAFETY: `run` sets the pointer to a core it keeps alive until it
    // resets the pointer, and the core is only used on this thread.
    unsafe { ptr.as_ref() }.map(f)
}

/// Runs `f` with the current executor; panics outside `run`.
#[track_caller]
#[inline]
pub(crate) fn with_core<R>(f: impl FnOnce(&Core) -> R) -> R {
    try_with_core(f).expect("unikit-runtime: called outside `run`")
}

/// A strong count on the current executor, for a new task.
#[track_caller]
#[inline]
pub(crate) fn current_core_counted() -> NonNull<Core> {
    let ptr =
        NonNull::new(current_ptr().cast_mut()).expect("unikit-runtime: spawn called outside `run`");
    // SAFETY: the current core is an `Rc<Core>` that `run` keeps alive.
    unsafe { Rc::increment_strong_count(ptr.as_ptr()) };
    ptr
}

/// Gives up a count taken by `current_core_counted`.
///
/// # Safety
/// The count must have been taken and not released yet.
#[inline]
pub(crate) unsafe fn release_core(core: NonNull<Core>) {
    // SAFETY: by contract.
    unsafe { Rc::decrement_strong_count(core.as_ptr().cast_const()) };
}

/// Replaces the handler that receives the failures of detached tasks
/// ([`crate::async_`], Lwt's `async_exception_hook`) for the current run.
#[track_caller]
pub fn set_async_exception_hook(hook: impl Fn(&Error, Option<&'static str>) + 'static) {
    with_core(|core| core.set_hook(Rc::new(hook)));
}

fn default_hook(error: &Error, name: Option<&'static str>) {
    log::error!(target: "unikit_runtime", "task {} failed: {}", name.unwrap_or("<unnamed>"), error);
}

// ---------------------------------------------------------------------------
// Running

/// An event loop ready to run, with its options.
pub struct Runtime<P> {
    platform: P,
    seed: Option<u64>,
    hook: Option<Rc<FailureHook>>,
}

impl<P: Platform + 'static> Runtime<P> {
    /// A runtime on `platform`, seeded by the platform, logging the failures
    /// of detached tasks.
    pub fn new(platform: P) -> Self {
        Runtime {
            platform,
            seed: None,
            hook: None,
        }
    }

    /// Seeds the runtime's random choices (`choose`, `pick`,
    /// [`crate::random`]) instead of asking the platform.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the handler for the failures of detached tasks.
    pub fn async_exception_hook(
        mut self,
        hook: impl Fn(&Error, Option<&'static str>) + 'static,
    ) -> Self {
        self.hook = Some(Rc::new(hook));
        self
    }

    /// Spawns `main` and drives every task until `main` resolves; returns
    /// its result (Lwt's `Lwt_main.run`).
    ///
    /// `main` runs as a task like any other (it has wakers and
    /// promise-local storage), but its future stays in `run`'s stack
    /// frame, as the future of Tokio's `block_on` does, instead of in a
    /// heap block: a main future holding large buffers should box them
    /// (on bare metal the stack is 128 KiB).
    ///
    /// # Panics
    /// If called inside another `run` on the same thread.
    // Always inlined (like the `run` function), so that the main future is
    // a local of the caller's frame, built in place: left out of line, it
    // arrives as a by-value argument, memory the compiler must assume
    // others can reach, so the loops of the main future stored and
    // reloaded their variables around every opaque call (the benchmark's
    // `bind_ready` was 2-3 times slower in builds that left it out of line).
    #[inline(always)]
    pub fn run<T, F>(self, main: F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + 'static,
        T: 'static,
    {
        assert!(
            current_ptr().is_null(),
            "unikit-runtime: `run` called inside `run`"
        );
        let Runtime {
            mut platform,
            seed,
            hook,
        } = self;
        let seed = seed.unwrap_or_else(|| platform.seed());
        let core = Rc::new(Core {
            #[cfg(feature = "std")]
            home: thread_home(),
            id: next_core_id(),
            open: Cell::new(true),
            queue: RunQueue::new(),
            blocks: Blocks::default(),
            slab: Slab::default(),
            timers: RefCell::new(Timers::default()),
            woken: Cell::new(Vec::new()),
            now: Cell::new(None),
            round: Cell::new(0),
            current: Cell::new(core::ptr::null()),
            locals: Cell::new(None),
            rng: Prng::new(seed),
            signals: RefCell::new(Vec::new()),
            next_registration: Cell::new(0),
            hook: RefCell::new(hook.unwrap_or_else(|| Rc::new(default_hook))),
            platform: RefCell::new(Box::new(platform)),
            #[cfg(feature = "std")]
            remote: crate::foreign::Remote::default(),
        });
        let _entered = Entered::new(&core);
        // The main future stays here, on this stack, and is polled here
        // (see `task::spawn_held`); its task stands for it in the run
        // queue. It is first polled in the first round, as a task spawned
        // before `run` would be.
        let main_task = task::spawn_held::<T>();
        let mut main = pin!(Some(main));
        // SAFETY: `main_task` was made for `T` and `main` holds its future,
        // polled only here.
        let mut poll_main = || unsafe { task::poll_held(&main_task, main.as_mut()) };
        task::schedule_by_ref(main_task.ptr());
        while main_task.header().state() & task::COMPLETE == 0 {
            if core.queue.is_empty() {
                let deadline = core.timers.borrow_mut().next_deadline();
                core.platform
                    .borrow_mut()
                    .wait(deadline, &Events::new(&core));
            }
            core.round.set(core.round.get() + 1);
            core.now.set(None);
            #[cfg(feature = "std")]
            core.apply_remote();
            core.poll_signals();
            core.fire_timers();
            core.run_batch(main_task.ptr(), &mut poll_main);
        }
        // SAFETY: `main_task` was made with this output type.
        let result = unsafe { main_task.take_output::<T>() }.expect("main is complete");
        drop(main_task);
        core.close();
        result
    }
}

/// Makes a core the current executor until dropped, also when unwinding
/// from a panic in a task, so that no pointer to a dropped core is left
/// behind for the next `run` or a runtime call to find.
struct Entered;

impl Entered {
    fn new(core: &Rc<Core>) -> Self {
        set_current(Rc::as_ptr(core));
        Entered
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        set_current(core::ptr::null());
    }
}

/// Runs `main` on `platform` with the default options (see [`Runtime`]).
#[inline(always)]
pub fn run<P, T, F>(platform: P, main: F) -> Result<T, Error>
where
    P: Platform + 'static,
    F: Future<Output = Result<T, Error>> + 'static,
    T: 'static,
{
    Runtime::new(platform).run(main)
}

fn next_core_id() -> u64 {
    use core::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
