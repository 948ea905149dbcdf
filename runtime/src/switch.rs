//! Switches (Lwt's `Lwt_switch`): one place to release a group of
//! resources.
//!
//! Code that opens a resource (a connection, a listener, a loop) takes a
//! [`Switch`] and registers a hook that releases it; whoever owns the
//! switch turns it off, which runs every hook and waits for all of them.
//! Code with safe points of its own can also poll [`Switch::is_on`] or
//! [`Switch::check`] there.
//!
//! Like Lwt's, [`Switch::turn_off`] starts the hooks most recently added
//! first (a stack of cleanups), all before awaiting any, and waits for all;
//! if some fail, it fails with the first failure in time once all are done.
//! Turning off a switch that is already off does nothing.
//!
//! # Differences from Lwt
//!
//! * [`Switch::add_hook`] on a switch that is already off runs the hook at
//!   once as a detached task (Lwt's `add_hook_or_exec`, whose promise the
//!   caller may ignore; Lwt's `add_hook` raises `Off` instead). A failure
//!   of that hook goes to the executor's failure handler
//!   ([`crate::async_`]).
//! * [`Switch::check`] returns `Err` with an [`Off`] failure instead of
//!   raising.
//! * There is no optional switch argument: take `Option<&Switch>` where
//!   Lwt takes `?switch`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;
use core::future::Future;
use core::pin::Pin;

use crate::Error;
use crate::compose::join;

/// The failure of [`Switch::check`] on a switch that is off (Lwt's
/// `Lwt_switch.Off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Off;

impl fmt::Display for Off {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("switch turned off")
    }
}

impl core::error::Error for Off {}

type HookFuture = Pin<Box<dyn Future<Output = Result<(), Error>>>>;
type Hook = Box<dyn FnOnce() -> HookFuture>;

/// A switch: on, then off for good.
pub struct Switch {
    /// The hooks to run; `None` once off.
    hooks: RefCell<Option<Vec<Hook>>>,
}

impl Switch {
    /// A switch that is on (Lwt's `create`).
    pub fn new() -> Self {
        Switch {
            hooks: RefCell::new(Some(Vec::new())),
        }
    }

    /// Whether the switch is on (Lwt's `is_on`).
    pub fn is_on(&self) -> bool {
        self.hooks.borrow().is_some()
    }

    /// `Err` with an [`Off`] failure if the switch is off (Lwt's `check`).
    pub fn check(&self) -> Result<(), Error> {
        if self.is_on() {
            Ok(())
        } else {
            Err(Error::from(Off))
        }
    }

    /// Registers `hook` to run when the switch is turned off. On a switch
    /// that is already off, runs it at once, detached.
    ///
    /// # Panics
    /// On a switch that is off, outside [`crate::run`] (the hook needs a
    /// task).
    pub fn add_hook<F, Fut>(&self, hook: F)
    where
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = Result<(), Error>> + 'static,
    {
        let mut hooks = self.hooks.borrow_mut();
        match hooks.as_mut() {
            Some(hooks) => hooks.push(Box::new(move || Box::pin(hook()))),
            None => {
                drop(hooks);
                crate::async_(hook());
            }
        }
    }

    /// Turns the switch off, runs every hook and waits for all of them
    /// (Lwt's `turn_off`). The switch is off and the hooks are started when
    /// this is called; awaiting the future runs them to completion.
    pub fn turn_off(&self) -> impl Future<Output = Result<(), Error>> + use<> {
        let hooks = self.hooks.borrow_mut().take().unwrap_or_default();
        let started: Vec<HookFuture> = hooks.into_iter().rev().map(|hook| hook()).collect();
        join(started)
    }

    /// Runs `f` with a new switch, and turns the switch off when `f` is
    /// done, whether it succeeded or not (Lwt's `with_switch`). A failure
    /// of `f` wins over one of the hooks.
    pub async fn with_switch<R>(
        f: impl AsyncFnOnce(&Switch) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let switch = Switch::new();
        let result = f(&switch).await;
        let off = switch.turn_off().await;
        let value = result?;
        off.map(|()| value)
    }
}

impl Default for Switch {
    fn default() -> Self {
        Switch::new()
    }
}

impl fmt::Debug for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hooks = self.hooks.borrow();
        f.debug_struct("Switch")
            .field("on", &hooks.is_some())
            .field("hooks", &hooks.as_ref().map_or(0, Vec::len))
            .finish()
    }
}
