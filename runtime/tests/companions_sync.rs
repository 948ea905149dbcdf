//! Mutex, Condition and MVar (the Lwt manual 2.4.1 and 2.4.4, seed 003),
//! on simulated time.

mod common;

use std::rc::Rc;

use common::{Log, ms, secs, sim};
use unikit_runtime::sync::{Condition, MVar, Mutex};
use unikit_runtime::{Error, State, join, sleep, spawn};

// ---------------------------------------------------------------------------
// Mutex

#[test]
fn mutex_lock_of_a_free_mutex_is_resolved_at_once() {
    sim(async {
        let m = Mutex::new(());
        assert!(!m.is_locked());
        let guard = m.lock().await?;
        assert!(m.is_locked());
        drop(guard);
        assert!(!m.is_locked());
        Ok(())
    })
    .unwrap();
}

#[test]
fn mutex_is_handed_over_in_fifo_order() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let m = Rc::new(Mutex::new(()));
        let mut tasks = Vec::new();
        for name in ["a", "b", "c"] {
            let (m, l) = (m.clone(), l.clone());
            tasks.push(spawn(async move {
                let _guard = m.lock().await?;
                l.at(format!("{name} locked"));
                sleep(secs(1)).await
            }));
        }
        join(tasks).await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        ["0.000 a locked", "1.000 b locked", "2.000 c locked"]
    );
}

#[test]
fn mutex_unlock_hands_the_lock_to_the_next_waiter_without_freeing_it() {
    sim(async {
        let m = Rc::new(Mutex::new(()));
        let guard = m.lock().await?;
        let m2 = m.clone();
        let waiter = spawn(async move {
            let _guard = m2.lock().await?;
            Ok(())
        });
        assert_eq!(m.waiters(), 1);
        drop(guard);
        // Handed over: a lock taken now must queue behind the waiter.
        assert!(m.is_locked());
        assert_eq!(m.waiters(), 0);
        let late = m.lock();
        assert_eq!(waiter.state(), State::Pending);
        waiter.await?;
        drop(late.await?);
        assert!(!m.is_locked());
        Ok(())
    })
    .unwrap();
}

#[test]
fn mutex_unlock_schedules_the_waiter_instead_of_running_it() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let m = Rc::new(Mutex::new(()));
        let guard = m.lock().await?;
        let (m2, l2) = (m.clone(), l.clone());
        let waiter = spawn(async move {
            let _guard = m2.lock().await?;
            l2.push("waiter runs");
            Ok(())
        });
        drop(guard);
        l.push("unlock returned");
        waiter.await
    })
    .unwrap();
    assert_eq!(log.lines(), ["unlock returned", "waiter runs"]);
}

#[test]
fn mutex_waiter_canceled_while_queued_leaves_the_queue_and_never_gets_the_lock() {
    sim(async {
        let m = Rc::new(Mutex::new(0));
        let guard = m.lock().await?;
        let m2 = m.clone();
        let canceled = spawn(async move {
            *m2.lock().await? += 1;
            Ok(())
        });
        let m3 = m.clone();
        let next = spawn(async move {
            *m3.lock().await? += 10;
            Ok(())
        });
        assert_eq!(m.waiters(), 2);
        canceled.cancel();
        assert_eq!(canceled.await, Err(Error::Canceled));
        assert_eq!(m.waiters(), 1);
        drop(guard);
        next.await?;
        assert_eq!(*m.lock().await?, 10);
        Ok(())
    })
    .unwrap();
}

#[test]
fn mutex_lock_handed_over_before_a_cancellation_is_kept() {
    // As canceling a resolved Lwt promise does nothing.
    let r = sim(async {
        let m = Rc::new(Mutex::new(0));
        let guard = m.lock().await?;
        let m2 = m.clone();
        let waiter = spawn(async move {
            *m2.lock().await? += 1;
            Ok(())
        });
        drop(guard);
        waiter.cancel();
        let outcome = waiter.await;
        Ok((outcome, *m.lock().await?))
    });
    assert_eq!(r, Ok((Ok(()), 1)));
}

