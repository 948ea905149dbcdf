//! The runner: the one task that moves frames between the device and
//! smoltcp.
//!
//! [`super::Stack::new`] spawns it. Each time it runs it
//!
//! 1. feeds received frames to the interface one at a time (at most
//!    [`INGRESS_BUDGET`] per poll), opening each listener's next listening socket after
//!    each connection request (so back-to-back requests each find a
//!    listening socket);
//! 2. lets every socket send what it has (data, ACKs, retransmissions);
//! 3. applies DHCP events and frees closed sockets;
//! 4. waits for the earliest of: a received frame, room on the device when
//!    a socket had something to send, the interface's next timer
//!    (`poll_at`, a runtime timer), or a wake from a socket operation.
//!
//! Socket operations ([`crate::TcpStream::read`], ...) only touch their
//! socket's buffers, wake the runner when the socket has something new to
//! send, and register their task's waker with the socket, which smoltcp
//! wakes when the socket's state or buffers change. Time is the runtime's
//! clock, so on [`unikit_runtime::Simulated`] time every retransmission
//! happens at the same simulated instant in every run.

use alloc::rc::Rc;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use smoltcp::iface::{PollIngressSingleResult, PollResult};
use unikit_runtime::Instant;
use unikit_runtime::devices::net::Net;
use unikit_runtime::time::{self, Sleep};

use super::{Shared, State, runtime_instant, smol_instant};
use crate::device::Adapter;

/// How often the runner polls the interface in a row before letting other
/// tasks run.
const POLLS_PER_TURN: usize = 4;

/// The most frames one poll feeds to the interface, so a flood of frames
/// cannot keep the runner from sending (and other tasks from running).
const INGRESS_BUDGET: usize = 64;

impl State {
    /// One turn of the runner (see the module documentation). Returns when
    /// the runner should run again.
    fn poll<N: Net>(&mut self, net: &N, cx: &mut Context<'_>) -> Wakeup {
        if !self
            .runner
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            self.runner = Some(cx.waker().clone());
        }
        let now = time::now();
        let timestamp = smol_instant(now);
        let frames_before = self.counters.frames.get();
        let mut changed = false;
        let counters = self.counters.clone();
        let mut adapter = Adapter::new(net, Some(cx), &counters);
        self.top_up_listeners();
        let mut budget_left = true;
        for _ in 0..INGRESS_BUDGET {
            budget_left = false;
            match self
                .iface
                .poll_ingress_single(timestamp, &mut adapter, &mut self.sockets)
            {
                PollIngressSingleResult::None => {
                    budget_left = true;
                    break;
                }
                PollIngressSingleResult::PacketProcessed => {}
                PollIngressSingleResult::SocketStateChanged => changed = true,
            }
            if counters.connection_requested.take() {
                // The next request may need the next listening socket.
                self.top_up_listeners();
            }
        }
        while self
            .iface
            .poll_egress(timestamp, &mut adapter, &mut self.sockets)
            == PollResult::SocketStateChanged
        {
            changed = true;
        }
        let tx_blocked = adapter.tx_blocked;
        self.dhcp_events();
        let (linger, aborted) = self.reap_orphans(now);
        self.top_up_listeners();
        if !budget_left {
            // More frames may be waiting: poll again after other tasks ran.
            return Wakeup::Now;
        }
        let progressed = changed || aborted || self.counters.frames.get() != frames_before;
        let poll_at = self
            .iface
            .poll_at(timestamp, &self.sockets)
            .map(runtime_instant);
        let deadline = match (poll_at, linger) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match deadline {
            Some(deadline) if deadline <= now => {
                if tx_blocked {
                    // The device wakes the runner when it has room.
                    Wakeup::Event
                } else if progressed {
                    Wakeup::Now
                } else {
                    // Due but nothing moved: retry shortly rather than
                    // spinning at one instant of simulated time.
                    Wakeup::At(now + Duration::from_millis(1))
                }
            }
            Some(deadline) => Wakeup::At(deadline),
            None => Wakeup::Event,
        }
    }
}

/// When the runner wants to run again.
enum Wakeup {
    /// At once (more work is due).
    Now,
    /// At this instant, or earlier on an event.
    At(Instant),
    /// On an event only (a frame, device room, a socket operation).
    Event,
}

/// The runner task: polls the interface whenever something happened.
pub(super) async fn run<N: Net>(shared: Rc<Shared>, net: N) -> Result<(), unikit_runtime::Error> {
    let mut timer: Option<Sleep> = None;
    poll_fn(|cx| {
        for _ in 0..POLLS_PER_TURN {
            match shared.borrow_mut().poll(&net, cx) {
                Wakeup::Now => continue,
                Wakeup::Event => {
                    timer = None;
                    return Poll::Pending;
                }
                Wakeup::At(deadline) => {
                    if timer.as_ref().is_none_or(|t| t.deadline() != deadline) {
                        timer = Some(time::sleep_until(deadline));
                    }
                    let sleep = timer.as_mut().expect("just set");
                    match Pin::new(sleep).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(_) => timer = None,
                    }
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}
