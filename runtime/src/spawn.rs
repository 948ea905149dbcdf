//! Spawning tasks: [`spawn`], [`async_`], [`dont_wait`] and [`Builder`].
//!
//! A spawned future runs as a task of the current executor. It is polled
//! once before `spawn` returns, so it runs up to its first pending await
//! right away, as an Lwt function call does; after that it runs whenever it
//! is woken. Its handle is a [`Promise`] of its result: awaitable, with a
//! [`state`](Promise::state), cancelable.
//!
//! Dropping the handle does not stop the task (Lwt's promises do not die
//! when forgotten); it only means nobody looks at the result. Tasks that
//! should report their failure are spawned detached: [`async_`] sends a
//! failure to the executor's handler, which by default logs it with the
//! task's name (Lwt's default `async_exception_hook` exits the program, a
//! trap for a unikernel serving many clients), and [`dont_wait`] to a
//! handler of its own.
//!
//! Tasks are `'static` and single-threaded: they need not be `Send`.

use alloc::boxed::Box;
use core::future::Future;

use crate::Error;
use crate::executor::{self, Core};
use crate::promise::Promise;
use crate::task::{self, DETACHED, Extras};

/// Options for a task to spawn.
#[derive(Debug, Default, Clone, Copy)]
pub struct Builder {
    name: Option<&'static str>,
}

impl Builder {
    /// No options: an unnamed task.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the task; the name is shown when a detached task fails and is
    /// readable inside it through [`task_name`].
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// Spawns `future` and returns its promise (see [`spawn`]).
    #[track_caller]
    #[inline]
    pub fn spawn<F, T>(self, future: F) -> Promise<T>
    where
        F: Future<Output = Result<T, Error>> + 'static,
        T: 'static,
    {
        Promise::from_task(task::spawn_raw(future, 0, self.extras(None)))
    }

    /// Spawns `future` detached (see [`async_`]).
    #[track_caller]
    pub fn async_<F>(self, future: F)
    where
        F: Future<Output = Result<(), Error>> + 'static,
    {
        drop(task::spawn_raw(future, DETACHED, self.extras(None)));
    }

    /// Spawns `future` detached, its failure going to `handler` (see
    /// [`dont_wait`]).
    #[track_caller]
    pub fn dont_wait<F, H>(self, future: F, handler: H)
    where
        F: Future<Output = Result<(), Error>> + 'static,
        H: FnOnce(Error) + 'static,
    {
        drop(task::spawn_raw(
            future,
            DETACHED,
            self.extras(Some(Box::new(handler))),
        ));
    }

    /// The extras of the new task: its name, handler and the promise-local
    /// bindings visible here. `None` (no allocation) if all are empty.
    #[inline]
    fn extras(self, handler: Option<task::FailureHandler>) -> Option<Box<Extras>> {
        let locals = executor::try_with_core(Core::locals).flatten();
        if self.name.is_none() && handler.is_none() && locals.is_none() {
            return None;
        }
        Some(Box::new(Extras {
            name: self.name,
            locals,
            handler,
            ..Extras::default()
        }))
    }
}

/// Spawns `future` as a task and returns the promise of its result.
///
/// # Panics
/// Outside [`crate::run`].
#[track_caller]
#[inline]
pub fn spawn<F, T>(future: F) -> Promise<T>
where
    F: Future<Output = Result<T, Error>> + 'static,
    T: 'static,
{
    Builder::new().spawn(future)
}

/// Spawns `future` detached (Lwt's `async`): nobody awaits it, and if it
/// fails the executor's failure handler receives the error (see
/// [`crate::set_async_exception_hook`]; by default it is logged at error
/// level with the task's name).
///
/// # Panics
/// Outside [`crate::run`].
#[track_caller]
pub fn async_<F>(future: F)
where
    F: Future<Output = Result<(), Error>> + 'static,
{
    Builder::new().async_(future);
}

/// Spawns `future` detached; if it fails, `handler` receives the error
/// (Lwt's `dont_wait`).
///
/// # Panics
/// Outside [`crate::run`].
#[track_caller]
pub fn dont_wait<F, H>(future: F, handler: H)
where
    F: Future<Output = Result<(), Error>> + 'static,
    H: FnOnce(Error) + 'static,
{
    Builder::new().dont_wait(future, handler);
}

/// The name of the running task, if it has one.
pub fn task_name() -> Option<&'static str> {
    let task = task::current()?;
    task.header().peek_extras(|e| e.and_then(|e| e.name))
}
