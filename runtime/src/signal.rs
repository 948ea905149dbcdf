//! Interrupt signals: the only way from an interrupt handler into the
//! runtime.
//!
//! An interrupt handler must not allocate, take a lock that normal code
//! holds, or touch wakers, task headers or reference counts. It only calls
//! [`InterruptSignal::raise`], which stores `true` in an atomic flag (and,
//! on the host, pokes the process-wide notifier so a blocked loop looks
//! again). Tasks await [`InterruptSignal::wait`]; the waiting task's waker
//! is kept by the executor, not by the signal. Each round, the event loop
//! checks the signals tasks wait on and wakes those tasks, in task context.
//!
//! # No lost wakeup
//!
//! The loop only blocks through [`crate::Platform::wait`], which receives
//! [`crate::Events`]. A bare-metal platform disables interrupts, asks
//! [`crate::Events::pending`] (which reads the same flags), and only if
//! nothing is pending arms its alarm and executes `sti; hlt` (the interrupt
//! shadow of `sti` makes the pair atomic). A raise that happens before the
//! check is seen by the check; one that happens after it interrupts the
//! `hlt`.
//!
//! ```
//! use unikit_runtime::InterruptSignal;
//!
//! static SERIAL_RX: InterruptSignal = InterruptSignal::new();
//!
//! // In the interrupt handler:
//! fn on_irq4() {
//!     SERIAL_RX.raise();
//! }
//!
//! // In a task:
//! async fn next_byte() -> Result<(), unikit_runtime::Error> {
//!     SERIAL_RX.wait().await
//! }
//! # on_irq4();
//! ```

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};

use crate::Error;
use crate::executor::{self, with_core};

/// A flag an interrupt handler raises and tasks wait for. Usable in a
/// `static`.
///
/// A raise is remembered until a waiting task consumes it; several raises
/// before that count as one (like a level: "something happened, go and
/// look").
#[derive(Debug, Default)]
pub struct InterruptSignal {
    raised: AtomicBool,
}

impl InterruptSignal {
    /// A signal that is not raised.
    pub const fn new() -> Self {
        InterruptSignal {
            raised: AtomicBool::new(false),
        }
    }

    /// Raises the signal. Safe in an interrupt handler: one atomic store,
    /// plus (on the host only) a notification of blocked event loops.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        #[cfg(feature = "std")]
        crate::foreign::NOTIFIER.notify();
    }

    /// Whether the signal is raised and not yet consumed.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Consumes a raise, if there is one.
    pub fn take(&self) -> bool {
        self.raised.swap(false, Ordering::Acquire)
    }

    /// Waits until the signal is raised, then consumes the raise. Resolves at
    /// once if it is already raised. Cancelable.
    pub fn wait(&'static self) -> Raised {
        Raised {
            signal: self,
            registration: None,
        }
    }
}

/// The future of [`InterruptSignal::wait`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Raised {
    signal: &'static InterruptSignal,
    /// The executor and number of this future's registration, if any.
    registration: Option<(u64, u64)>,
}

impl Raised {
    fn unregister(&mut self) {
        if let Some((core_id, id)) = self.registration.take() {
            executor::try_with_core(|core| {
                if core.id == core_id {
                    core.signals.borrow_mut().retain(|(r, _, _)| *r != id);
                }
            });
        }
    }
}

impl Future for Raised {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if crate::cancel::cancel_requested() {
            self.unregister();
            return Poll::Ready(Err(Error::Canceled));
        }
        if self.signal.take() {
            self.unregister();
            return Poll::Ready(Ok(()));
        }
        let signal = self.signal;
        let registration = self.registration;
        self.registration = Some(with_core(|core| {
            let mut signals = core.signals.borrow_mut();
            // Still registered (the loop removes an entry when it wakes it).
            if let Some((core_id, id)) = registration
                && core_id == core.id
                && let Some(entry) = signals.iter_mut().find(|(r, _, _)| *r == id)
            {
                entry.2.clone_from(cx.waker());
                return (core_id, id);
            }
            let id = core.next_registration();
            signals.push((id, signal, cx.waker().clone()));
            (core.id, id)
        }));
        Poll::Pending
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        self.unregister();
    }
}
