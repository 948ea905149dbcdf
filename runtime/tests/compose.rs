//! Composition: join, all, both, choose, pick, nchoose, npick, nchoose_split
//! (the Lwt manual 2.1.4 and the tutorial's join/choose/pick).

mod common;

use common::{Log, ms, secs, sim};
use std::collections::BTreeSet;
use unikit_runtime::{
    Error, Promise, Runtime, Simulated, State, all, both, choose, join, nchoose, nchoose_split,
    npick, pause, pick, sleep, spawn, task, time, wait,
};

fn sleeper(log: &Log, s: u64, name: &'static str) -> Promise<&'static str> {
    let log = log.clone();
    spawn(async move {
        sleep(secs(s)).await?;
        log.at(name);
        Ok(name)
    })
}

fn failing_after(s: u64, msg: &'static str) -> Promise<()> {
    spawn(async move {
        sleep(secs(s)).await?;
        Err(Error::msg(msg))
    })
}

#[test]
fn join_waits_for_all() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        join([sleeper(&l, 2, "b"), sleeper(&l, 1, "a")].map(|p| async { p.await.map(drop) }))
            .await?;
        l.at("joined");
        Ok(())
    })
    .unwrap();
    assert_eq!(log.lines(), ["1.000 a", "2.000 b", "2.000 joined"]);
}

#[test]
fn join_rejects_with_the_first_rejection_after_all_resolved() {
    let r = sim(async {
        let r = join([
            failing_after(2, "second"),
            failing_after(1, "first"),
            spawn(async { sleep(secs(3)).await }),
        ])
        .await;
        Ok((r, time::now()))
    });
    assert_eq!(r, Ok((Err(Error::msg("first")), time_s(3))));
}

fn time_s(s: u64) -> unikit_runtime::Instant {
    unikit_runtime::Instant::from_nanos(s * 1_000_000_000)
}

#[test]
fn join_of_nothing_resolves_at_once() {
    assert_eq!(sim(async { join(Vec::<Promise<()>>::new()).await }), Ok(()));
}

#[test]
fn all_returns_the_values_in_order() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move { all([sleeper(&l, 2, "b"), sleeper(&l, 1, "a")]).await });
    assert_eq!(r, Ok(vec!["b", "a"]));
}

#[test]
fn all_rejects_with_the_first_rejection() {
    let r = sim(async {
        all([
            spawn(async { Ok(1) }),
            spawn(async {
                sleep(secs(1)).await?;
                Err(Error::msg("no"))
            }),
        ])
        .await
    });
    assert_eq!(r, Err(Error::msg("no")));
}

#[test]
fn both_returns_both_values() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move { both(sleeper(&l, 1, "a"), async { Ok(3) }).await });
    assert_eq!(r, Ok(("a", 3)));
}

#[test]
fn both_waits_for_the_other_before_rejecting() {
    let r = sim(async {
        let r = both(failing_after(1, "a"), async {
            sleep(secs(2)).await?;
            Ok(2)
        })
        .await;
        Ok((r, time::now()))
    });
    assert_eq!(r, Ok((Err(Error::msg("a")), time_s(2))));
}

#[test]
fn choose_resolves_as_the_first_to_resolve() {
    // The manual's example: choose [waiter1; waiter2]; wakeup waker2 42.
    sim(async {
        let (waiter1, _waker1) = wait::<i32>();
        let (waiter2, waker2) = wait::<i32>();
        let t = spawn(choose([waiter1, waiter2]));
        assert_eq!(t.state(), State::Pending);
        waker2.fulfil(42);
        pause().await?;
        assert_eq!(t.state(), State::Fulfilled(&42));
        Ok(())
    })
    .unwrap();
}

#[test]
fn choose_does_not_cancel_the_others() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let first = choose([sleeper(&l, 1, "fast"), sleeper(&l, 2, "slow")]).await?;
        l.at(format!("chose {first}"));
        sleep(secs(5)).await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        ["1.000 fast", "1.000 chose fast", "2.000 slow"]
    );
}

#[test]
fn choose_on_nothing_is_an_error() {
    let r = sim(async { choose(Vec::<Promise<()>>::new()).await });
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
}

#[test]
fn choose_among_resolved_promises_selects_at_random_reproducibly() {
    let pick_with = |seed| {
        Runtime::new(Simulated::new(seed))
            .run(async { choose((0..8).map(Promise::fulfilled)).await })
            .unwrap()
    };
    let picks: BTreeSet<i32> = (0..64).map(pick_with).collect();
    assert!(picks.len() > 1, "always the same choice: {picks:?}");
    for seed in 0..16 {
        assert_eq!(pick_with(seed), pick_with(seed));
    }
}

#[test]
fn pick_cancels_the_others() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let slow = sleeper(&l, 2, "slow");
        let (p, r) = task::<&'static str>();
        let l2 = l.clone();
        r.on_cancel(move || l2.at("task canceled"));
        let first = pick([sleeper(&l, 1, "fast"), slow, p]).await?;
        l.at(format!("picked {first}"));
        sleep(secs(5)).await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        ["1.000 fast", "1.000 task canceled", "1.000 picked fast"]
    );
}

#[test]
fn pick_on_nothing_is_an_error() {
    let r = sim(async { pick(Vec::<Promise<()>>::new()).await });
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
}

