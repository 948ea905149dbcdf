//! The MirageOS Lwt tutorial's programs (seeds 000 and 002) on simulated
//! time, with their exact timings.

mod common;

use common::{Log, ms, secs};
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;
use unikit_runtime::random::random_below;
use unikit_runtime::{Error, Promise, Runtime, Simulated, State, join, pick, sleep, spawn};

fn run_seeded(seed: u64, main: impl Future<Output = Result<(), Error>> + 'static) {
    Runtime::new(Simulated::new(seed)).run(main).unwrap();
}

/// heads1: two threads sleep 1 s and 2 s, print Heads and Tails; then
/// Finished.
async fn heads1(log: Log) -> Result<(), Error> {
    let heads = log.clone();
    let tails = log.clone();
    join([
        spawn(async move {
            sleep(secs(1)).await?;
            heads.at("Heads");
            Ok(())
        }),
        spawn(async move {
            sleep(secs(2)).await?;
            tails.at("Tails");
            Ok(())
        }),
    ])
    .await?;
    log.at("Finished");
    Ok(())
}

#[test]
fn heads1_prints_heads_at_1s_tails_at_2s_then_finished() {
    let log = Log::default();
    run_seeded(0, heads1(log.clone()));
    assert_eq!(
        log.lines(),
        ["1.000 Heads", "2.000 Tails", "2.000 Finished"]
    );
}

/// The tutorial's dummy input generator: sleeps 0-2499 ms, then returns a
/// line of 0-19 'a'.
async fn read_line() -> Result<String, Error> {
    sleep(ms(random_below(2500))).await?;
    Ok("a".repeat(random_below(20) as usize))
}

/// echo_server: echoes 10 lines from the generator, then stops.
async fn echo_server(log: Log, n: usize) -> Result<(), Error> {
    for _ in 0..n {
        let line = read_line().await?;
        log.at(line);
    }
    Ok(())
}

fn echo_lines(seed: u64) -> Vec<String> {
    let log = Log::default();
    run_seeded(seed, echo_server(log.clone(), 10));
    log.lines()
}

#[test]
fn echo_server_echoes_ten_generated_lines_at_their_times() {
    let lines = echo_lines(1);
    assert_eq!(
        lines,
        [
            "1.416 aaaaaaaaaaaaaa",
            "3.843 aaaaaaaa",
            "4.953 aaaaaaaaaaaaaaa",
            "7.146 aaaaaaaaaa",
            "7.859 aaaaaaaaaaaaaaa",
            "8.869 aaaaaaaaaaaa",
            "10.006 aaaaaaaaaa",
            "11.095 aaa",
            "12.708 aaaaaaaaaaaaaaaa",
            "14.412 aaaaaaaaaaaaaaaaa",
        ]
    );
}

#[test]
fn echo_server_lines_follow_the_generator_contract() {
    for seed in 0..20 {
        let lines = echo_lines(seed);
        assert_eq!(lines.len(), 10);
        let mut previous = Duration::ZERO;
        for line in &lines {
            let (time, text) = line.split_once(' ').unwrap();
            let (s, ms) = time.split_once('.').unwrap();
            let t = Duration::from_secs(s.parse().unwrap())
                + Duration::from_millis(ms.parse().unwrap());
            assert!(t - previous < Duration::from_millis(2500), "{line}");
            assert!(text.len() < 20 && text.chars().all(|c| c == 'a'), "{line}");
            previous = t;
        }
        assert_eq!(lines, echo_lines(seed), "seed {seed} is not reproducible");
    }
}

/// The thread the timeout programs race: sleeps 0-2999 ms, then "Heads".
/// Returns it with its delay.
fn heads_after_random_delay() -> (Promise<&'static str>, Duration) {
    let delay = ms(random_below(3000));
    (
        spawn(async move {
            sleep(delay).await?;
            Ok("Heads")
        }),
        delay,
    )
}