#[test]
fn mutex_waiter_dropped_while_queued_leaves_the_queue() {
    sim(async {
        let m = Mutex::new(());
        let guard = m.lock().await?;
        let dropped = m.lock();
        assert_eq!(m.waiters(), 1);
        drop(dropped);
        assert_eq!(m.waiters(), 0);
        drop(guard);
        assert!(!m.is_locked());
        Ok(())
    })
    .unwrap();
}

#[test]
fn mutex_lock_handed_to_a_waiter_dropped_before_it_ran_passes_to_the_next() {
    sim(async {
        let m = Mutex::new(());
        let guard = m.lock().await?;
        let first = m.lock();
        let second = m.lock();
        drop(guard);
        // `first` holds the lock now, without having run.
        drop(first);
        assert!(m.is_locked());
        drop(second.await?);
        assert!(!m.is_locked());
        Ok(())
    })
    .unwrap();
}

#[test]
fn mutex_with_lock_releases_the_lock_when_the_function_fails() {
    sim(async {
        let m = Mutex::new(5);
        let r: Result<(), Error> = m
            .with_lock(async |v: &mut i32| {
                *v += 1;
                Err(Error::msg("boom"))
            })
            .await;
        assert_eq!(r, Err(Error::msg("boom")));
        assert!(!m.is_locked());
        m.with_lock(async |v: &mut i32| Ok(*v)).await
    })
    .map(|v| assert_eq!(v, 6))
    .unwrap();
}

#[test]
fn mutex_serialises_read_modify_write_across_awaits() {
    let total = sim(async {
        let m = Rc::new(Mutex::new(0u32));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let m = m.clone();
                spawn(async move {
                    let mut guard = m.lock().await?;
                    let read = *guard;
                    sleep(ms(10)).await?;
                    *guard = read + 1;
                    Ok(())
                })
            })
            .collect();
        join(tasks).await?;
        Ok(*m.lock().await?)
    });
    assert_eq!(total, Ok(10));
}

#[test]
fn mutex_guard_unlock_releases_like_drop() {
    sim(async {
        let m = Mutex::new(());
        m.lock().await?.unlock();
        assert!(!m.is_locked());
        Ok(())
    })
    .unwrap();
}

// ---------------------------------------------------------------------------
// Condition

#[test]
fn condition_signal_wakes_the_oldest_waiter_only() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let c = Rc::new(Condition::<u32>::new());
        let waiters: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let (c, l) = (c.clone(), l.clone());
                spawn(async move {
                    let v = c.wait().await?;
                    l.at(format!("{name} got {v}"));
                    Ok(())
                })
            })
            .collect();
        sleep(secs(1)).await?;
        assert!(c.signal(1));
        sleep(secs(1)).await?;
        assert!(c.signal(2));
        join(waiters).await
    })
    .unwrap();
    assert_eq!(log.lines(), ["1.000 a got 1", "2.000 b got 2"]);
}

#[test]
fn condition_broadcast_wakes_every_waiter() {
    let got = sim(async {
        let c = Rc::new(Condition::<&'static str>::new());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let c = c.clone();
                spawn(async move { c.wait().await })
            })
            .collect();
        assert_eq!(c.broadcast("go"), 3);
        assert_eq!(c.waiters(), 0);
        unikit_runtime::all(waiters).await
    });
    assert_eq!(got, Ok(vec!["go", "go", "go"]));
}

#[test]
fn condition_signal_with_no_waiter_is_lost() {
    let r = sim(async {
        let c = Rc::new(Condition::<u32>::new());
        assert!(!c.signal(1));
        assert_eq!(c.broadcast(2), 0);
        let c2 = c.clone();
        let late = spawn(async move { c2.wait().await });
        sleep(secs(1)).await?;
        // Neither value was kept for the late waiter.
        assert_eq!(late.state(), State::Pending);
        c.signal(3);
        late.await
    });
    assert_eq!(r, Ok(3));
}

#[test]
fn condition_wait_registered_when_called_gets_a_signal_sent_before_its_first_poll() {
    let r = sim(async {
        let c = Condition::<u32>::new();
        let w = c.wait();
        assert!(c.signal(7));
        w.await
    });
    assert_eq!(r, Ok(7));
}

