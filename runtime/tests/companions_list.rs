//! List helpers (Lwt_list, the manual 2.4.2), on simulated time: `_s`
//! runs one call after another, `_p` starts all calls at once.

mod common;

use common::{Log, ms, sim};
use unikit_runtime::list::{
    exists_s, filter_p, filter_s, fold_left_s, for_all_s, iter_p, iter_s, map_p, map_s,
};
use unikit_runtime::{Error, sleep, time};

/// Sleeps `n` × 100 ms, then logs.
async fn slow(log: &Log, n: u64) -> Result<u64, Error> {
    sleep(ms(100 * n)).await?;
    log.at(format!("done {n}"));
    Ok(n)
}

#[test]
fn list_iter_s_waits_for_each_call_before_the_next() {
    let log = Log::default();
    let l = log.clone();
    sim(async move { iter_s([3, 1], async |n| slow(&l, n).await.map(drop)).await }).unwrap();
    assert_eq!(log.lines(), ["0.300 done 3", "0.400 done 1"]);
}

#[test]
fn list_iter_p_starts_every_call_at_once() {
    let log = Log::default();
    let l = log.clone();
    sim(async move { iter_p([3, 1], async |n| slow(&l, n).await.map(drop)).await }).unwrap();
    assert_eq!(log.lines(), ["0.100 done 1", "0.300 done 3"]);
}

#[test]
fn list_map_s_returns_results_in_order_after_the_sum_of_the_delays() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move {
        let v = map_s([2, 1], async |n| Ok(slow(&l, n).await? * 10)).await?;
        Ok((v, time::now().since_epoch()))
    });
    assert_eq!(r, Ok((vec![20, 10], ms(300))));
}

#[test]
fn list_map_p_returns_results_in_order_after_the_longest_delay() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move {
        let v = map_p([2, 1], async |n| Ok(slow(&l, n).await? * 10)).await?;
        Ok((v, time::now().since_epoch()))
    });
    assert_eq!(r, Ok((vec![20, 10], ms(200))));
}

#[test]
fn list_filter_s_keeps_items_in_order_testing_one_after_another() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move {
        let v = filter_s([1, 2, 3, 4], async |n: &u64| {
            Ok(slow(&l, *n).await? % 2 == 0)
        })
        .await?;
        Ok((v, time::now().since_epoch()))
    });
    assert_eq!(r, Ok((vec![2, 4], ms(1000))));
}

#[test]
fn list_filter_p_keeps_items_in_order_testing_all_at_once() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move {
        let v = filter_p([4, 3, 2, 1], async |n: &u64| {
            Ok(slow(&l, *n).await? % 2 == 0)
        })
        .await?;
        Ok((v, time::now().since_epoch()))
    });
    assert_eq!(r, Ok((vec![4, 2], ms(400))));
}

#[test]
fn list_fold_left_s_threads_the_accumulator_in_order() {
    let r = sim(async {
        fold_left_s(["a", "b", "c"], String::new(), async |mut acc, s| {
            sleep(ms(1)).await?;
            acc.push_str(s);
            Ok(acc)
        })
        .await
    });
    assert_eq!(r, Ok("abc".to_string()));
}

#[test]
fn list_for_all_s_stops_at_the_first_false() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move { for_all_s([1, 2, 3], async |n| Ok(slow(&l, n).await? < 2)).await });
    assert_eq!(r, Ok(false));
    assert_eq!(log.lines(), ["0.100 done 1", "0.300 done 2"]);
}

#[test]
fn list_exists_s_stops_at_the_first_true() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move { exists_s([1, 2, 3], async |n| Ok(slow(&l, n).await? == 2)).await });
    assert_eq!(r, Ok(true));
    assert_eq!(log.lines(), ["0.100 done 1", "0.300 done 2"]);
}

#[test]
fn list_sequential_traversal_stops_at_the_first_rejection() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move {
        iter_s([1, 2, 3], async |n| {
            l.push(format!("call {n}"));
            if n == 2 {
                Err(Error::msg("two"))
            } else {
                Ok(())
            }
        })
        .await
    });
    assert_eq!(r, Err(Error::msg("two")));
    assert_eq!(log.lines(), ["call 1", "call 2"]);
}

#[test]
fn list_parallel_traversal_waits_for_all_then_fails_with_the_first_rejection() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move {
        map_p([3, 1, 2], async |n| {
            let v = slow(&l, n).await?;
            if v < 3 {
                Err(Error::msg(format!("failed {v}")))
            } else {
                Ok(v)
            }
        })
        .await
    });
    assert_eq!(r, Err(Error::msg("failed 1")));
    assert_eq!(
        log.lines(),
        ["0.100 done 1", "0.200 done 2", "0.300 done 3"]
    );
}
