//! Waker operations from other threads, and waking a blocked host loop.
//!
//! See [`crate::task`] for why wakers use plain `Cell`s. A waker operation
//! made on a thread that does not own the task lands here: it is appended to
//! the executor's [`Remote`] list under a mutex, a flag is raised and the
//! process-wide [`Notifier`] wakes any host event loop blocked in its
//! platform's `wait`. The owner applies the list, in order, at the start of
//! its next round.

use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::task::{self, ForeignOp, Header};

/// The waker operations queued for one executor by other threads.
#[derive(Default)]
pub(crate) struct Remote {
    /// Header addresses (raw pointers are not `Send`) and operations.
    ops: Mutex<Vec<(usize, ForeignOp)>>,
    pending: AtomicBool,
}

impl Remote {
    pub(crate) fn push(&self, ptr: NonNull<Header>, op: ForeignOp) {
        self.ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((ptr.as_ptr() as usize, op));
        self.pending.store(true, Ordering::Release);
        NOTIFIER.notify();
    }

    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Applies the queued operations; called by the owner thread.
    #[inline]
    pub(crate) fn apply(&self) {
        // A plain load first: the common case, nothing queued, costs no
        // atomic read-modify-write.
        if self.pending.load(Ordering::Relaxed) && self.pending.swap(false, Ordering::Acquire) {
            self.apply_queued();
        }
    }

    fn apply_queued(&self) {
        let ops = core::mem::take(&mut *self.ops.lock().unwrap_or_else(PoisonError::into_inner));
        for (addr, op) in ops {
            // SAFETY: queued by a waker of a live task; the references the
            // operations stand for are still counted (see `task`), and they
            // are applied in the order they were made.
            unsafe { task::apply_foreign(NonNull::new_unchecked(addr as *mut Header), op) };
        }
    }
}

/// Wakes host event loops blocked in `wait`: a generation counter under a
/// mutex, and a condition variable.
pub(crate) struct Notifier {
    generation: Mutex<u64>,
    changed: Condvar,
}

/// The process-wide notifier. Waking a loop that had nothing to do is
/// harmless: it looks, finds nothing, and waits again.
pub(crate) static NOTIFIER: Notifier = Notifier {
    generation: Mutex::new(0),
    changed: Condvar::new(),
};

impl Notifier {
    pub(crate) fn notify(&self) {
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *generation += 1;
        self.changed.notify_all();
    }

    /// Blocks until `ready()` holds or a notification comes or `timeout`
    /// passes (forever if `None`). `ready` is checked under the notifier's
    /// lock, so a notification made after the check is not lost.
    pub(crate) fn wait(&self, timeout: Option<Duration>, ready: impl Fn() -> bool) {
        let generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if ready() {
            return;
        }
        let start = *generation;
        let still = |g: &mut u64| *g == start;
        match timeout {
            Some(t) => drop(self.changed.wait_timeout_while(generation, t, still)),
            None => drop(self.changed.wait_while(generation, still)),
        }
    }
}
