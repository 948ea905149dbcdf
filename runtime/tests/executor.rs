//! The event loop and its platforms: run, wait/alarm, interrupt signals,
//! wakers woken on other threads, task lifetime.

mod common;

use common::{Log, ms, secs, sim};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use unikit_runtime::{
    Error, Events, Instant, InterruptSignal, Platform, RealTime, Simulated, pause, run, sleep,
    spawn, time, wait,
};

#[test]
fn run_returns_the_result_of_main() {
    assert_eq!(sim(async { Ok(3) }), Ok(3));
    assert_eq!(
        sim(async { Err::<(), _>(Error::msg("main failed")) }),
        Err(Error::msg("main failed"))
    );
}

#[test]
#[should_panic(expected = "`run` called inside `run`")]
fn run_inside_run_panics() {
    let _ = sim(async { sim(async { Ok(()) }) });
}

#[test]
#[should_panic(expected = "spawn called outside `run`")]
fn spawn_outside_run_panics() {
    let _ = spawn(async { Ok(()) });
}

#[test]
#[should_panic(expected = "deadlock")]
fn simulated_time_reports_a_deadlock() {
    let _ = sim(async { std::future::pending::<Result<(), Error>>().await });
}

#[test]
fn a_panicking_task_leaves_no_current_executor_behind() {
    let panicked =
        std::panic::catch_unwind(|| sim(async { panic!("task panicked") as Result<(), Error> }));
    assert!(panicked.is_err());
    assert_eq!(sim(async { Ok(1) }), Ok(1));
}

#[test]
fn run_can_be_called_again_on_the_same_thread() {
    for i in 0..3 {
        assert_eq!(
            sim(async move {
                sleep(secs(1)).await?;
                Ok(i)
            }),
            Ok(i)
        );
    }
}

/// Each wait: the time, the deadline, and whether an event was pending.
type Waits = Rc<RefCell<Vec<(Instant, Option<Instant>, bool)>>>;

/// A platform on simulated time that records its waits and can raise a
/// signal "during" a wait, as an interrupt arriving between the loop's last
/// look and `hlt` would.
struct Recording {
    inner: Simulated,
    waits: Waits,
    interrupt_on_wait: Option<&'static InterruptSignal>,
}

/// A recording platform, and its record.
fn recording(interrupt_on_wait: Option<&'static InterruptSignal>) -> (Recording, Waits) {
    let waits = Waits::default();
    let platform = Recording {
        inner: Simulated::new(0),
        waits: Rc::clone(&waits),
        interrupt_on_wait,
    };
    (platform, waits)
}

impl Platform for Recording {
    fn now(&mut self) -> Instant {
        self.inner.now()
    }

    fn wait(&mut self, deadline: Option<Instant>, events: &Events<'_>) {
        if let Some(signal) = self.interrupt_on_wait.take() {
            signal.raise();
        }
        self.waits
            .borrow_mut()
            .push((self.inner.now(), deadline, events.pending()));
        self.inner.wait(deadline, events);
    }

    fn seed(&mut self) -> u64 {
        0
    }
}

#[test]
fn the_platform_waits_until_the_earliest_timer() {
    let (platform, waits) = recording(None);
    run(platform, async {
        let a = spawn(async { sleep(secs(3)).await });
        sleep(secs(1)).await?;
        a.await
    })
    .unwrap();
    let s = |n: u64| Some(Instant::from_nanos(n * 1_000_000_000));
    assert_eq!(
        *waits.borrow(),
        [
            (Instant::ZERO, s(1), false),
            (Instant::from_nanos(1_000_000_000), s(3), false)
        ]
    );
}

#[test]
fn the_platform_is_not_asked_to_wait_while_tasks_are_runnable() {
    let (platform, waits) = recording(None);
    run(platform, async {
        for _ in 0..100 {
            pause().await?;
        }
        Ok(())
    })
    .unwrap();
    assert!(waits.borrow().is_empty());
}

