//! Streams (the Lwt manual 2.4.3, seed 003), on simulated time.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::{Log, ms, secs, sim};
use unikit_runtime::stream::{self, Closed, Empty, Stream};
use unikit_runtime::sync::Mutex;
use unikit_runtime::{Error, State, join, pause, sleep, spawn};

#[test]
fn stream_values_pushed_are_read_in_order_then_the_reader_waits() {
    // The manual: push 1, 2, 3; next gives Return 1, 2, 3, then Sleep.
    sim(async {
        let (mut s, push) = stream::create();
        for v in [1, 2, 3] {
            push.push(v).unwrap();
        }
        let reads = spawn(async move {
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(s.next().await?);
            }
            let fourth = s.next().await?;
            got.push(fourth);
            Ok(got)
        });
        pause().await?;
        assert_eq!(reads.state(), State::Pending);
        push.push(4).unwrap();
        assert_eq!(reads.await?, [1, 2, 3, 4]);
        Ok(())
    })
    .unwrap();
}

#[test]
fn stream_next_at_the_end_of_a_closed_drained_stream_fails_with_empty() {
    let r = sim(async {
        let mut s = Stream::of_list([1]);
        assert_eq!(s.next().await?, 1);
        Ok(s.next().await)
    });
    let err = r.unwrap().unwrap_err();
    assert_eq!(err.downcast_ref::<Empty>(), Some(&Empty));
}

#[test]
fn stream_get_at_the_end_resolves_with_none() {
    let r = sim(async {
        let mut s = Stream::of_list(["a"]);
        Ok((s.get().await?, s.get().await?, s.get().await?))
    });
    assert_eq!(r, Ok((Some("a"), None, None)));
}

#[test]
fn stream_clone_sees_every_value_from_the_clone_point() {
    // The manual: of_list [1; 2]; clone; s gives 1, 2; s' gives 1, 2.
    let r = sim(async {
        let mut s = Stream::of_list([1, 2]);
        let mut s2 = s.clone();
        let a = (s.next().await?, s.next().await?);
        let b = (s2.next().await?, s2.next().await?);
        Ok((a, b))
    });
    assert_eq!(r, Ok(((1, 2), (1, 2))));
}

#[test]
fn stream_clone_made_after_reads_starts_at_the_clone_point() {
    let r = sim(async {
        let (mut s, push) = stream::create();
        for v in 1..=3 {
            push.push(v).unwrap();
        }
        assert_eq!(s.next().await?, 1);
        let s2 = s.clone();
        push.push(4).unwrap();
        drop(push);
        Ok((s.to_vec().await?, s2.to_vec().await?))
    });
    assert_eq!(r, Ok((vec![2, 3, 4], vec![2, 3, 4])));
}

#[test]
fn stream_reader_waiting_for_a_push_resumes_when_it_arrives() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let (mut s, push) = stream::create();
        let reader = spawn(async move {
            while let Some(v) = s.get().await? {
                l.at(format!("got {v}"));
            }
            l.at("end");
            Ok(())
        });
        for v in 1..=2 {
            sleep(secs(1)).await?;
            push.push(v).unwrap();
        }
        sleep(secs(1)).await?;
        drop(push);
        reader.await
    })
    .unwrap();
    assert_eq!(log.lines(), ["1.000 got 1", "2.000 got 2", "3.000 end"]);
}

#[test]
fn stream_push_does_not_run_the_reader_before_returning_seed_003() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let (mut s, push) = stream::create();
        let l2 = l.clone();
        let reader = spawn(async move {
            s.next().await?;
            l2.push("read");
            Ok(())
        });
        push.push(()).unwrap();
        l.push("pushed");
        reader.await
    })
    .unwrap();
    assert_eq!(log.lines(), ["pushed", "read"]);
}

#[test]
fn stream_closes_when_the_last_pusher_is_dropped() {
    let r = sim(async {
        let (s, push) = stream::create();
        let push2 = push.clone();
        push.push(1).unwrap();
        drop(push);
        assert!(!s.is_closed());
        push2.push(2).unwrap();
        drop(push2);
        assert!(s.is_closed());
        s.to_vec().await
    });
    assert_eq!(r, Ok(vec![1, 2]));
}

#[test]
fn stream_push_after_close_fails_with_closed() {
    let (_s, push) = stream::create();
    push.close();
    assert_eq!(push.push(1), Err(Closed));
}

#[test]
fn stream_value_pushed_with_no_reader_is_dropped() {
    let value = Rc::new(());
    let (s, push) = stream::create();
    drop(s);
    push.push(value.clone()).unwrap();
    assert_eq!(Rc::strong_count(&value), 1);
}

