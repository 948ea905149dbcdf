//! Synchronisation between tasks: [`Mutex`], [`Condition`], [`MVar`]
//! (Lwt's `Lwt_mutex`, `Lwt_condition`, `Lwt_mvar`).
//!
//! All three are single-threaded (they are neither `Send` nor `Sync`) and
//! work with any executor: they only use wakers, and honour this crate's
//! cancellation requests ([`crate::cancel_requested`]) when polled inside
//! [`crate::run`].
//!
//! # Which one (seed 003)
//!
//! * [`MVar`]: a mailbox of one value. Reader-driven: a putter waits
//!   while it is full, so a slow consumer slows the producer down
//!   (back-pressure without a buffer).
//! * [`Condition`]: an announcement to whoever listens *now*. Not sticky: a
//!   signal with no waiter is lost. Good for "the state changed, look
//!   again" and for progress that may be skipped.
//! * [`crate::stream::Stream`]: a buffer of values, bounded or not.
//!   Writer-driven; the bounded flavour adds back-pressure.
//! * [`Mutex`]: serialises operations; it owns the data it protects.
//!
//! # Common semantics
//!
//! * **Eager, like Lwt and like this crate's promises.** `lock`, `take`,
//!   `put` and `wait` act when *called*: they take the lock or the value,
//!   store the value, or join the queue of waiters at once; the returned
//!   future only observes the outcome. Queue order is call order, and a
//!   condition waiter registered before a signal is sent gets it even if
//!   its future is first polled later.
//! * **FIFO handoff.** When a waiter's turn comes, what it waits for is
//!   handed to it (reserved for it) right away, so an operation started
//!   later cannot overtake it in the round before it runs.
//! * **Leaving the queue.** A waiter whose task is canceled while it is
//!   queued ([`crate::Promise::cancel`]) resolves with
//!   [`Error::Canceled`](crate::Error::Canceled) and leaves the queue at
//!   once; so does a waiter whose future is dropped. Neither gets the lock
//!   or the value. A waiter that was already handed the lock or the value
//!   when the cancellation arrives keeps it (Lwt: canceling a resolved
//!   promise does nothing); if its future is dropped instead, the lock or
//!   value passes on to the next waiter, so nothing is lost.
//! * **No context switch without yielding.** Unlocking, putting or
//!   signalling only schedules the waiter; it runs in the next round of the
//!   event loop, never inside the call (seed 003's epilogue describes the
//!   Lwt behaviour this avoids).
//! * **O(1) and allocation-free in steady state**: a lone waiter lives in
//!   its queue, others in a slab threaded by a FIFO list (see
//!   `waiters.rs`), reused across blocks.
//!
//! ```
//! use std::rc::Rc;
//! use unikit_runtime::sync::{Mutex, MVar};
//! use unikit_runtime::{Simulated, run, spawn};
//!
//! let r = run(Simulated::new(0), async {
//!     let mailbox = Rc::new(MVar::new_empty());
//!     let m = mailbox.clone();
//!     let reader = spawn(async move { m.take().await });
//!     // The value is handed to the waiting reader; the reader runs later.
//!     mailbox.put("hello").await?;
//!     let counter = Mutex::new(0);
//!     *counter.lock().await? += 1;
//!     Ok((reader.await?, *counter.lock().await?))
//! });
//! assert_eq!(r, Ok(("hello", 1)));
//! ```

pub mod condition;
pub mod mutex;
pub mod mvar;
pub(crate) mod waiters;

pub use condition::Condition;
pub use mutex::{Mutex, MutexGuard};
pub use mvar::MVar;