#[test]
fn nchoose_returns_every_value_resolved_by_then() {
    let r = sim(async {
        let (p, _r) = wait::<i32>();
        nchoose([Promise::fulfilled(1), p, Promise::fulfilled(3)]).await
    });
    assert_eq!(r, Ok(vec![1, 3]));
}

#[test]
fn nchoose_rejects_if_a_resolved_one_is_rejected() {
    let r =
        sim(async { nchoose([Promise::fulfilled(1), Promise::rejected(Error::msg("x"))]).await });
    assert_eq!(r, Err(Error::msg("x")));
}

#[test]
fn nchoose_on_nothing_is_an_error() {
    let r = sim(async { nchoose(Vec::<Promise<()>>::new()).await });
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
}

#[test]
fn npick_cancels_the_others() {
    let r = sim(async {
        let (p, r) = task::<i32>();
        let values = npick([spawn(async { Ok(1) }), p]).await?;
        Ok((values, r.is_canceled()))
    });
    assert_eq!(r, Ok((vec![1], true)));
}

#[test]
fn nchoose_split_returns_the_pending_ones() {
    let r = sim(async {
        let (p, resolver) = wait::<i32>();
        let (values, pending) =
            nchoose_split([Promise::fulfilled(1), p, Promise::fulfilled(3)]).await?;
        resolver.fulfil(2);
        let mut rest = Vec::new();
        for p in pending {
            rest.push(p.await?);
        }
        Ok((values, rest))
    });
    assert_eq!(r, Ok((vec![1, 3], vec![2])));
}

/// Counts its polls; resolves after `s` seconds.
struct CountedSleep {
    sleep: unikit_runtime::time::Sleep,
    polls: std::rc::Rc<std::cell::Cell<u32>>,
}

impl std::future::Future for CountedSleep {
    type Output = Result<(), Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.polls.set(self.polls.get() + 1);
        std::pin::Pin::new(&mut self.sleep).poll(cx)
    }
}

#[test]
fn join_of_many_polls_only_the_branches_that_were_woken() {
    let polls = std::rc::Rc::new(std::cell::Cell::new(0));
    let p = polls.clone();
    sim(async move {
        join((1..=100).map(|s| CountedSleep {
            sleep: sleep(secs(s)),
            polls: p.clone(),
        }))
        .await
    })
    .unwrap();
    // Each branch: its first poll, then the poll after its timer fired.
    assert_eq!(polls.get(), 200);
}

#[test]
fn join_of_thousands_polls_each_branch_again_only_when_woken() {
    // More than 4096 branches: the woken ones are found through more than
    // one summary word of the per-branch wakers.
    let polls = std::rc::Rc::new(std::cell::Cell::new(0));
    let p = polls.clone();
    let n = 10_000u64;
    sim(async move {
        join((1..=n).map(|i| CountedSleep {
            sleep: sleep(ms((i * 7919) % n + 1)),
            polls: p.clone(),
        }))
        .await
    })
    .unwrap();
    assert_eq!(u64::from(polls.get()), 2 * n);
}

#[test]
fn all_of_thousands_keeps_the_order_of_its_branches() {
    let n = 10_000u64;
    let r = sim(async move {
        // The last branches resolve first.
        all((0..n).map(|i| async move {
            sleep(ms(n - i)).await?;
            Ok(i)
        }))
        .await
    });
    assert_eq!(r, Ok((0..n).collect()));
}

#[test]
fn join_of_a_few_polls_them_all_when_woken() {
    let polls = std::rc::Rc::new(std::cell::Cell::new(0));
    let p = polls.clone();
    sim(async move {
        join((1..=3).map(|s| CountedSleep {
            sleep: sleep(secs(s)),
            polls: p.clone(),
        }))
        .await
    })
    .unwrap();
    // 3 at first, then 3, 2 and 1 pending branches polled as each fires.
    assert_eq!(polls.get(), 3 + 3 + 2 + 1);
}

#[test]
fn join_of_many_task_promises_resolves_when_the_last_does() {
    let r = sim(async {
        let tasks: Vec<_> = (1..=20u64)
            .map(|s| {
                spawn(async move {
                    sleep(secs(21 - s)).await?;
                    Ok(s)
                })
            })
            .collect();
        let values = all(tasks).await?;
        Ok((values.iter().sum::<u64>(), time::now()))
    });
    assert_eq!(r, Ok((210, time_s(20))));
}

#[test]
fn join_of_many_wait_promises_resolves_as_their_resolvers_do() {
    // More branches than `join` polls all at once: each `wait` promise keeps
    // the waker of its own branch.
    let r = sim(async {
        let (promises, resolvers): (Vec<_>, Vec<_>) = (0..20u64).map(|_| wait()).unzip();
        let resolving = spawn(async move {
            for (i, r) in resolvers.into_iter().enumerate().rev() {
                sleep(secs(1)).await?;
                r.fulfil(i as u64);
            }
            Ok(())
        });
        let values = all(promises).await?;
        resolving.await?;
        Ok((values, time::now()))
    });
    assert_eq!(
        r,
        Ok(((0..20).collect(), unikit_runtime::Instant::ZERO + secs(20)))
    );
}