#[test]
fn stream_from_calls_the_generator_only_when_a_value_is_needed() {
    let calls = Rc::new(Cell::new(0));
    let (c, seen) = (calls.clone(), calls.clone());
    let r = sim(async move {
        let mut s = Stream::from(move || {
            let n = c.get() + 1;
            c.set(n);
            async move { Ok((n <= 3).then_some(n)) }
        });
        assert_eq!(seen.get(), 0);
        let first = s.next().await?;
        Ok((first, s.to_vec().await?))
    });
    assert_eq!(r, Ok((1, vec![2, 3])));
    // Three values and the end: four calls, none ahead of need.
    assert_eq!(calls.get(), 4);
}

#[test]
fn stream_from_waits_for_a_generator_that_sleeps() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let n = Rc::new(Cell::new(0));
        let s = Stream::from(move || {
            let n = n.clone();
            async move {
                sleep(secs(1)).await?;
                n.set(n.get() + 1);
                Ok((n.get() <= 2).then_some(n.get()))
            }
        });
        s.iter(|v| l.at(format!("got {v}"))).await
    })
    .unwrap();
    assert_eq!(log.lines(), ["1.000 got 1", "2.000 got 2"]);
}

#[test]
fn stream_from_generator_failure_goes_to_the_reader_and_the_stream_goes_on() {
    let r = sim(async {
        let n = Rc::new(Cell::new(0));
        let mut s = Stream::from(move || {
            n.set(n.get() + 1);
            let v = n.get();
            async move {
                match v {
                    1 => Err(Error::msg("flaky")),
                    2 => Ok(Some(2)),
                    _ => Ok(None),
                }
            }
        });
        Ok((s.next().await, s.next().await, s.get().await))
    });
    assert_eq!(r, Ok((Err(Error::msg("flaky")), Ok(2), Ok(None))));
}

#[test]
fn stream_map_and_filter_transform_lazily_in_order() {
    let r = sim(async {
        let s = Stream::of_list(1..=6)
            .filter(|v| v % 2 == 0)
            .map(|v| v * 10);
        s.to_vec().await
    });
    assert_eq!(r, Ok(vec![20, 40, 60]));
}

#[test]
fn stream_map_follows_a_pushed_stream_as_values_arrive() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let (s, push) = stream::create();
        let upper = s.map(|w: &str| w.to_uppercase());
        let reader = spawn(upper.iter(move |w| l.at(w)));
        sleep(secs(1)).await?;
        push.push("this").unwrap();
        sleep(secs(1)).await?;
        push.push("that").unwrap();
        drop(push);
        reader.await
    })
    .unwrap();
    assert_eq!(log.lines(), ["1.000 THIS", "2.000 THAT"]);
}

#[test]
fn stream_clones_multiplex_every_value_to_each_traversal_seed_003() {
    // Seed 003's advice: one duplicate for logging, one for consuming.
    let logged = Log::default();
    let l = logged.clone();
    let r = sim(async move {
        let (s, push) = stream::create();
        let for_logging = s.clone();
        let logger = spawn(for_logging.iter(move |v: u32| l.push(format!("log {v}"))));
        let consumer = spawn(s.fold(0, |acc, v| acc + v));
        for v in 1..=3 {
            push.push(v).unwrap();
        }
        drop(push);
        logger.await?;
        consumer.await
    });
    assert_eq!(r, Ok(6));
    assert_eq!(logged.lines(), ["log 1", "log 2", "log 3"]);
}

#[test]
fn stream_readers_sharing_one_reader_get_each_value_once_seed_003() {
    // Seed 003: several reading loops on one stream get each value exactly
    // once; here they share the reader behind a mutex.
    let r = sim(async {
        let (s, push) = stream::create();
        let shared = Rc::new(Mutex::new(s));
        let loops: Vec<_> = (0..3)
            .map(|_| {
                let shared = shared.clone();
                spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        let v = shared.lock().await?.get().await?;
                        match v {
                            Some(v) => got.push(v),
                            None => return Ok(got),
                        }
                        sleep(ms(1)).await?;
                    }
                })
            })
            .collect();
        for v in 0..9 {
            push.push(v).unwrap();
        }
        drop(push);
        let mut all: Vec<u32> = unikit_runtime::all(loops).await?.concat();
        all.sort();
        Ok(all)
    });
    assert_eq!(r, Ok((0..9).collect()));
}

#[test]
fn stream_peek_returns_the_next_value_without_consuming_it() {
    let r = sim(async {
        let mut s = Stream::of_list([1, 2]);
        Ok((s.peek().await?, s.next().await?, s.peek().await?))
    });
    assert_eq!(r, Ok((Some(1), 1, Some(2))));
}

#[test]
fn stream_junk_discards_the_next_value() {
    let r = sim(async {
        let mut s = Stream::of_list([1, 2]);
        s.junk().await?;
        s.next().await
    });
    assert_eq!(r, Ok(2));
}

