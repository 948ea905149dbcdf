//! Pools (Lwt_pool), on simulated time.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::{Log, secs, sim};
use unikit_runtime::pool::{Manager, Pool};
use unikit_runtime::{Error, join, sleep, spawn};

/// Connections numbered in creation order; records what happens to them.
#[derive(Default)]
struct Connections {
    created: Cell<u32>,
    /// Connections `validate` rejects.
    stale: RefCell<Vec<u32>>,
    /// Whether `check` keeps a connection after a failure.
    keep_after_failure: Cell<bool>,
    disposed: RefCell<Vec<u32>>,
    fail_creation: Cell<bool>,
}

/// The pool's manager, sharing the record with the test.
struct Manage(Rc<Connections>);

impl Manager for Manage {
    type Item = u32;

    async fn create(&self) -> Result<u32, Error> {
        sleep(secs(1)).await?;
        if self.0.fail_creation.get() {
            return Err(Error::msg("cannot connect"));
        }
        self.0.created.set(self.0.created.get() + 1);
        Ok(self.0.created.get())
    }

    async fn validate(&self, item: &mut u32) -> bool {
        !self.0.stale.borrow().contains(item)
    }

    async fn check(&self, _item: &mut u32, _error: &Error) -> bool {
        self.0.keep_after_failure.get()
    }

    async fn dispose(&self, item: u32) {
        self.0.disposed.borrow_mut().push(item);
    }
}

fn pool(max: usize) -> (Rc<Pool<Manage>>, Rc<Connections>) {
    let record = Rc::new(Connections::default());
    (Rc::new(Pool::new(max, Manage(record.clone()))), record)
}

#[test]
fn pool_creates_an_element_on_first_use_and_reuses_it() {
    let r = sim(async {
        let (pool, _) = pool(2);
        let a = pool.use_(async |c: &mut u32| Ok(*c)).await?;
        let b = pool.use_(async |c: &mut u32| Ok(*c)).await?;
        Ok((a, b, pool.size(), unikit_runtime::time::now().since_epoch()))
    });
    // One creation (1 s), then reuse.
    assert_eq!(r, Ok((1, 1, 1, secs(1))));
}

#[test]
fn pool_creates_up_to_max_elements_then_users_wait_in_fifo_order() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let (pool, _) = pool(2);
        let users: Vec<_> = ["a", "b", "c", "d"]
            .into_iter()
            .map(|name| {
                let (pool, l) = (pool.clone(), l.clone());
                spawn(async move {
                    pool.use_(async |c: &mut u32| {
                        l.at(format!("{name} uses {c}"));
                        sleep(secs(2)).await
                    })
                    .await
                })
            })
            .collect();
        assert_eq!(pool.wait_queue_length(), 2);
        join(users).await?;
        assert_eq!(pool.size(), 2);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        [
            "1.000 a uses 1",
            "1.000 b uses 2",
            "3.000 c uses 1",
            "3.000 d uses 2"
        ]
    );
}

#[test]
fn pool_invalid_idle_element_is_disposed_and_recreated() {
    let r = sim(async {
        let (pool, manager) = pool(1);
        pool.use_(async |_: &mut u32| Ok(())).await?;
        manager.stale.borrow_mut().push(1);
        let used = pool.use_(async |c: &mut u32| Ok(*c)).await?;
        Ok((used, manager.disposed.borrow().clone(), pool.size()))
    });
    assert_eq!(r, Ok((2, vec![1], 1)));
}

#[test]
fn pool_element_failing_its_check_is_disposed_and_its_place_freed() {
    let r = sim(async {
        let (pool, manager) = pool(1);
        let failed: Result<(), Error> = pool
            .use_(async |_: &mut u32| Err(Error::msg("broken pipe")))
            .await;
        assert_eq!(failed, Err(Error::msg("broken pipe")));
        assert_eq!(pool.size(), 0);
        let next = pool.use_(async |c: &mut u32| Ok(*c)).await?;
        Ok((next, manager.disposed.borrow().clone()))
    });
    assert_eq!(r, Ok((2, vec![1])));
}

#[test]
fn pool_element_passing_its_check_after_a_failure_is_kept() {
    let r = sim(async {
        let (pool, manager) = pool(1);
        manager.keep_after_failure.set(true);
        let _ = pool
            .use_(async |_: &mut u32| -> Result<(), Error> { Err(Error::msg("timeout")) })
            .await;
        let next = pool.use_(async |c: &mut u32| Ok(*c)).await?;
        Ok((next, manager.disposed.borrow().len()))
    });
    assert_eq!(r, Ok((1, 0)));
}

#[test]
fn pool_waiter_gets_a_new_element_when_a_failed_one_is_disposed() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let (pool, _) = pool(1);
        let (p1, l1) = (pool.clone(), l.clone());
        let failing = spawn(async move {
            let r: Result<(), Error> = p1
                .use_(async |c: &mut u32| {
                    l1.at(format!("first uses {c}"));
                    sleep(secs(1)).await?;
                    Err(Error::msg("broken"))
                })
                .await;
            assert!(r.is_err());
            Ok(())
        });
        let (p2, l2) = (pool.clone(), l.clone());
        let waiting = spawn(async move {
            p2.use_(async |c: &mut u32| {
                l2.at(format!("second uses {c}"));
                Ok(())
            })
            .await
        });
        join([failing, waiting]).await
    })
    .unwrap();
    assert_eq!(log.lines(), ["1.000 first uses 1", "3.000 second uses 2"]);
}

#[test]
fn pool_failed_creation_frees_its_place() {
    let r = sim(async {
        let (pool, manager) = pool(1);
        manager.fail_creation.set(true);
        let failed = pool.use_(async |c: &mut u32| Ok(*c)).await;
        assert_eq!(failed, Err(Error::msg("cannot connect")));
        assert_eq!(pool.size(), 0);
        manager.fail_creation.set(false);
        pool.use_(async |c: &mut u32| Ok(*c)).await
    });
    assert_eq!(r, Ok(1));
}

#[test]
fn pool_waiter_canceled_while_queued_leaves_the_queue() {
    sim(async {
        let (pool, _) = pool(1);
        let p1 = pool.clone();
        let holder = spawn(async move { p1.use_(async |_: &mut u32| sleep(secs(5)).await).await });
        let p2 = pool.clone();
        let waiter = spawn(async move { p2.use_(async |c: &mut u32| Ok(*c)).await });
        assert_eq!(pool.wait_queue_length(), 1);
        waiter.cancel();
        assert_eq!(waiter.await, Err(Error::Canceled));
        assert_eq!(pool.wait_queue_length(), 0);
        holder.await?;
        assert_eq!(pool.idle(), 1);
        Ok(())
    })
    .unwrap();
}

#[test]
fn pool_clear_disposes_of_the_idle_elements() {
    let r = sim(async {
        let (pool, manager) = pool(2);
        let p = pool.clone();
        join([
            spawn(async move { p.use_(async |_: &mut u32| Ok(())).await }),
            {
                let p = pool.clone();
                spawn(async move { p.use_(async |_: &mut u32| Ok(())).await })
            },
        ])
        .await?;
        assert_eq!(pool.idle(), 2);
        pool.clear().await;
        let mut disposed = manager.disposed.borrow().clone();
        disposed.sort();
        Ok((disposed, pool.size()))
    });
    assert_eq!(r, Ok((vec![1, 2], 0)));
}
