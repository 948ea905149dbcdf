//! Lwt's promise semantics in Rust's idiom: eager promises, cancellation,
//! composition, timers and a single-threaded event loop that runs on bare
//! metal, on the host in real time and on the host in simulated time.
//!
//! `#![no_std]` + `alloc`; the `std` feature (on by default) adds the host
//! platforms ([`RealTime`], [`Simulated`]) and the thread-safe path of
//! wakers woken on other threads. The kernel depends on this crate with
//! `default-features = false` and implements [`Platform`].
//!
//! # The model
//!
//! Sequencing is `async`/`.await`: an `async` block compiles to a state
//! machine, so a chain of awaits needs no closure per step and no stack
//! growth (Lwt's `bind` on resolved promises grows the stack, seed 001).
//! Everything else Lwt offers, the runtime provides:
//!
//! * [`promise`]: eager promises with an observable [`State`], resolver
//!   pairs ([`wait`], [`task`]), already resolved promises;
//! * [`mod@spawn`]: tasks whose handle is a [`Promise`]; detached tasks
//!   ([`async_`], [`dont_wait`]) and their failure handler;
//! * [`cancel`]: cancellation reaching the deepest cancelable promise,
//!   [`protected`], [`no_cancel`], `on_cancel`;
//! * [`compose`]: [`join`], [`all`], [`both`], [`choose`], [`pick`],
//!   [`nchoose`], [`npick`], [`nchoose_split`];
//! * [`cleanup`]: [`catch`], [`finalize`];
//! * [`pause()`], promise-local storage ([`local`]), seeded [`random`]
//!   choices;
//! * [`time`]: [`sleep`], [`sleep_until`], [`timeout`], [`with_timeout`]
//!   over a timer queue that frees canceled timers at once;
//! * [`executor`]: the event loop ([`run`], [`Runtime`]) over a
//!   [`platform`], and [`signal`]s for interrupt handlers.
//!
//! Resolving a promise never runs other tasks inside the resolver: it
//! schedules them (see [`executor`]). This deliberately differs from Lwt.
//!
//! ```
//! use std::time::Duration;
//! use unikit_runtime::{Simulated, join, run, sleep, spawn, time};
//!
//! // heads1 from the MirageOS tutorial, on simulated time.
//! let finished = run(Simulated::new(0), async {
//!     join([
//!         spawn(async { sleep(Duration::from_secs(1)).await?; Ok(println!("Heads")) }),
//!         spawn(async { sleep(Duration::from_secs(2)).await?; Ok(println!("Tails")) }),
//!     ])
//!     .await?;
//!     Ok(time::now())
//! });
//! assert_eq!(finished.unwrap().since_epoch(), Duration::from_secs(2));
//! ```
//!
//! # Running on bare metal (for the kernel)
//!
//! The kernel implements [`Platform`]: `now` from its clock (TSC), `wait`
//! as `cli`; return if [`Events::pending`]; arm a one-shot alarm for the
//! deadline; `sti; hlt` (see [`platform`]), and `seed` from RDRAND. Then
//! `Runtime::new(platform).run(main)` (or [`run`]) drives everything on
//! the boot core. Interrupt handlers only call [`InterruptSignal::raise`]
//! on `static` signals that driver tasks await with
//! [`InterruptSignal::wait`]; they never touch wakers, tasks or promises,
//! allocate, or take locks. Without the `std` feature the crate assumes one
//! thread of control: wakers must only be used by code that runs on the
//! executor (never in an interrupt handler).
//!
//! # Lwt names and this crate's
//!
//! | Lwt | this crate | difference |
//! |---|---|---|
//! | `'a Lwt.t` | [`Promise<T>`] | awaiting consumes it and moves the value out (no `Clone` needed); one consumer |
//! | `Lwt.state`: `Sleep`, `Return`, `Fail` | [`Promise::state`]: [`State::Pending`], [`State::Fulfilled`], [`State::Rejected`] | |
//! | exceptions, `Lwt.Canceled` | [`Error`], [`Error::Canceled`] | an enum; any `core::error::Error` converts into [`Error::Failed`] |
//! | `Lwt.return`, `Lwt.fail` | [`Promise::fulfilled`], [`Promise::rejected`] (or just `Ok`/`Err` in an `async` block) | no allocation |
//! | `Lwt.bind`, `>>=`, `let*`, `Lwt.map`, `>\|=` | `.await` | constant stack on resolved promises |
//! | `Lwt.wait`, `Lwt.task` | [`wait`], [`task`] | |
//! | `Lwt.wakeup`, `Lwt.wakeup_exn`, `Lwt.wakeup_result` | [`Resolver::fulfil`], [`Resolver::reject`], [`Resolver::resolve`] | consume the resolver (no double wakeup possible); a no-op on a canceled promise; dropping an unused resolver rejects with [`Error::Abandoned`] |
//! | `Lwt.cancel` | [`Promise::cancel`] | a task's promise is rejected when the task returns `Err(Canceled)`, not inside `cancel` |
//! | `Lwt.on_cancel` | [`Promise::on_cancel`], [`Resolver::on_cancel`] | |
//! | `Lwt.protected`, `Lwt.no_cancel` | [`protected`], [`no_cancel`] | |
//! | `Lwt.join`, `Lwt.all`, `Lwt.both` | [`join`], [`all`], [`both`] | take any futures, not only promises |
//! | `Lwt.choose`, `Lwt.pick` | [`choose`], [`pick`] | as above; plain-future losers of `pick` are dropped after the cancellation |
//! | `Lwt.nchoose`, `Lwt.npick`, `Lwt.nchoose_split` | [`nchoose`], [`npick`], [`nchoose_split`] | |
//! | `Lwt.catch`, `Lwt.finalize`, `try%lwt` | [`catch`], [`finalize`], or `match` on `.await` | the cleanup is shielded from cancellation |
//! | `Lwt.async`, `Lwt.async_exception_hook` | [`async_`], [`set_async_exception_hook`] / [`Runtime::async_exception_hook`] | the default hook logs (with the task's name) instead of exiting |
//! | `Lwt.dont_wait` | [`dont_wait`] | |
//! | `Lwt.pause`, `Lwt.yield` | [`pause()`] | |
//! | `Lwt.new_key`, `Lwt.with_value`, `Lwt.get` | [`new_key`], [`with_value`], [`get`] | `with_value` wraps a future |
//! | `Lwt_main.run` | [`run`], [`Runtime::run`] | takes the platform; tasks still pending when it returns are dropped, their promises rejected with `Canceled` |
//! | `Lwt_unix.sleep`, `Mirage_time.sleep_ns` | [`sleep`], [`sleep_until`] | |
//! | `Lwt_unix.timeout`, `Lwt_unix.with_timeout`, `Lwt_unix.Timeout` | [`timeout`], [`with_timeout`], [`Error::Timeout`] | |
//! | `Lwt_unix.make_notification`, `send_notification` | [`InterruptSignal`] | safe in an interrupt handler |
//! | callbacks run inside `wakeup` | — | never: the woken task runs in the next round |
#![no_std]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod blocks;
pub mod cancel;
pub mod cleanup;
pub mod compose;
pub mod devices;
mod error;
pub mod executor;
#[cfg(feature = "std")]
mod foreign;
pub mod list;
pub mod local;
pub mod pause;
pub mod platform;
pub mod pool;
pub mod promise;
pub mod random;
mod ready;
pub mod signal;
mod slab;
pub mod spawn;
pub mod stream;
pub mod switch;
pub mod sync;
mod task;
pub mod time;
mod timer;

pub use cancel::{cancel_requested, no_cancel, protected};
pub use cleanup::{catch, finalize};
pub use compose::{all, both, choose, join, nchoose, nchoose_split, npick, pick};
pub use error::Error;
pub use executor::{Runtime, run, set_async_exception_hook};
pub use local::{Key, get, new_key, with_value};
pub use pause::{Pause, pause};
pub use platform::{Events, Instant, Platform};
#[cfg(feature = "std")]
pub use platform::{RealTime, Simulated};
pub use promise::{Promise, Resolver, State, task, wait};
pub use signal::InterruptSignal;
pub use spawn::{Builder, async_, dont_wait, spawn, task_name};
pub use time::{sleep, sleep_until, timeout, with_timeout};