#[test]
fn stream_is_empty_waits_until_a_value_or_the_end_is_known() {
    let r = sim(async {
        let (mut s, push) = stream::create::<u32>();
        let check = spawn(async move {
            let before = s.is_empty().await?;
            s.junk().await?;
            let after = s.is_empty().await?;
            Ok((before, after))
        });
        sleep(secs(1)).await?;
        assert_eq!(check.state(), State::Pending);
        push.push(1).unwrap();
        sleep(secs(1)).await?;
        drop(push);
        check.await
    });
    assert_eq!(r, Ok((false, true)));
}

#[test]
fn stream_read_canceled_while_waiting_consumes_nothing() {
    let r = sim(async {
        let (s, push) = stream::create();
        let reader = Rc::new(Mutex::new(s));
        let r2 = reader.clone();
        let waiting = spawn(async move { r2.lock().await?.next().await });
        waiting.cancel();
        assert_eq!(waiting.await, Err(Error::Canceled));
        push.push(7).unwrap();
        reader.lock().await?.next().await
    });
    assert_eq!(r, Ok(7));
}

#[test]
fn stream_bounded_push_waits_while_full_back_pressure_seed_003() {
    // A fast producer and a slow consumer: with room for two values the
    // producer stays two values ahead.
    let log = Log::default();
    let (lp, lc) = (log.clone(), log.clone());
    sim(async move {
        let (s, push) = stream::create_bounded(2);
        let producer = spawn(async move {
            for v in 1..=5 {
                push.push(v).await?;
                lp.at(format!("pushed {v}"));
            }
            Ok(())
        });
        let consumer = spawn(s.iter_s(async move |v| {
            sleep(secs(1)).await?;
            lc.at(format!("consumed {v}"));
            Ok(())
        }));
        join([producer, consumer]).await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        [
            "0.000 pushed 1",
            "0.000 pushed 2",
            "0.000 pushed 3",
            "1.000 consumed 1",
            "1.000 pushed 4",
            "2.000 consumed 2",
            "2.000 pushed 5",
            "3.000 consumed 3",
            "4.000 consumed 4",
            "5.000 consumed 5",
        ]
    );
}

#[test]
fn stream_bounded_blocked_pushes_resume_in_fifo_order() {
    let r = sim(async {
        let (s, push) = stream::create_bounded(1);
        push.push(0).await?;
        let pushes: Vec<_> = (1..=3)
            .map(|v| {
                let push = push.clone();
                spawn(async move { push.push(v).await })
            })
            .collect();
        assert_eq!(push.blocked(), 3);
        drop(push);
        let values = spawn(s.to_vec());
        join(pushes).await?;
        values.await
    });
    assert_eq!(r, Ok(vec![0, 1, 2, 3]));
}

#[test]
fn stream_bounded_close_rejects_blocked_pushes() {
    let r = sim(async {
        let (s, push) = stream::create_bounded(1);
        push.push(1).await?;
        let blocked = push.push(2);
        push.close();
        let rejected = blocked.await;
        Ok((rejected, s.to_vec().await?))
    });
    let (rejected, values) = r.unwrap();
    assert_eq!(
        rejected.unwrap_err().downcast_ref::<Closed>(),
        Some(&Closed)
    );
    assert_eq!(values, [1]);
}

#[test]
fn stream_bounded_canceled_push_is_not_pushed() {
    let r = sim(async {
        let (s, push) = stream::create_bounded(1);
        push.push(1).await?;
        let push = Rc::new(push);
        let p2 = push.clone();
        let blocked = spawn(async move { p2.push(2).await });
        blocked.cancel();
        assert_eq!(blocked.await, Err(Error::Canceled));
        drop(push);
        s.to_vec().await
    });
    assert_eq!(r, Ok(vec![1]));
}

#[test]
fn stream_bounded_push_is_released_when_every_reader_is_gone() {
    let r = sim(async {
        let (s, push) = stream::create_bounded(1);
        push.push(1).await?;
        let blocked = push.push(2);
        drop(s);
        blocked.await
    });
    assert_eq!(r, Ok(()));
}

#[test]
fn stream_bounded_capacity_counts_what_the_slowest_clone_has_not_read() {
    sim(async {
        let (fast, push) = stream::create_bounded(2);
        let slow = fast.clone();
        let drained = spawn(fast.to_vec());
        push.push(1).await?;
        push.push(2).await?;
        // The fast reader took both, the slow one none: the buffer is full.
        pause().await?;
        let third = push.push(3);
        assert_eq!(push.blocked(), 1);
        drop(slow);
        third.await?;
        drop(push);
        assert_eq!(drained.await?, [1, 2, 3]);
        Ok(())
    })
    .unwrap();
}
