//! This runtime against its peers: Tokio's current-thread runtime and OCaml
//! Lwt 5, the same workloads side by side, in real time (issue 3's
//! "Benchmark").
//!
//! ```text
//! cargo bench -p unikit-runtime --bench lwt_peers [-- SCALE]
//! ```
//!
//! SCALE (default 1) multiplies every iteration count, for quick runs.
//! Each case runs [`ROUNDS`] times per runtime and keeps the fastest run.
//! The runtimes take turns: each round runs the case on this runtime, then
//! on Tokio, then on Lwt, before the next round, so that a slow spell of
//! this shared machine (the same binary varies by up to 2x from one second
//! to the next) falls on all three instead of on whichever ran then. The
//! Lwt program (`benches/lwt/lwt_peers.ml`) is built with `ocamlfind`
//! when it and the `lwt.unix` package are installed (Debian:
//! `apt-get install ocaml-nox ocaml-findlib liblwt-ocaml-dev`); otherwise
//! its column says it was skipped.
//!
//! Output: one section per runtime with `<case> <ns/op>` lines (wall-clock
//! time), then the ratios (peer ns/op divided by this runtime's: above 1
//! means faster here) against the issue's goals, then the same table in
//! CPU time, then the memory of `spawn_join`: bytes per task beyond its
//! future, counted by a global allocator, and the peak of live heap bytes.
//!
//! # Wall-clock and CPU time
//!
//! The goals are on wall-clock time. `timers` waits for its last deadline
//! (20 ms away) whatever the runtime, which puts a floor of 200 ns/op under
//! every runtime's wall-clock figure; the CPU time per op (user + system
//! time of the process from `getrusage`, read the same way by the OCaml
//! program through `Unix.times`) shows the work done around that wait.
//! Every run measures both; each figure is the best of its runs.
//!
//! # Checking a loop's result
//!
//! The loops check their sum with `assert!(acc == expected)`, not
//! `assert_eq!`: `assert_eq!` hands references to its operands to the
//! out-of-line panic path, and a reference to `acc` taken anywhere in a
//! future makes the compiler keep the future's variables in memory,
//! storing and reloading them around every `black_box` of the loop (in
//! every runtime's loop alike). The check is not the workload.
//!
//! Likewise `wait_wakeup` attaches its continuation by polling it once
//! and keeping only whether it is pending: handing the whole first poll's
//! result (a `Poll` of the continuation's output) out of the `poll_fn`
//! copied it through memory with a 16-byte load of 8-byte stores, a
//! store-forwarding stall that cost more than this runtime's work (its
//! output, a `Result<usize, Error>`, is returned through memory; Tokio's
//! time did not change).

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use unikit_runtime::sync::MVar;
use unikit_runtime::{
    Error, Promise, RealTime, pause, run, sleep, spawn, time, wait, with_timeout,
};

// ---------------------------------------------------------------------------
// Counting allocations (only while `COUNTING` is set: timed runs pay one
// relaxed load per allocation)

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is `GlobalAlloc::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is `GlobalAlloc::dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Starts counting from zero.
fn count_from_zero() {
    LIVE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    ALLOCATED.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
}