#[test]
fn condition_wait_with_releases_the_mutex_and_locks_it_again() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let m = Rc::new(Mutex::new(Vec::<u32>::new()));
        let c = Rc::new(Condition::<()>::new());
        let (m2, c2, l2) = (m.clone(), c.clone(), l.clone());
        let consumer = spawn(async move {
            let mut guard = m2.lock().await?;
            while guard.is_empty() {
                let ((), g) = c2.wait_with(guard).await?;
                guard = g;
            }
            l2.at(format!("consumed {:?}", *guard));
            Ok(())
        });
        sleep(secs(1)).await?;
        // The consumer released the mutex while waiting.
        assert!(!m.is_locked());
        m.lock().await?.push(42);
        c.signal(());
        consumer.await
    })
    .unwrap();
    assert_eq!(log.lines(), ["1.000 consumed [42]"]);
}

#[test]
fn condition_waiter_canceled_while_waiting_leaves_the_queue() {
    sim(async {
        let c = Rc::new(Condition::<u32>::new());
        let c2 = c.clone();
        let w = spawn(async move { c2.wait().await });
        assert_eq!(c.waiters(), 1);
        w.cancel();
        assert_eq!(w.await, Err(Error::Canceled));
        assert_eq!(c.waiters(), 0);
        assert!(!c.signal(1));
        Ok(())
    })
    .unwrap();
}

#[test]
fn condition_waiter_started_by_each_handler_sees_every_signal_seed_003() {
    // Seed 003: to not miss values, register the next waiter as the first
    // step of handling one.
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let c = Rc::new(Condition::<u32>::new());
        let c2 = c.clone();
        let reader = spawn(async move {
            let mut next = c2.wait();
            loop {
                let v = next.await?;
                next = c2.wait();
                l.at(format!("handled {v}"));
                if v == 3 {
                    return Ok(());
                }
                sleep(ms(5)).await?;
            }
        });
        for v in 1..=3 {
            sleep(ms(10)).await?;
            assert!(c.signal(v));
        }
        reader.await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        ["0.010 handled 1", "0.020 handled 2", "0.030 handled 3"]
    );
}

// ---------------------------------------------------------------------------
// MVar

#[test]
fn mvar_put_into_an_empty_mvar_is_resolved_at_once_and_fills_it() {
    sim(async {
        let m = MVar::new_empty();
        assert!(m.is_empty());
        m.put(1).await?;
        assert!(!m.is_empty());
        assert_eq!(m.take().await?, 1);
        assert!(m.is_empty());
        Ok(())
    })
    .unwrap();
}

#[test]
fn mvar_created_full_is_taken_at_once() {
    let r = sim(async {
        let m = MVar::new("x");
        Ok((m.take_available(), m.take_available()))
    });
    assert_eq!(r, Ok((Some("x"), None)));
}

#[test]
fn mvar_put_blocks_while_full_and_resumes_fifo() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let m = Rc::new(MVar::new(0));
        let putters: Vec<_> = (1..=3)
            .map(|v| {
                let (m, l) = (m.clone(), l.clone());
                spawn(async move {
                    m.put(v).await?;
                    l.at(format!("put {v}"));
                    Ok(())
                })
            })
            .collect();
        for _ in 0..4 {
            sleep(secs(1)).await?;
            let v = m.take().await?;
            l.at(format!("took {v}"));
        }
        join(putters).await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        [
            "1.000 took 0",
            "1.000 put 1",
            "2.000 took 1",
            "2.000 put 2",
            "3.000 took 2",
            "3.000 put 3",
            "4.000 took 3",
        ]
    );
}

#[test]
fn mvar_take_blocks_while_empty_and_resumes_fifo() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let m = Rc::new(MVar::new_empty());
        let takers: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let (m, l) = (m.clone(), l.clone());
                spawn(async move {
                    let v: u32 = m.take().await?;
                    l.at(format!("{name} took {v}"));
                    Ok(())
                })
            })
            .collect();
        for v in 1..=3 {
            sleep(secs(1)).await?;
            m.put(v).await?;
        }
        join(takers).await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        ["1.000 a took 1", "2.000 b took 2", "3.000 c took 3"]
    );
}

