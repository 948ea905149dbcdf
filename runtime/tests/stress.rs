//! Random programs of spawns, sleeps, pauses, cancellations and
//! combinators: every task must end up freed, on simulated time and
//! deterministically.

mod common;

use common::sim;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use unikit_runtime::random::random_below;
use unikit_runtime::{Error, Promise, choose, join, pause, pick, sleep, spawn, task, time};

/// Counts live guards.
struct Guard(Rc<Cell<i64>>);

impl Guard {
    fn new(live: &Rc<Cell<i64>>) -> Self {
        live.set(live.get() + 1);
        Guard(live.clone())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// A task doing random things for `depth` levels.
fn worker(live: Rc<Cell<i64>>, depth: u32) -> Promise<u64> {
    spawn(async move {
        let _guard = Guard::new(&live);
        let mut done = 0;
        for _ in 0..random_below(4) {
            match random_below(7) {
                0 => sleep(Duration::from_micros(random_below(5_000))).await?,
                1 => pause().await?,
                2 if depth > 0 => {
                    let child = worker(live.clone(), depth - 1);
                    if random_below(3) == 0 {
                        child.cancel();
                    }
                    done += child.await.unwrap_or(0);
                }
                3 if depth > 0 => {
                    let children =
                        (0..random_below(4) + 1).map(|_| worker(live.clone(), depth - 1));
                    done += pick(children).await.unwrap_or(0);
                }
                4 if depth > 0 => {
                    let children: Vec<_> = (0..random_below(4) + 1)
                        .map(|_| worker(live.clone(), depth - 1))
                        .collect();
                    done += choose(children).await.unwrap_or(0);
                }
                5 if depth > 0 => {
                    let children = (0..random_below(3)).map(|_| {
                        let w = worker(live.clone(), depth - 1);
                        async move { w.await.map(drop) }
                    });
                    join(children).await.unwrap_or(());
                }
                _ => {
                    let (p, r) = task::<u64>();
                    let guard = Guard::new(&live);
                    r.on_cancel(move || drop(guard));
                    if random_below(2) == 0 {
                        p.cancel();
                    } else {
                        r.fulfil(1);
                    }
                    done += p.await.unwrap_or(0);
                }
            }
        }
        Ok::<_, Error>(done + 1)
    })
}

#[test]
fn random_programs_free_every_task_and_are_deterministic() {
    for seed in 0..40 {
        let outcome = |seed| {
            let live = Rc::new(Cell::new(0));
            let l = live.clone();
            let r = unikit_runtime::Runtime::new(unikit_runtime::Simulated::new(seed)).run(
                async move {
                    let total = worker(l.clone(), 3).await.unwrap_or(0);
                    Ok((total, time::now()))
                },
            );
            (r, live.get())
        };
        let (result, live) = outcome(seed);
        assert_eq!(live, 0, "seed {seed}: {live} guards still alive");
        assert_eq!(outcome(seed).0, result, "seed {seed} is not reproducible");
    }
}

#[test]
fn the_stress_program_runs_to_completion_on_the_default_seed() {
    let live = Rc::new(Cell::new(0));
    let l = live.clone();
    assert!(sim(async move { worker(l, 4).await }).is_ok());
    assert_eq!(live.get(), 0);
}