#[test]
fn a_signal_raised_as_the_loop_goes_to_wait_is_not_lost() {
    static IRQ: InterruptSignal = InterruptSignal::new();
    let (platform, waits) = recording(Some(&IRQ));
    let r = run(platform, async {
        IRQ.wait().await?;
        Ok(time::now())
    });
    assert_eq!(r, Ok(Instant::ZERO));
    assert_eq!(*waits.borrow(), [(Instant::ZERO, None, true)]);
}

#[test]
fn a_signal_raised_before_waiting_resolves_at_once() {
    static IRQ: InterruptSignal = InterruptSignal::new();
    IRQ.raise();
    assert_eq!(sim(async { IRQ.wait().await }), Ok(()));
    assert!(!IRQ.is_raised());
}

#[test]
fn several_raises_before_a_wait_count_as_one() {
    static IRQ: InterruptSignal = InterruptSignal::new();
    let r = sim(async {
        IRQ.raise();
        IRQ.raise();
        IRQ.wait().await?;
        Ok(IRQ.is_raised())
    });
    assert_eq!(r, Ok(false));
}

#[test]
fn a_signal_raised_on_another_thread_wakes_the_task_in_real_time() {
    static IRQ: InterruptSignal = InterruptSignal::new();
    let raiser = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        IRQ.raise();
    });
    assert_eq!(run(RealTime::default(), async { IRQ.wait().await }), Ok(()));
    raiser.join().unwrap();
}

#[test]
fn waiting_on_a_signal_is_cancelable() {
    static IRQ: InterruptSignal = InterruptSignal::new();
    let r = sim(async {
        let t = spawn(IRQ.wait());
        t.cancel();
        t.await
    });
    assert_eq!(r, Err(Error::Canceled));
}

#[test]
fn real_time_sleeps_in_real_time() {
    let r = run(RealTime::default(), async {
        let start = time::now();
        sleep(ms(15)).await?;
        Ok(time::now() - start)
    });
    assert!(r.unwrap() >= ms(15));
}

/// Completes on its second poll, after handing its waker to another thread
/// that clones it, drops one copy and wakes with the other.
struct WokenFromThread {
    sent: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Future for WokenFromThread {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.sent {
            self.thread.take().unwrap().join().unwrap();
            return Poll::Ready(Ok(()));
        }
        self.sent = true;
        let waker: Waker = cx.waker().clone();
        self.thread = Some(std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(5));
            let copy = waker.clone();
            drop(waker);
            let again = copy.clone();
            copy.wake();
            drop(again);
        }));
        Poll::Pending
    }
}

#[test]
fn a_waker_woken_on_another_thread_wakes_the_task() {
    let r = run(RealTime::default(), async {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                spawn(WokenFromThread {
                    sent: false,
                    thread: None,
                })
            })
            .collect();
        unikit_runtime::join(tasks).await
    });
    assert_eq!(r, Ok(()));
}

/// Completes on its second poll, after handing its waker to another thread
/// that awaits a `wait` promise with it there, resolves the promise, which
/// wakes the task from that thread, and sends the value back.
struct AwaitedOnThread {
    thread: Option<std::thread::JoinHandle<i32>>,
}

impl Future for AwaitedOnThread {
    type Output = Result<i32, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(thread) = self.thread.take() {
            return Poll::Ready(Ok(thread.join().unwrap()));
        }
        let waker = cx.waker().clone();
        self.thread = Some(std::thread::spawn(move || {
            use std::future::IntoFuture;
            let mut cx = Context::from_waker(&waker);
            let (p, r) = wait();
            let mut awaiting = std::pin::pin!(p.into_future());
            assert!(awaiting.as_mut().poll(&mut cx).is_pending());
            std::thread::sleep(std::time::Duration::from_millis(5));
            r.fulfil(7);
            match awaiting.as_mut().poll(&mut cx) {
                Poll::Ready(r) => r.unwrap(),
                Poll::Pending => unreachable!("fulfilled"),
            }
        }));
        Poll::Pending
    }
}