fn stop_counting() {
    COUNTING.store(false, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------
// The cases

const CASES: [(&str, usize); 7] = [
    ("bind_ready", 10_000_000),
    ("wait_wakeup", 5_000_000),
    ("pingpong", 1_000_000),
    ("spawn_join", 1_000_000),
    ("pause_loop", 1_000_000),
    ("timers", 100_000),
    ("pick_timeout", 200_000),
];

/// The deadline of the `i`th sleep of `timers`: (i mod 1000) * 20 µs.
fn timer_delay(i: usize) -> Duration {
    Duration::from_micros((i % 1000) as u64 * 20)
}

/// The wall-clock and CPU time of one run.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// The user + system time of the process so far (`getrusage`, as OCaml's
/// `Unix.times`).
fn cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value (integers only).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`; RUSAGE_SELF is valid.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(status, 0, "getrusage failed");
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Times `f` in wall-clock and CPU time.
fn measure(f: impl FnOnce()) -> Sample {
    let (wall, cpu) = (Instant::now(), cpu_time());
    f();
    Sample {
        wall: wall.elapsed(),
        cpu: cpu_time() - cpu,
    }
}

/// Runs `main` on this runtime in real time.
fn on_unikit<F: Future<Output = Result<(), Error>> + 'static>(main: F) -> Sample {
    measure(|| run(RealTime::new(0), main).expect("the workload succeeds"))
}

fn unikit_case(case: &str, n: usize) -> Sample {
    match case {
        "bind_ready" => on_unikit(async move {
            let mut acc = 0usize;
            for i in 0..n {
                acc += Promise::fulfilled(black_box(i)).await?;
            }
            assert!(acc == n * (n - 1) / 2, "the sum of the awaited values");
            Ok(())
        }),
        "wait_wakeup" => on_unikit(async move {
            let mut acc = 0usize;
            for i in 0..n {
                let (promise, resolver) = wait::<usize>();
                let mut continuation = pin!(async move { Ok::<_, Error>(promise.await? + 1) });
                let attached = std::future::poll_fn(|cx| {
                    Poll::Ready(continuation.as_mut().poll(cx).is_pending())
                });
                assert!(attached.await, "the continuation waits");
                resolver.fulfil(i);
                acc += continuation.await?;
            }
            assert!(
                acc == n * (n + 1) / 2,
                "the sum of the continuations' values"
            );
            Ok(())
        }),
        "pingpong" => on_unikit(async move {
            let ping = Rc::new(MVar::new_empty());
            let pong = Rc::new(MVar::new_empty());
            let (ping2, pong2) = (ping.clone(), pong.clone());
            let echo = spawn(async move {
                for _ in 0..n {
                    let v: usize = ping2.take().await?;
                    pong2.put(v + 1).await?;
                }
                Ok(())
            });
            for i in 0..n {
                ping.put(i).await?;
                assert_eq!(pong.take().await?, i + 1);
            }
            echo.await
        }),
        "spawn_join" => on_unikit(async move {
            let tasks: Vec<_> = (0..n).map(|_| spawn(task_that_pauses())).collect();
            for task in tasks {
                task.await?;
            }
            Ok(())
        }),
        "pause_loop" => on_unikit(async move {
            for _ in 0..n {
                pause().await?;
            }
            Ok(())
        }),
        "timers" => on_unikit(async move {
            let tasks: Vec<_> = (0..n).map(|i| spawn(sleep(timer_delay(i)))).collect();
            for task in tasks {
                task.await?;
            }
            Ok(())
        }),
        "pick_timeout" => on_unikit(async move {
            for _ in 0..n {
                with_timeout(Duration::from_secs(10), pause()).await?;
            }
            assert_eq!(time::pending_timers(), 0, "losing timers are freed");
            Ok(())
        }),
        _ => unreachable!("unknown case {case}"),
    }
}

async fn task_that_pauses() -> Result<(), Error> {
    pause().await
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a Tokio runtime")
}

fn on_tokio<F: Future<Output = ()>>(main: F) -> Sample {
    let rt = tokio_runtime();
    measure(|| rt.block_on(main))
}

fn tokio_case(case: &str, n: usize) -> Sample {
    use tokio::sync::{mpsc, oneshot};
    use tokio::task::yield_now;
    match case {
        "bind_ready" => on_tokio(async move {
            let mut acc = 0usize;
            for i in 0..n {
                acc += std::future::ready(black_box(i)).await;
            }
            assert!(acc == n * (n - 1) / 2, "the sum of the awaited values");
        }),
        "wait_wakeup" => on_tokio(async move {
            let mut acc = 0usize;
            for i in 0..n {
                let (resolver, promise) = oneshot::channel::<usize>();
                let mut continuation = pin!(async move { promise.await.expect("sent") + 1 });
                let attached = std::future::poll_fn(|cx| {
                    Poll::Ready(continuation.as_mut().poll(cx).is_pending())
                });
                assert!(attached.await, "the continuation waits");
                resolver.send(i).expect("received");
                acc += continuation.await;
            }
            assert!(
                acc == n * (n + 1) / 2,
                "the sum of the continuations' values"
            );
        }),
        "pingpong" => on_tokio(async move {
            // Tokio has no MVar; a channel of capacity one is the closest.
            let (ping_tx, mut ping_rx) = mpsc::channel::<usize>(1);
            let (pong_tx, mut pong_rx) = mpsc::channel::<usize>(1);
            let echo = tokio::spawn(async move {
                for _ in 0..n {
                    let v = ping_rx.recv().await.expect("open");
                    pong_tx.send(v + 1).await.expect("open");
                }
            });
            for i in 0..n {
                ping_tx.send(i).await.expect("open");
                assert_eq!(pong_rx.recv().await, Some(i + 1));
            }
            echo.await.expect("echo finishes");
        }),
        "spawn_join" => on_tokio(async move {
            let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(yield_now())).collect();
            for task in tasks {
                task.await.expect("joined");
            }
        }),
        "pause_loop" => on_tokio(async move {
            for _ in 0..n {
                yield_now().await;
            }
        }),
        "timers" => on_tokio(async move {
            let tasks: Vec<_> = (0..n)
                .map(|i| tokio::spawn(tokio::time::sleep(timer_delay(i))))
                .collect();
            for task in tasks {
                task.await.expect("joined");
            }
        }),
        "pick_timeout" => on_tokio(async move {
            for _ in 0..n {
                tokio::time::timeout(Duration::from_secs(10), yield_now())
                    .await
                    .expect("the pause wins");
            }
        }),
        _ => unreachable!("unknown case {case}"),
    }
}

/// A case's figures: wall-clock and CPU ns/op.
#[derive(Clone, Copy)]
struct NsPerOp {
    wall: f64,
    cpu: f64,
}

/// How many times each case runs on each runtime.
const ROUNDS: usize = 9;

impl NsPerOp {
    const UNMEASURED: NsPerOp = NsPerOp {
        wall: f64::INFINITY,
        cpu: f64::INFINITY,
    };

    fn of(sample: Sample, n: usize) -> NsPerOp {
        let per_op = |d: Duration| d.as_nanos() as f64 / n as f64;
        NsPerOp {
            wall: per_op(sample.wall),
            cpu: per_op(sample.cpu),
        }
    }

    /// The better figure of each clock.
    fn best(self, other: NsPerOp) -> NsPerOp {
        NsPerOp {
            wall: self.wall.min(other.wall),
            cpu: self.cpu.min(other.cpu),
        }
    }
}

// ---------------------------------------------------------------------------
// Memory of spawn_join

struct Memory {
    bytes_per_task: f64,
    peak_bytes: usize,
}

/// Spawns `n` tasks that pause once and joins them, counting allocations
/// (the vector of handles is allocated before counting starts).
fn unikit_memory(n: usize) -> Memory {
    let future_size = std::mem::size_of_val(&task_that_pauses());
    run(RealTime::new(0), async move {
        let mut tasks = Vec::with_capacity(n);
        count_from_zero();
        tasks.extend((0..n).map(|_| spawn(task_that_pauses())));
        let spawned = ALLOCATED.load(Ordering::Relaxed);
        for task in tasks {
            task.await?;
        }
        stop_counting();
        Ok(spawned)
    })
    .map(|spawned| Memory {
        bytes_per_task: spawned as f64 / n as f64 - future_size as f64,
        peak_bytes: PEAK.load(Ordering::Relaxed),
    })
    .expect("the workload succeeds")
}

/// As [`unikit_memory`], on Tokio.
fn tokio_memory(n: usize) -> Memory {
    let future_size = std::mem::size_of_val(&tokio::task::yield_now());
    let rt = tokio_runtime();
    let spawned = rt.block_on(async move {
        let mut tasks = Vec::with_capacity(n);
        count_from_zero();
        tasks.extend((0..n).map(|_| tokio::spawn(tokio::task::yield_now())));
        let spawned = ALLOCATED.load(Ordering::Relaxed);
        for task in tasks {
            task.await.expect("joined");
        }
        stop_counting();
        spawned
    });
    Memory {
        bytes_per_task: spawned as f64 / n as f64 - future_size as f64,
        peak_bytes: PEAK.load(Ordering::Relaxed),
    }
}

// ---------------------------------------------------------------------------
// The Lwt peer

/// Builds the OCaml program; `Err` says why Lwt is skipped.
fn build_lwt() -> Result<PathBuf, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/lwt/lwt_peers.ml");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lwt_peers");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::copy(&source, dir.join("lwt_peers.ml"))
        .map_err(|e| format!("cannot copy {}: {e}", source.display()))?;
    let built = Command::new("ocamlfind")
        .current_dir(&dir)
        .args([
            "ocamlopt", "-O3", "-thread", "-package", "lwt.unix", "-linkpkg",
        ])
        .args(["lwt_peers.ml", "-o", "lwt_peers"])
        .output()
        .map_err(|e| format!("ocamlfind not found ({e})"))?;
    if !built.status.success() {
        return Err(format!(
            "ocamlfind could not build it (is liblwt-ocaml-dev installed?): {}",
            String::from_utf8_lossy(&built.stderr).trim()
        ));
    }
    Ok(dir.join("lwt_peers"))
}

/// Runs one case (or `memory`) of the OCaml program; returns the
/// `<name> <value>` lines it printed: `<case>` wall-clock and `<case>_cpu`
/// CPU ns/op, or the memory lines.
fn run_lwt(program: &Path, scale: f64, case: &str) -> Result<Vec<(String, f64)>, String> {
    let out = Command::new(program)
        .args([&scale.to_string(), case])
        .output()
        .map_err(|e| format!("cannot run the Lwt program: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the Lwt program failed on {case}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(' ')?;
            Some((name.to_string(), value.trim().parse().unwrap_or(f64::NAN)))
        })
        .collect())
}

/// The value of the `name` line the OCaml program printed.
fn printed(lines: &[(String, f64)], name: &str) -> Result<f64, String> {
    lines
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("the Lwt program printed no {name} line"))
}

/// A case's figures on Lwt, from one run of the OCaml program.
fn lwt_case(program: &Path, scale: f64, case: &str) -> Result<NsPerOp, String> {
    let lines = run_lwt(program, scale, case)?;
    let value = |name: &str| printed(&lines, name);
    Ok(NsPerOp {
        wall: value(case)?,
        cpu: value(&format!("{case}_cpu"))?,
    })
}

/// The memory of Lwt's `spawn_join`.
fn lwt_memory(program: &Path, scale: f64) -> Result<Memory, String> {
    let lines = run_lwt(program, scale, "memory")?;
    let value = |name: &str| printed(&lines, name);
    Ok(Memory {
        bytes_per_task: value("spawn_join_bytes_per_task")?,
        peak_bytes: value("spawn_join_peak_bytes")? as usize,
    })
}

// ---------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; the first other argument is the scale.
    let scale: f64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("SCALE is a number"))
        .unwrap_or(1.0);
    let count = |n: usize| ((n as f64 * scale) as usize).max(1);

    let mut lwt = build_lwt();
    let mut ours = Vec::new();
    let mut tokio = Vec::new();
    let mut lwt_figures = Vec::new();
    for (case, n) in CASES {
        let n = count(n);
        eprintln!("measuring {case}: {ROUNDS} rounds of unikit, tokio, lwt");
        let (mut best_ours, mut best_tokio, mut best_lwt) = (
            NsPerOp::UNMEASURED,
            NsPerOp::UNMEASURED,
            NsPerOp::UNMEASURED,
        );
        for _ in 0..ROUNDS {
            best_ours = best_ours.best(NsPerOp::of(unikit_case(case, n), n));
            best_tokio = best_tokio.best(NsPerOp::of(tokio_case(case, n), n));
            if let Ok(program) = &lwt {
                match lwt_case(program, scale, case) {
                    Ok(ns) => best_lwt = best_lwt.best(ns),
                    Err(why) => lwt = Err(why),
                }
            }
        }
        ours.push(best_ours);
        tokio.push(best_tokio);
        lwt_figures.push(best_lwt);
    }

    for (title, figures) in [
        ("unikit-runtime (RealTime)", &ours),
        ("tokio 1.54.1 current_thread", &tokio),
    ] {
        println!("# {title}, wall-clock ns/op, best of {ROUNDS}");
        for ((case, _), ns) in CASES.iter().zip(figures) {
            println!("{case} {:.2}", ns.wall);
        }
    }
    match &lwt {
        Ok(_) => {
            println!("# lwt (OCaml, lwt.unix), wall-clock ns/op, best of {ROUNDS}");
            for ((case, _), ns) in CASES.iter().zip(&lwt_figures) {
                println!("{case} {:.2}", ns.wall);
            }
        }
        Err(why) => println!("# lwt: skipped: {why}"),
    }
    let lwt_ns = |i: usize| lwt.as_ref().ok().map(|_| lwt_figures[i]);

    for (clock, title, pick) in [
        (
            "wall",
            "# ratios: peer ns/op / unikit ns/op (above 1: unikit is faster), wall-clock time",
            (|ns: NsPerOp| ns.wall) as fn(NsPerOp) -> f64,
        ),
        (
            "cpu",
            "# the same in CPU time (user + system, getrusage), ns/op",
            |ns: NsPerOp| ns.cpu,
        ),
    ] {
        println!("{title}");
        println!(
            "{:<13} {:>10} {:>10} {:>10} {:>8} {:>8}  goal ({clock})",
            "case", "unikit", "tokio", "lwt", "x tokio", "x lwt"
        );
        for (i, (case, _)) in CASES.iter().enumerate() {
            let (ours, tokio) = (pick(ours[i]), pick(tokio[i]));
            let lwt = lwt_ns(i).map(pick);
            let best_peer = lwt.map_or(tokio, |l| l.min(tokio));
            let (goal, met) = if *case == "bind_ready" {
                ("match tokio", ours <= tokio * 1.05)
            } else {
                (">= 3x best peer", best_peer / ours >= 3.0)
            };
            println!(
                "{:<13} {:>10.2} {:>10.2} {:>10} {:>8.2} {:>8}  {goal}: {}",
                case,
                ours,
                tokio,
                lwt.map_or("-".into(), |l| format!("{l:.2}")),
                tokio / ours,
                lwt.map_or("-".into(), |l| format!("{:.2}", l / ours)),
                if met { "met" } else { "MISSED" },
            );
        }
    }

    let n = count(1_000_000);
    println!("# spawn_join memory ({n} tasks)");
    let print = |who: &str, m: &Memory| {
        println!(
            "{who:<7} bytes_per_task_beyond_future {:.1}  peak_bytes {} ({:.1} MB)",
            m.bytes_per_task,
            m.peak_bytes,
            m.peak_bytes as f64 / 1e6
        );
    };
    let ours = unikit_memory(n);
    print("unikit", &ours);
    print("tokio", &tokio_memory(n));
    match lwt.and_then(|program| lwt_memory(&program, scale)) {
        Ok(m) => print("lwt", &m),
        Err(why) => println!("lwt     skipped: {why}"),
    }
    println!(
        "goal: at most 64 bytes per task beyond the future: {}",
        if ours.bytes_per_task <= 64.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}
