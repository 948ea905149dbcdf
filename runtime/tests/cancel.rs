//! Cancellation (the Lwt manual 2.1.3): reaching the deepest cancelable
//! promise, on_cancel, protected, no_cancel.

mod common;

use common::{Log, secs, sim};
use unikit_runtime::{
    Error, Promise, State, no_cancel, pause, protected, sleep, spawn, task, time, wait,
};

#[test]
fn canceling_a_task_cancels_the_task_promise_it_awaits() {
    // The manual: let t = bind waiter (fun x -> return (x + 1)); cancel t;
    // state waiter = Fail Canceled; state t = Fail Canceled.
    sim(async {
        let (waiter, waker) = task::<i32>();
        let t = spawn(async move { Ok(waiter.await? + 1) });
        t.cancel();
        pause().await?;
        assert!(waker.is_canceled());
        assert_eq!(t.state(), State::Rejected(&Error::Canceled));
        Ok(())
    })
    .unwrap();
}

#[test]
fn cancel_reaches_the_deepest_cancelable_promise_through_tasks() {
    sim(async {
        let (deep, resolver) = task::<i32>();
        let inner = spawn(async move { Ok(deep.await? * 2) });
        let outer = spawn(async move { Ok(inner.await? + 1) });
        outer.cancel();
        while outer.is_pending() {
            pause().await?;
        }
        assert!(resolver.is_canceled());
        assert_eq!(outer.state(), State::Rejected(&Error::Canceled));
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_wait_promise_stops_cancellation() {
    sim(async {
        let (p, resolver) = wait::<i32>();
        let t = spawn(async move { Ok(p.await? + 1) });
        t.cancel();
        pause().await?;
        pause().await?;
        assert_eq!(t.state(), State::Pending);
        resolver.fulfil(1);
        pause().await?;
        assert_eq!(t.state(), State::Fulfilled(&2));
        Ok(())
    })
    .unwrap();
}

#[test]
fn canceling_a_sleeping_task_frees_its_timer() {
    let r = sim(async {
        let t = spawn(async { sleep(secs(10)).await });
        assert_eq!(unikit_runtime::time::pending_timers(), 1);
        t.cancel();
        let r = t.await;
        Ok((r, unikit_runtime::time::pending_timers(), time::now()))
    });
    assert_eq!(
        r,
        Ok((Err(Error::Canceled), 0, unikit_runtime::Instant::ZERO))
    );
}

#[test]
fn on_cancel_callbacks_run_exactly_once() {
    let log = Log::default();
    let (p, _r) = task::<()>();
    let l = log.clone();
    p.on_cancel(move || l.push("canceled"));
    p.cancel();
    p.cancel();
    assert_eq!(log.lines(), ["canceled"]);
}

#[test]
fn on_cancel_on_an_already_canceled_promise_runs_at_once() {
    let log = Log::default();
    let (p, _r) = task::<()>();
    p.cancel();
    let l = log.clone();
    p.on_cancel(move || l.push("canceled"));
    assert_eq!(log.lines(), ["canceled"]);
}

#[test]
fn on_cancel_does_not_run_when_resolved_otherwise() {
    let log = Log::default();
    let (p, r) = task::<()>();
    let l = log.clone();
    p.on_cancel(move || l.push("canceled"));
    r.fulfil(());
    p.cancel();
    assert_eq!(log.lines(), Vec::<String>::new());
}

#[test]
fn on_cancel_runs_before_ordinary_failure_handling() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let (p, r) = task::<()>();
        let l2 = l.clone();
        r.on_cancel(move || l2.push("on_cancel"));
        let l3 = l.clone();
        let t = spawn(async move {
            if let Err(e) = p.await {
                l3.push(format!("failure: {e}"));
            }
            Ok(())
        });
        t.cancel();
        t.await
    })
    .unwrap();
    assert_eq!(log.lines(), ["on_cancel", "failure: canceled"]);
}

#[test]
fn on_cancel_of_a_task_promise_runs_when_the_task_is_canceled() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let t = spawn(async { sleep(secs(1)).await });
        let l2 = l.clone();
        t.on_cancel(move || l2.push("task canceled"));
        t.cancel();
        let _ = t.await;
        Ok(())
    })
    .unwrap();
    assert_eq!(log.lines(), ["task canceled"]);
}

#[test]
fn protected_is_canceled_without_canceling_the_promise() {
    sim(async {
        let (p, resolver) = task::<i32>();
        let t = spawn(protected(p));
        t.cancel();
        pause().await?;
        assert_eq!(t.state(), State::Rejected(&Error::Canceled));
        assert!(!resolver.is_canceled());
        Ok(())
    })
    .unwrap();
}

#[test]
fn protected_follows_the_promise_when_not_canceled() {
    let r = sim(async {
        let (p, resolver) = task::<i32>();
        resolver.fulfil(4);
        protected(p).await
    });
    assert_eq!(r, Ok(4));
}

#[test]
fn no_cancel_hides_cancellation_from_its_future() {
    let r = sim(async {
        let t = spawn(no_cancel(async {
            sleep(secs(1)).await?;
            Ok("done")
        }));
        t.cancel();
        Ok((t.await, time::now()))
    });
    assert_eq!(
        r,
        Ok((
            Ok("done"),
            unikit_runtime::Instant::from_nanos(1_000_000_000)
        ))
    );
}

#[test]
fn a_cancellation_is_ignored_by_a_task_awaiting_nothing_cancelable_then() {
    sim(async {
        let (p, resolver) = wait::<()>();
        let t = spawn(async move {
            p.await?;
            sleep(secs(1)).await?;
            Ok("slept")
        });
        t.cancel();
        pause().await?;
        resolver.fulfil(());
        assert_eq!(t.await, Ok("slept"));
        Ok(())
    })
    .unwrap();
}

#[test]
fn canceling_a_resolved_promise_has_no_effect() {
    let p = Promise::fulfilled(1);
    p.cancel();
    assert_eq!(p.state(), State::Fulfilled(&1));
}
