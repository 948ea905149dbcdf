//! Promises: states, resolvers, spawned tasks (the Lwt manual, 2.1-2.1.1).

mod common;

use common::{Log, sim};
use unikit_runtime::{Error, Promise, State, pause, spawn, task, wait};

#[test]
fn fulfilled_promise_is_fulfilled() {
    // # Lwt.state (Lwt.return 42);;  -> Return 42
    assert_eq!(Promise::fulfilled(42).state(), State::Fulfilled(&42));
}

#[test]
fn rejected_promise_is_rejected() {
    // # Lwt.state (fail Exit);;  -> Fail Exit
    let p: Promise<i32> = Promise::rejected(Error::msg("Exit"));
    assert_eq!(p.state(), State::Rejected(&Error::msg("Exit")));
}

#[test]
fn wait_promise_is_pending_until_fulfilled() {
    let (waiter, waker) = wait();
    assert_eq!(waiter.state(), State::Pending);
    waker.fulfil(42);
    assert_eq!(waiter.state(), State::Fulfilled(&42));
}

#[test]
fn wait_promise_is_rejected_through_its_resolver() {
    let (waiter, waker) = wait::<i32>();
    waker.reject(Error::msg("Exit"));
    assert_eq!(waiter.state(), State::Rejected(&Error::msg("Exit")));
}

#[test]
fn dropping_the_resolver_abandons_the_promise() {
    let (waiter, waker) = wait::<i32>();
    drop(waker);
    assert_eq!(waiter.state(), State::Rejected(&Error::Abandoned));
}

#[test]
fn awaiting_a_fulfilled_promise_gives_its_value() {
    assert_eq!(sim(async { Promise::fulfilled(7).await }), Ok(7));
}

#[test]
fn awaiting_a_rejected_promise_gives_its_error() {
    let r = sim(async { Promise::<()>::rejected(Error::msg("boom")).await });
    assert_eq!(r, Err(Error::msg("boom")));
}

#[test]
fn awaiting_a_pending_promise_waits_for_its_resolution() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move {
        let (p, r) = wait();
        let l2 = l.clone();
        let reader = spawn(async move {
            let v = p.await?;
            l2.push(format!("got {v}"));
            Ok(v + 1)
        });
        log_state(&l, &reader);
        r.fulfil(41);
        l.push("resolved");
        reader.await
    });
    assert_eq!(r, Ok(42));
    assert_eq!(log.lines(), ["pending", "resolved", "got 41"]);
}

fn log_state(log: &Log, p: &Promise<i32>) {
    log.push(match p.state() {
        State::Pending => "pending".to_string(),
        State::Fulfilled(v) => format!("fulfilled {v}"),
        State::Rejected(e) => format!("rejected {e}"),
    });
}

#[test]
fn spawned_task_runs_until_its_first_pending_await_at_once() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let l2 = l.clone();
        let t = spawn(async move {
            l2.push("task started");
            pause().await?;
            l2.push("task resumed");
            Ok(())
        });
        l.push("spawn returned");
        t.await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        ["task started", "spawn returned", "task resumed"]
    );
}

#[test]
fn spawned_task_that_never_waits_is_fulfilled_when_spawn_returns() {
    sim(async {
        let t = spawn(async { Ok(5) });
        assert_eq!(t.state(), State::Fulfilled(&5));
        Ok(())
    })
    .unwrap();
}

#[test]
fn spawned_task_handle_reports_rejection() {
    sim(async {
        let t: Promise<()> = spawn(async { Err(Error::msg("bad")) });
        assert_eq!(t.state(), State::Rejected(&Error::msg("bad")));
        assert_eq!(t.await, Err(Error::msg("bad")));
        Ok(())
    })
    .unwrap();
}

#[test]
fn resolving_wakes_the_waiter_without_running_it_inside_the_resolver() {
    // Seed 003's surprise: in Lwt, `put` runs the reader before returning.
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let (p, r) = wait::<()>();
        let l2 = l.clone();
        let reader = spawn(async move {
            p.await?;
            l2.push("r");
            Ok(())
        });
        r.fulfil(());
        l.push("w");
        reader.await
    })
    .unwrap();
    assert_eq!(log.lines(), ["w", "r"]);
}

#[test]
fn dropping_a_task_handle_does_not_stop_the_task() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let l2 = l.clone();
        drop(spawn(async move {
            pause().await?;
            l2.push("still running");
            Ok(())
        }));
        pause().await?;
        pause().await?;
        Ok(())
    })
    .unwrap();
    assert_eq!(log.lines(), ["still running"]);
}

#[test]
fn task_promise_is_cancelable_and_wait_promise_is_not() {
    let (p, r) = task::<i32>();
    p.cancel();
    assert_eq!(p.state(), State::Rejected(&Error::Canceled));
    assert!(r.is_canceled());
    let (p, r) = wait::<i32>();
    p.cancel();
    assert_eq!(p.state(), State::Pending);
    r.fulfil(1);
    assert_eq!(p.state(), State::Fulfilled(&1));
}

#[test]
fn resolving_a_canceled_promise_is_a_no_op() {
    let (p, r) = task::<i32>();
    p.cancel();
    r.fulfil(3);
    assert_eq!(p.state(), State::Rejected(&Error::Canceled));
}