fn report(log: &Log, result: Option<&str>) {
    match result {
        None => log.at("Cancelled"),
        Some(v) => log.at(format!("Returned {v:?}")),
    }
}

/// timeout1's solution: sleep, then look at the promise's state.
async fn timeout1<T: 'static>(delay: Duration, t: Promise<T>) -> Result<Option<T>, Error> {
    sleep(delay).await?;
    match t.state() {
        State::Pending => {
            t.cancel();
            Ok(None)
        }
        State::Fulfilled(_) | State::Rejected(_) => t.await.map(Some),
    }
}

/// A timeout function of the tutorial.
type TimeoutFn = fn(
    Duration,
    Promise<&'static str>,
) -> Pin<Box<dyn Future<Output = Result<Option<&'static str>, Error>>>>;

/// Runs the tutorial's timeout program with `timeout` and `seed`: the
/// thread against a 2 s timeout, then waits until no timer is left. Returns
/// the log and the thread's delay.
fn timeout_program(timeout: TimeoutFn, seed: u64) -> (Vec<String>, Duration) {
    let log = Log::default();
    let l = log.clone();
    let delay = Rc::new(Cell::new(Duration::ZERO));
    let d = delay.clone();
    run_seeded(seed, async move {
        let (t, delay) = heads_after_random_delay();
        d.set(delay);
        report(&l, timeout(secs(2), t).await?);
        // A canceled thread's timer is freed once the cancellation has
        // travelled down to it (one task per round), before time moves on.
        while unikit_runtime::time::pending_timers() > 0 {
            unikit_runtime::pause().await?;
        }
        l.at("no timer left");
        Ok(())
    });
    (log.lines(), delay.get())
}

fn timeout1_run(seed: u64) -> (Vec<String>, Duration) {
    timeout_program(|d, t| Box::pin(timeout1(d, t)), seed)
}

fn timeout2_run(seed: u64) -> (Vec<String>, Duration) {
    timeout_program(|d, t| Box::pin(timeout2(d, t)), seed)
}

/// The first seed whose thread delay satisfies `f`.
fn seed_where(run: fn(u64) -> (Vec<String>, Duration), f: impl Fn(Duration) -> bool) -> u64 {
    (0..100)
        .find(|&s| f(run(s).1))
        .expect("a seed for this outcome")
}

#[test]
fn timeout1_returns_the_value_at_the_timeout_when_in_time() {
    let seed = seed_where(timeout1_run, |d| d < secs(2));
    assert_eq!(
        timeout1_run(seed).0,
        ["2.000 Returned \"Heads\"", "2.000 no timer left"]
    );
}

#[test]
fn timeout1_cancels_the_late_thread_at_the_timeout() {
    let seed = seed_where(timeout1_run, |d| d >= secs(2));
    assert_eq!(
        timeout1_run(seed).0,
        ["2.000 Cancelled", "2.000 no timer left"]
    );
}

/// timeout2's solution: pick between the timeout and the thread.
async fn timeout2<T: 'static>(delay: Duration, t: Promise<T>) -> Result<Option<T>, Error> {
    pick([
        spawn(async move {
            sleep(delay).await?;
            Ok(None)
        }),
        spawn(async move { Ok(Some(t.await?)) }),
    ])
    .await
}

#[test]
fn timeout2_returns_the_value_as_soon_as_it_is_there() {
    let seed = seed_where(timeout2_run, |d| d < secs(2));
    let (lines, delay) = timeout2_run(seed);
    let at = format!("{}.{:03}", delay.as_secs(), delay.subsec_millis());
    assert_eq!(
        lines,
        [
            format!("{at} Returned \"Heads\""),
            format!("{at} no timer left")
        ]
    );
}

#[test]
fn timeout2_cancels_the_late_thread_at_the_timeout() {
    let seed = seed_where(timeout2_run, |d| d >= secs(2));
    assert_eq!(
        timeout2_run(seed).0,
        ["2.000 Cancelled", "2.000 no timer left"]
    );
}
