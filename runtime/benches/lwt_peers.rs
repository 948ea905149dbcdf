//! This runtime against its peers: Tokio's current-thread runtime and OCaml
//! Lwt 5, the same workloads side by side, in real time (issue 3's
//! "Benchmark").
//!
//! ```text
//! cargo bench -p unikit-runtime --bench lwt_peers [-- SCALE]
//! ```
//!
//! SCALE (default 1) multiplies every iteration count, for quick runs.
//! Each case runs three times per runtime and keeps the fastest run. The
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
//! Every run measures both; each figure is the best of its three runs.

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
            assert_eq!(acc, n * (n - 1) / 2);
            Ok(())
        }),
        "wait_wakeup" => on_unikit(async move {
            let mut acc = 0usize;
            for i in 0..n {
                let (promise, resolver) = wait::<usize>();
                let mut continuation = pin!(async move { Ok::<_, Error>(promise.await? + 1) });
                let first = std::future::poll_fn(|cx| Poll::Ready(continuation.as_mut().poll(cx)));
                assert!(first.await.is_pending());
                resolver.fulfil(i);
                acc += continuation.await?;
            }
            assert_eq!(acc, n * (n + 1) / 2);
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
            assert_eq!(acc, n * (n - 1) / 2);
        }),
        "wait_wakeup" => on_tokio(async move {
            let mut acc = 0usize;
            for i in 0..n {
                let (resolver, promise) = oneshot::channel::<usize>();
                let mut continuation = pin!(async move { promise.await.expect("sent") + 1 });
                let first = std::future::poll_fn(|cx| Poll::Ready(continuation.as_mut().poll(cx)));
                assert!(first.await.is_pending());
                resolver.send(i).expect("received");
                acc += continuation.await;
            }
            assert_eq!(acc, n * (n + 1) / 2);
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

/// The fastest of three runs, in ns/op, for each clock.
fn best_of_three(n: usize, mut f: impl FnMut() -> Sample) -> NsPerOp {
    let per_op = |d: Duration| d.as_nanos() as f64 / n as f64;
    (0..3).map(|_| f()).fold(
        NsPerOp {
            wall: f64::INFINITY,
            cpu: f64::INFINITY,
        },
        |best, s| NsPerOp {
            wall: best.wall.min(per_op(s.wall)),
            cpu: best.cpu.min(per_op(s.cpu)),
        },
    )
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

/// What the Lwt program printed: ns/op per case (`<case>` lines wall-clock,
/// `<case>_cpu` lines CPU time), and its memory lines.
struct LwtResults {
    ns_per_op: Vec<(String, NsPerOp)>,
    memory: Option<Memory>,
}

/// Builds and runs the OCaml program three times; `Err` says why it was
/// skipped.
fn lwt(scale: f64) -> Result<LwtResults, String> {
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
    let mut results = LwtResults {
        ns_per_op: Vec::new(),
        memory: None,
    };
    for _ in 0..3 {
        let out = Command::new(dir.join("lwt_peers"))
            .arg(scale.to_string())
            .output()
            .map_err(|e| format!("cannot run the Lwt program: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "the Lwt program failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let mut peak_bytes = 0;
        let mut bytes_per_task = 0.0;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some((name, value)) = line.split_once(' ') else {
                continue;
            };
            let value: f64 = value.trim().parse().unwrap_or(f64::NAN);
            match name {
                "spawn_join_peak_bytes" => peak_bytes = value as usize,
                "spawn_join_bytes_per_task" => bytes_per_task = value,
                _ => {
                    let (case, cpu) = match name.strip_suffix("_cpu") {
                        Some(case) => (case, true),
                        None => (name, false),
                    };
                    let index = match results.ns_per_op.iter().position(|(c, _)| c == case) {
                        Some(index) => index,
                        None => {
                            let unmeasured = NsPerOp {
                                wall: f64::INFINITY,
                                cpu: f64::INFINITY,
                            };
                            results.ns_per_op.push((case.to_string(), unmeasured));
                            results.ns_per_op.len() - 1
                        }
                    };
                    let best = &mut results.ns_per_op[index].1;
                    if cpu {
                        best.cpu = best.cpu.min(value);
                    } else {
                        best.wall = best.wall.min(value);
                    }
                }
            }
        }
        results.memory = Some(Memory {
            bytes_per_task,
            peak_bytes,
        });
    }
    Ok(results)
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

    println!("# unikit-runtime (RealTime), wall-clock ns/op, best of 3");
    let mut ours = Vec::new();
    for (case, n) in CASES {
        let n = count(n);
        let ns = best_of_three(n, || unikit_case(case, n));
        println!("{case} {:.2}", ns.wall);
        ours.push(ns);
    }

    println!("# tokio 1.54.1 current_thread, wall-clock ns/op, best of 3");
    let mut tokio = Vec::new();
    for (case, n) in CASES {
        let n = count(n);
        let ns = best_of_three(n, || tokio_case(case, n));
        println!("{case} {:.2}", ns.wall);
        tokio.push(ns);
    }

    let lwt = lwt(scale);
    match &lwt {
        Ok(results) => {
            println!("# lwt (OCaml, lwt.unix), wall-clock ns/op, best of 3");
            for (case, ns) in &results.ns_per_op {
                println!("{case} {:.2}", ns.wall);
            }
        }
        Err(why) => println!("# lwt: skipped: {why}"),
    }
    let lwt_ns = |case: &str| {
        lwt.as_ref()
            .ok()
            .and_then(|r| r.ns_per_op.iter().find(|(c, _)| c == case))
            .map(|(_, ns)| *ns)
    };

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
            let lwt = lwt_ns(case).map(pick);
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
    match lwt.as_ref().ok().and_then(|r| r.memory.as_ref()) {
        Some(m) => print("lwt", m),
        None => println!("lwt     skipped"),
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