#[test]
fn a_promise_awaited_on_another_thread_with_a_task_waker_wakes_the_task() {
    let r = run(RealTime::default(), async {
        spawn(AwaitedOnThread { thread: None }).await
    });
    assert_eq!(r, Ok(7));
}

/// Sends its waker to a thread that clones it, sends the original back and
/// wakes the clone when told; completes on its second poll.
struct CloneAndReturn {
    back: std::sync::mpsc::Sender<Waker>,
    go: Option<std::sync::mpsc::Receiver<()>>,
    log: Log,
    _guard: Guard,
}

impl Future for CloneAndReturn {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(go) = self.go.take() else {
            self.log.push("completed");
            return Poll::Ready(Ok(()));
        };
        let (original, back) = (cx.waker().clone(), self.back.clone());
        std::thread::spawn(move || {
            let clone = original.clone();
            back.send(original).unwrap();
            go.recv().unwrap();
            clone.wake();
        });
        Poll::Pending
    }
}

#[test]
fn a_waker_cloned_on_another_thread_keeps_the_task_alive_when_its_original_returns() {
    // The clone's reference is queued for the owner thread; the original
    // comes back and is dropped while that reference is still queued.
    let log = Log::default();
    let l = log.clone();
    let r = run(RealTime::default(), async move {
        let (back, originals) = std::sync::mpsc::channel();
        let (go, went) = std::sync::mpsc::channel();
        let task = CloneAndReturn {
            back,
            go: Some(went),
            log: l.clone(),
            _guard: Guard(l.clone(), "task"),
        };
        drop(spawn(task));
        // Block the loop: the clone's queued reference cannot be applied by
        // a new round before the original is dropped.
        let original = originals.recv().unwrap();
        drop(original);
        l.push("original dropped");
        go.send(()).unwrap();
        while !l.lines().contains(&"dropped task".to_string()) {
            sleep(ms(1)).await?;
        }
        Ok(())
    });
    assert_eq!(r, Ok(()));
    assert_eq!(
        log.lines(),
        ["original dropped", "completed", "dropped task"]
    );
}

/// Records its drop.
struct Guard(Log, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.push(format!("dropped {}", self.1));
    }
}

#[test]
fn a_task_nobody_can_wake_or_await_is_freed() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let guard = Guard(l.clone(), "stuck task");
        let stuck = spawn(async move {
            let _guard = guard;
            std::future::pending::<Result<(), Error>>().await
        });
        l.push("spawned");
        drop(stuck);
        l.push("handle dropped");
        Ok(())
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        ["spawned", "dropped stuck task", "handle dropped"]
    );
}

#[test]
fn tasks_awaiting_each_other_when_run_returns_are_freed() {
    // The parent awaits the child; the child waits on a promise whose
    // resolver the parent holds: each keeps the other alive.
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let (promise, resolver) = wait::<()>();
        let child_guard = Guard(l.clone(), "child");
        let child = spawn(async move {
            let _guard = child_guard;
            promise.await
        });
        let parent_guard = Guard(l.clone(), "parent");
        drop(spawn(async move {
            let _guard = parent_guard;
            let _resolver = resolver;
            child.await
        }));
        pause().await
    })
    .unwrap();
    let mut dropped = log.lines();
    dropped.sort();
    assert_eq!(dropped, ["dropped child", "dropped parent"]);
}

#[test]
fn a_task_promise_that_outlives_run_is_rejected_with_canceled() {
    let promise = sim(async { Ok(spawn(sleep(secs(100)))) }).unwrap();
    assert_eq!(
        promise.state(),
        unikit_runtime::State::Rejected(&Error::Canceled)
    );
}

#[test]
fn tasks_left_pending_are_dropped_when_run_returns() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let guard = Guard(l.clone(), "sleeper");
        drop(spawn(async move {
            let _guard = guard;
            sleep(secs(100)).await
        }));
        sleep(secs(1)).await?;
        l.push("main done");
        Ok(())
    })
    .unwrap();
    assert_eq!(log.lines(), ["main done", "dropped sleeper"]);
}
