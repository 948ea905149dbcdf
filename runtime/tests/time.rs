//! Time: sleep, sleep_until, timeout, with_timeout and the timer queue.

mod common;

use common::{Log, ms, secs, sim};
use std::time::Duration;
use unikit_runtime::time::{self, pending_timers};
use unikit_runtime::{
    Error, Instant, Simulated, join, run, sleep, sleep_until, spawn, timeout, with_timeout,
};

#[test]
fn sleep_resumes_at_its_deadline_on_simulated_time() {
    let t = sim(async {
        sleep(ms(1500)).await?;
        Ok(time::now())
    });
    assert_eq!(t, Ok(Instant::from_nanos(1_500_000_000)));
}

#[test]
fn sleep_counts_from_when_it_is_called_not_when_awaited() {
    let t = sim(async {
        let s = sleep(secs(2));
        sleep(secs(1)).await?;
        s.await?;
        Ok(time::now())
    });
    assert_eq!(t.map(Instant::since_epoch), Ok(secs(2)));
}

#[test]
fn sleep_until_resumes_at_the_instant() {
    let t = sim(async {
        sleep_until(Instant::from_nanos(7)).await?;
        Ok(time::now())
    });
    assert_eq!(t, Ok(Instant::from_nanos(7)));
}

#[test]
fn sleep_until_a_past_instant_waits_for_the_next_round() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let l2 = l.clone();
        let other = spawn(async move {
            l2.push("other");
            Ok(())
        });
        sleep_until(Instant::ZERO).await?;
        l.push("slept");
        other.await
    })
    .unwrap();
    assert_eq!(log.lines(), ["other", "slept"]);
}

#[test]
fn timers_with_equal_deadlines_fire_in_arming_order() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let l = l.clone();
                spawn(async move {
                    sleep(secs(1)).await?;
                    l.push(i.to_string());
                    Ok(())
                })
            })
            .collect();
        join(tasks).await
    })
    .unwrap();
    assert_eq!(log.lines(), ["0", "1", "2", "3", "4"]);
}

#[test]
fn timers_fire_in_deadline_order() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let tasks: Vec<_> = [5u64, 1, 4, 2, 3]
            .into_iter()
            .map(|s| {
                let l = l.clone();
                spawn(async move {
                    sleep(secs(s)).await?;
                    l.at(s.to_string());
                    Ok(())
                })
            })
            .collect();
        join(tasks).await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        ["1.000 1", "2.000 2", "3.000 3", "4.000 4", "5.000 5"]
    );
}

#[test]
fn timeout_rejects_with_timeout_after_its_duration() {
    let r = sim(async {
        let Err(e) = timeout(ms(300)).await;
        Ok((e, time::now()))
    });
    assert_eq!(r, Ok((Error::Timeout, Instant::from_nanos(300_000_000))));
}

#[test]
fn with_timeout_returns_the_result_when_in_time() {
    let r = sim(async {
        let v = with_timeout(secs(2), async {
            sleep(secs(1)).await?;
            Ok(5)
        })
        .await?;
        Ok((v, time::now(), pending_timers()))
    });
    assert_eq!(r, Ok((5, Instant::from_nanos(1_000_000_000), 0)));
}

#[test]
fn with_timeout_cancels_the_late_future_and_rejects_with_timeout() {
    let r = sim(async {
        let late = with_timeout(secs(1), async {
            sleep(secs(5)).await?;
            Ok(5)
        })
        .await;
        Ok((late, time::now(), pending_timers()))
    });
    assert_eq!(
        r,
        Ok((Err(Error::Timeout), Instant::from_nanos(1_000_000_000), 0))
    );
}

#[test]
fn with_timeout_of_a_resolved_future_gives_its_value_and_leaves_no_timer() {
    let r = sim(async {
        let v = with_timeout(secs(1), async { Ok(7) }).await?;
        Ok((v, pending_timers(), time::now()))
    });
    assert_eq!(r, Ok((7, 0, Instant::from_nanos(0))));
}

#[test]
fn with_timeout_picks_at_random_when_the_future_and_its_timer_resolve_together() {
    // The future is a sleep with the timeout's deadline: both resolve in
    // the same round, and `pick` chooses with the seeded generator.
    let outcome = |seed| {
        run(Simulated::new(seed), async {
            let r = with_timeout(secs(1), sleep(secs(1))).await;
            Ok((r, pending_timers(), time::now()))
        })
    };
    let at_1s = Instant::from_nanos(1_000_000_000);
    let outcomes: Vec<_> = (0..16).map(outcome).collect();
    assert!(outcomes.contains(&Ok((Ok(()), 0, at_1s))));
    assert!(outcomes.contains(&Ok((Err(Error::Timeout), 0, at_1s))));
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok((Ok(()) | Err(Error::Timeout), 0, t)) if *t == at_1s))
    );
    assert_eq!(outcome(3), outcome(3));
}

#[test]
fn canceling_a_task_in_with_timeout_cancels_the_future_and_frees_the_timer() {
    let r = sim(async {
        let task = spawn(async { with_timeout(secs(5), sleep(secs(10))).await });
        unikit_runtime::pause().await?;
        task.cancel();
        let r = task.await;
        Ok((r, pending_timers(), time::now()))
    });
    assert_eq!(r, Ok((Err(Error::Canceled), 0, Instant::from_nanos(0))));
}

#[test]
fn dropping_a_sleep_frees_its_timer_at_once() {
    sim(async {
        let mut s = Box::pin(sleep(secs(10)));
        let _ = futures_poll_once(s.as_mut()).await;
        assert_eq!(pending_timers(), 1);
        drop(s);
        assert_eq!(pending_timers(), 0);
        Ok(())
    })
    .unwrap();
}

/// Polls `f` once from inside a task.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut f).poll(cx))).await
}

#[test]
fn timer_queue_holds_a_million_pending_timers_and_frees_canceled_ones() {
    sim(async {
        let mut sleeps: Vec<_> = (0..1_000_000u64)
            .map(|i| Box::pin(sleep(Duration::from_micros(1 + i % 997))))
            .collect();
        for s in &mut sleeps {
            let _ = futures_poll_once(s.as_mut()).await;
        }
        assert_eq!(pending_timers(), 1_000_000);
        sleeps.truncate(10);
        assert_eq!(pending_timers(), 10);
        for s in sleeps {
            s.await?;
        }
        assert_eq!(pending_timers(), 0);
        Ok(())
    })
    .unwrap();
}

#[test]
fn simulated_clock_only_moves_when_every_task_waits() {
    let r = sim(async {
        let before = time::now();
        for _ in 0..1000 {
            unikit_runtime::pause().await?;
        }
        Ok(time::now() - before)
    });
    assert_eq!(r, Ok(Duration::ZERO));
}