#[test]
fn mvar_value_is_reserved_for_the_first_taker_until_it_runs() {
    sim(async {
        let m = Rc::new(MVar::new_empty());
        let m2 = m.clone();
        let taker = spawn(async move { m2.take().await });
        m.put(1).await?;
        // Reserved: full for putters, unavailable to others.
        assert!(!m.is_empty());
        assert_eq!(m.take_available(), None);
        let late = m.take();
        assert_eq!(taker.await, Ok(1));
        m.put(2).await?;
        assert_eq!(late.await, Ok(2));
        Ok(())
    })
    .unwrap();
}

#[test]
fn mvar_canceled_put_is_never_put() {
    let r = sim(async {
        let m = Rc::new(MVar::new(1));
        let m2 = m.clone();
        let putter = spawn(async move { m2.put(2).await });
        putter.cancel();
        assert_eq!(putter.await, Err(Error::Canceled));
        assert_eq!(m.take().await?, 1);
        Ok(m.take_available())
    });
    assert_eq!(r, Ok(None));
}

#[test]
fn mvar_canceled_take_leaves_the_queue() {
    let r = sim(async {
        let m = Rc::new(MVar::new_empty());
        let m2 = m.clone();
        let taker = spawn(async move { m2.take().await });
        taker.cancel();
        assert_eq!(taker.await, Err(Error::Canceled));
        m.put(5).await?;
        Ok(m.take_available())
    });
    assert_eq!(r, Ok(Some(5)));
}

#[test]
fn mvar_value_reserved_for_a_dropped_taker_goes_to_the_next_taker() {
    let r = sim(async {
        let m = MVar::new_empty();
        let first = m.take();
        let second = m.take();
        m.put("v").await?;
        drop(first);
        second.await
    });
    assert_eq!(r, Ok("v"));
}

#[test]
fn mvar_value_reserved_for_a_dropped_taker_stays_when_nobody_else_waits() {
    let r = sim(async {
        let m = MVar::new_empty();
        let first = m.take();
        m.put("v").await?;
        drop(first);
        Ok(m.take_available())
    });
    assert_eq!(r, Ok(Some("v")));
}

#[test]
fn mvar_put_does_not_run_the_taker_before_returning_seed_003() {
    // Seed 003's epilogue: with Lwt this prints "r" before "w".
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let m = Rc::new(MVar::new_empty());
        let (m2, l2) = (m.clone(), l.clone());
        let r = spawn(async move {
            m2.take().await?;
            l2.push("r");
            Ok(())
        });
        let put = m.put(());
        l.push("w");
        put.await?;
        r.await
    })
    .unwrap();
    assert_eq!(log.lines(), ["w", "r"]);
}

#[test]
fn mvar_slow_consumer_slows_the_producer_down_seed_003() {
    // Reader-driven: the producer can only run one value ahead.
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let m = Rc::new(MVar::new_empty());
        let (m2, l2) = (m.clone(), l.clone());
        let producer = spawn(async move {
            for v in 1..=3 {
                m2.put(v).await?;
                l2.at(format!("produced {v}"));
            }
            Ok(())
        });
        for _ in 1..=3 {
            let v = m.take().await?;
            l.at(format!("consuming {v}"));
            sleep(secs(1)).await?;
        }
        producer.await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        [
            "0.000 produced 1",
            "0.000 consuming 1",
            "0.000 produced 2",
            "1.000 consuming 2",
            "1.000 produced 3",
            "2.000 consuming 3",
        ]
    );
}

#[test]
fn mvar_pingpong_between_two_tasks_alternates() {
    let r = sim(async {
        let ping = Rc::new(MVar::new_empty());
        let pong = Rc::new(MVar::new_empty());
        let (ping2, pong2) = (ping.clone(), pong.clone());
        let echo = spawn(async move {
            for _ in 0..100 {
                let v: u32 = ping2.take().await?;
                pong2.put(v + 1).await?;
            }
            Ok(())
        });
        let mut sum = 0;
        for i in 0..100 {
            ping.put(i).await?;
            sum += pong.take().await?;
        }
        echo.await?;
        Ok(sum)
    });
    assert_eq!(r, Ok((1..=100).sum()));
}