#[test]
fn cancellation_is_a_recognisable_rejection() {
    let (p, _r) = task::<i32>();
    p.cancel();
    let State::Rejected(e) = p.state() else {
        panic!("not rejected")
    };
    assert!(e.is_canceled());
    assert!(!Error::msg("x").is_canceled());
}

#[test]
fn failures_keep_their_error_value() {
    #[derive(Debug)]
    struct Mine(u8);
    impl std::fmt::Display for Mine {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "mine {}", self.0)
        }
    }
    impl std::error::Error for Mine {}
    let e = Error::from(Mine(3));
    assert_eq!(e.downcast_ref::<Mine>().map(|m| m.0), Some(3));
    assert_eq!(e.to_string(), "mine 3");
}

#[test]
fn question_mark_converts_error_values() {
    let r = sim(async {
        let n: i32 = "x".parse()?;
        Ok(n)
    });
    assert!(
        r.unwrap_err()
            .downcast_ref::<std::num::ParseIntError>()
            .is_some()
    );
}

#[test]
fn dropping_an_await_in_any_state_drops_the_promise_and_its_value() {
    use std::future::{Future, IntoFuture};
    use std::pin::pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};

    let value = Rc::new(());
    let mut cx = Context::from_waker(Waker::noop());
    // An already fulfilled promise, never polled.
    drop(Promise::fulfilled(value.clone()).into_future());
    assert_eq!(Rc::strong_count(&value), 1);
    // A `wait` promise resolved before its await is dropped unpolled.
    let (p, r) = wait();
    r.fulfil(value.clone());
    drop(p.into_future());
    assert_eq!(Rc::strong_count(&value), 1);
    // A `wait` promise whose await was polled (pending) and then dropped:
    // the cell goes once the resolver is done with it.
    let (p, r) = wait::<Rc<()>>();
    {
        let mut awaiting = pin!(p.into_future());
        assert!(awaiting.as_mut().poll(&mut cx).is_pending());
    }
    r.fulfil(value.clone());
    assert_eq!(Rc::strong_count(&value), 1);
    // An await that took the value leaves nothing behind.
    let (p, r) = wait();
    let mut awaiting = pin!(p.into_future());
    assert!(awaiting.as_mut().poll(&mut cx).is_pending());
    r.fulfil(value.clone());
    let Poll::Ready(Ok(taken)) = awaiting.as_mut().poll(&mut cx) else {
        panic!("the promise is fulfilled");
    };
    assert_eq!(Rc::strong_count(&value), 2);
    drop(taken);
    assert_eq!(Rc::strong_count(&value), 1);
    // A spawned task's promise, awaited and dropped before the task ends.
    let v = value.clone();
    sim(async move {
        let task = spawn(async move {
            pause().await?;
            Ok(v)
        });
        let mut awaiting = pin!(task.into_future());
        std::future::poll_fn(|cx| {
            assert!(awaiting.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        Ok(())
    })
    .expect("the main task succeeds");
    assert_eq!(Rc::strong_count(&value), 1);
}

#[test]
fn a_promise_can_be_made_and_dropped_in_different_runs_or_outside_any() {
    use std::rc::Rc;

    let value = Rc::new(());
    // Made outside `run`, resolved and dropped inside.
    let (p, r) = wait();
    let v = value.clone();
    let got = sim(async move {
        r.fulfil(v);
        let got = p.await?;
        Ok(Rc::strong_count(&got))
    });
    assert_eq!(got, Ok(2));
    assert_eq!(Rc::strong_count(&value), 1);
    // Made inside one run, resolved in another, dropped outside any.
    let (p, r) = sim(async { Ok(wait::<Rc<()>>()) }).expect("made");
    let v = value.clone();
    sim(async move {
        r.fulfil(v);
        Ok(())
    })
    .expect("resolved");
    assert_eq!(p.state(), State::Fulfilled(&value));
    drop(p);
    assert_eq!(Rc::strong_count(&value), 1);
}

#[test]
fn an_await_polled_again_with_another_waker_wakes_only_the_last_one() {
    use std::future::{Future, IntoFuture};
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let (a, b) = (
        Arc::new(Counter(AtomicUsize::new(0))),
        Arc::new(Counter(AtomicUsize::new(0))),
    );
    let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
    let (p, r) = wait::<i32>();
    let mut awaiting = pin!(p.into_future());
    assert!(
        awaiting
            .as_mut()
            .poll(&mut Context::from_waker(&wa))
            .is_pending()
    );
    assert!(
        awaiting
            .as_mut()
            .poll(&mut Context::from_waker(&wa))
            .is_pending()
    );
    assert_eq!(Arc::strong_count(&a), 3, "one clone kept");
    assert!(
        awaiting
            .as_mut()
            .poll(&mut Context::from_waker(&wb))
            .is_pending()
    );
    assert_eq!(Arc::strong_count(&a), 2, "replaced and dropped");
    r.fulfil(7);
    assert_eq!(a.0.load(Ordering::Relaxed), 0);
    assert_eq!(b.0.load(Ordering::Relaxed), 1);
    assert_eq!(Arc::strong_count(&b), 2, "woken and dropped");
    assert_eq!(
        awaiting.as_mut().poll(&mut Context::from_waker(&wa)),
        Poll::Ready(Ok(7))
    );
}
