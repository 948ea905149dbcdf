//! `cargo run --release --bin kernel-bench [section...]`: the kernel's
//! figures, each measured side by side with its peer in one run and printed
//! as one table. Sections (all by default, or those named): `idle`,
//! `timers`, `boot`, `size`, `heap`.
//!
//! - **idle**: host CPU time QEMU spends while every task of `bench-idle`
//!   sleeps (between its `idle starts` and `idle ends` lines, so boot and
//!   exit are left out), tickless (`alarm=lapic`) against the periodic
//!   1 kHz tick (`alarm=tick-1khz`), read from `/proc/<pid>/stat`.
//! - **timers**: wake-up lateness of sleeps from 1 ms to 1 s, as
//!   `bench-timers` measures it inside the guest, for each alarm source.
//! - **boot**: `noop`'s kernel entry to the unikernel's start (the banner's
//!   "boot took", on the guest's TSC) and QEMU start to the first console
//!   line (host clock); medians of five boots, on BIOS, on UEFI and
//!   direct (`--direct`: QEMU loads unikit's PVH loader, no disk image).
//! - **size**: each unikernel's kernel ELF stripped, `noop`'s disk images,
//!   and the smallest `--mem` each tutorial boots and exits 0 in
//!   (bisection; a boot that does not finish in its time counts as
//!   failed). `speaking_clock` runs with `count=1`, and `echo_console` is
//!   sent `quit` when it prompts. The network unikernels serve until
//!   stopped: `net-bench` measures their memory.
//! - **heap**: `talc` against `linked_list_allocator`, both as the kernel
//!   wraps them (`unikit_kernel::heap`), on the host over same-size arenas,
//!   running the same fragmenting sequence of allocations, frees and
//!   reallocations.
//!
//! Build with `--release`: the kernels are then release builds too.

use std::alloc::{GlobalAlloc, Layout};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};
use unikit::cli::{DEFAULT_MEM_MIB, RunOptions};
use unikit::console_log;
use unikit::host::{self, Tools};
use unikit::images::{self, Image};
use unikit::qemu::{self, ArgsFile, Outcome};
use unikit_kernel::heap::{Arena, Heap, LinkedListArena, TalcArena};

/// Linux reports process times in clock ticks of 1/100 s (USER_HZ).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// A guest booting under QEMU, its console lines arriving with the host
/// time they were read.
struct Guest {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<(Instant, String)>,
    started: Instant,
    _args: Option<ArgsFile>,
}

impl Guest {
    /// Boots `name` on BIOS, or on UEFI when `tools` has OVMF.
    fn boot(tools: &Tools, name: &str, mem_mib: u32, args: &[&str]) -> Guest {
        Guest::start(tools, Guest::options(tools, name, mem_mib, args))
    }

    /// The runner's options for booting `name` on BIOS, or on UEFI when
    /// `tools` has OVMF.
    fn options(tools: &Tools, name: &str, mem_mib: u32, args: &[&str]) -> RunOptions {
        RunOptions {
            unikernel: name.into(),
            uefi: tools.ovmf.is_some(),
            mem_mib,
            runtime_args: args.iter().map(|arg| arg.to_string()).collect(),
            ..RunOptions::default()
        }
    }

    /// Boots as `options` say; like the runner, it hands the guest an
    /// arguments file only when there are runtime arguments.
    fn start(tools: &Tools, options: RunOptions) -> Guest {
        let name = &options.unikernel;
        let image = images::find(name).unwrap_or_else(|| panic!("no image {name}"));
        let args_file = (!options.runtime_args.is_empty())
            .then(|| ArgsFile::write(&options.runtime_args).expect("temporary file"));
        let started = Instant::now();
        let mut child = qemu::command(tools, image, &options, args_file.as_ref())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("QEMU starts");
        let stdout = child.stdout.take().expect("piped");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Guest {
            stdin: child.stdin.take(),
            child,
            lines,
            started,
            _args: args_file,
        }
    }

    /// The next console line, or `None` at the end of the console or at
    /// `deadline`.
    fn next_line(&self, deadline: Instant) -> Option<(Instant, String)> {
        let wait = deadline.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(wait).ok()
    }

    /// Reads lines until one contains `text`.
    fn wait_for(&self, text: &str, deadline: Instant) -> Option<(Instant, String)> {
        std::iter::from_fn(|| self.next_line(deadline)).find(|(_, line)| line.contains(text))
    }

    /// QEMU's CPU time so far (user and system, every thread), in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("QEMU's /proc entry");
        // Fields after the command name (which may hold spaces) start at
        // the state, field 3; utime and stime are fields 14 and 15.
        let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
            .split(' ')
            .collect();
        let ticks = |field: usize| fields[field - 3].parse::<f64>().expect("a tick count");
        (ticks(14) + ticks(15)) / CLOCK_TICKS_PER_SECOND
    }

    /// Reads the rest of the console (at most until `deadline`), then QEMU's
    /// outcome; kills QEMU at the deadline.
    fn finish(mut self, deadline: Instant) -> (Outcome, Vec<String>) {
        let rest: Vec<String> = std::iter::from_fn(|| self.next_line(deadline))
            .map(|(_, line)| line)
            .collect();
        drop(self.stdin.take());
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome =
            qemu::wait(self.child, Some(left.max(Duration::from_millis(1)))).expect("QEMU runs");
        (outcome, rest)
    }
}

/// QEMU, and OVMF when `uefi` (then every boot is a UEFI boot).
fn tools(uefi: bool) -> Tools {
    host::ensure_tools(uefi).unwrap_or_else(|error| panic!("{error}"))
}

fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    values[values.len() / 2]
}

fn goal(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

// ---- 1. idle cost -------------------------------------------------------

const IDLE_SECONDS: u64 = 10;

/// QEMU's CPU seconds and the wall seconds between `idle starts` and
/// `idle ends`.
fn idle_cost(tools: &Tools, alarm: &str) -> (f64, f64) {
    let seconds = format!("seconds={IDLE_SECONDS}");
    let alarm_arg = format!("alarm={alarm}");
    let guest = Guest::boot(
        tools,
        "bench-idle",
        DEFAULT_MEM_MIB,
        &[&alarm_arg, &seconds],
    );
    let deadline = Instant::now() + Duration::from_secs(IDLE_SECONDS + 60);
    let (start_wall, _) = guest
        .wait_for("idle starts", deadline)
        .expect("idle starts");
    let start_cpu = guest.cpu_seconds();
    let (end_wall, _) = guest.wait_for("idle ends", deadline).expect("idle ends");
    let end_cpu = guest.cpu_seconds();
    let (outcome, _) = guest.finish(deadline);
    assert_eq!(outcome, Outcome::Exited(0), "bench-idle alarm={alarm}");
    (
        end_cpu - start_cpu,
        end_wall.duration_since(start_wall).as_secs_f64(),
    )
}

fn idle_section(tools: &Tools) {
    println!(
        "\n1. Idle cost: QEMU's host CPU time while every task of bench-idle sleeps {IDLE_SECONDS} s"
    );
    println!(
        "   {:<12} {:>12} {:>10} {:>14}",
        "alarm", "host CPU s", "wall s", "of one core"
    );
    let mut shares = Vec::new();
    for alarm in ["lapic", "tick-1khz"] {
        let (cpu, wall) = idle_cost(tools, alarm);
        let share = 100.0 * cpu / wall;
        shares.push(share);
        let verdict = if alarm == "lapic" {
            format!("   goal < 5%: {}", goal(share < 5.0))
        } else {
            String::new()
        };
        println!("   {alarm:<12} {cpu:>12.2} {wall:>10.2} {share:>13.1}%{verdict}");
    }
    println!(
        "   ratio tick-1khz / lapic: {:.1}x",
        shares[1] / shares[0].max(0.01)
    );
}

// ---- 2. timer accuracy --------------------------------------------------

/// The `key=value` figures of bench-timers' result line.
struct Lateness {
    count: usize,
    min_ns: i64,
    p50_ns: i64,
    p99_ns: i64,
    max_ns: i64,
    intercept_ns: i64,
    slope_ppm: i64,
}

fn timer_lateness(tools: &Tools, alarm: &str) -> Lateness {
    let alarm_arg = format!("alarm={alarm}");
    let guest = Guest::boot(tools, "bench-timers", DEFAULT_MEM_MIB, &[&alarm_arg]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let (outcome, console) = guest.finish(deadline);
    assert_eq!(outcome, Outcome::Exited(0), "bench-timers alarm={alarm}");
    let result = console
        .iter()
        .filter_map(|line| console_log::parse_line(line))
        .find_map(|line| line.message.strip_prefix("lateness over "))
        .expect("the result line")
        .to_string();
    let value = |key: &str| -> i64 {
        result
            .split(' ')
            .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {result}"))
    };
    Lateness {
        count: result
            .split(' ')
            .next()
            .and_then(|count| count.parse().ok())
            .expect("the count"),
        min_ns: value("min_ns"),
        p50_ns: value("p50_ns"),
        p99_ns: value("p99_ns"),
        max_ns: value("max_ns"),
        intercept_ns: value("intercept_ns"),
        slope_ppm: value("slope_ppm"),
    }
}

fn micros(ns: i64) -> String {
    format!("{:.1}", ns as f64 / 1_000.0)
}

fn timers_section(tools: &Tools) {
    println!("\n2. Timer accuracy: wake-up lateness of sleeps of 1 ms..1 s in the guest (us)");
    println!(
        "   {:<12} {:>7} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}",
        "alarm", "sleeps", "min", "p50", "p99", "max", "fit: fixed", "+ ppm"
    );
    let mut p99s = Vec::new();
    for alarm in ["lapic", "pit", "tick-1khz"] {
        let lateness = timer_lateness(tools, alarm);
        p99s.push(lateness.p99_ns);
        println!(
            "   {alarm:<12} {:>7} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}   p99 goal < 1000 us: {}",
            lateness.count,
            micros(lateness.min_ns),
            micros(lateness.p50_ns),
            micros(lateness.p99_ns),
            micros(lateness.max_ns),
            micros(lateness.intercept_ns),
            lateness.slope_ppm,
            goal(lateness.p99_ns < 1_000_000)
        );
    }
    let lapic = p99s[0].max(1) as f64;
    println!("   fit: lateness = fixed + ppm x duration (least squares over the sleeps)");
    println!(
        "   p99 ratio to lapic: pit {:.2}x, tick-1khz {:.2}x",
        p99s[1] as f64 / lapic,
        p99s[2] as f64 / lapic
    );
}

// ---- 3. boot ------------------------------------------------------------

const BOOT_RUNS: usize = 5;

/// QEMU start to the first log line (on UEFI the firmware prints before
/// it), and the banner's entry-to-start microseconds.
fn boot_times(tools: &Tools, direct: bool) -> (Duration, u64) {
    let options = RunOptions {
        direct,
        ..Guest::options(tools, "noop", DEFAULT_MEM_MIB, &[])
    };
    let guest = Guest::start(tools, options);
    let started = guest.started;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (first_at, first) = std::iter::from_fn(|| guest.next_line(deadline))
        .find(|(_, line)| console_log::parse_line(line).is_some())
        .expect("a log line");
    let (outcome, rest) = guest.finish(deadline);
    assert_eq!(outcome, Outcome::Exited(0), "noop");
    let entry_to_start = std::iter::once(first)
        .chain(rest)
        .find_map(|line| {
            let micros = line.split("boot took ").nth(1)?;
            micros.trim_end_matches(" us)").parse().ok()
        })
        .expect("the banner");
    (first_at.duration_since(started), entry_to_start)
}

fn boot_section() {
    println!("\n3. Boot: noop, median of {BOOT_RUNS} boots per firmware");
    for (firmware, uefi, direct) in [
        ("BIOS  ", false, false),
        ("UEFI  ", true, false),
        ("direct", false, true),
    ] {
        let tools = tools(uefi);
        let boots: Vec<(Duration, u64)> =
            (0..BOOT_RUNS).map(|_| boot_times(&tools, direct)).collect();
        let first_line = median(boots.iter().map(|boot| boot.0).collect());
        let entry_to_start = median(boots.iter().map(|boot| boot.1).collect());
        println!(
            "   {firmware} kernel entry to unikernel start (guest TSC) {:>9.3} ms   goal < 10 ms: {}",
            entry_to_start as f64 / 1_000.0,
            goal(entry_to_start < 10_000)
        );
        println!(
            "   {firmware} QEMU start to first log line (host)         {:>9.3} ms",
            first_line.as_secs_f64() * 1_000.0
        );
    }
}

// ---- 4. size and memory -------------------------------------------------

/// The network unikernels: they serve until stopped and need a NIC, so
/// this section reports their size only; `net-bench`'s memory section
/// measures the memory they serve in.
const NETWORK_UNIKERNELS: &[&str] = &["http", "network", "udp_echo"];

/// How to run a unikernel to its end: runtime arguments that shorten it,
/// the console prompt to answer and the answer, and how long it runs.
struct Tutorial {
    name: &'static str,
    args: &'static [&'static str],
    answer: Option<(&'static str, &'static str)>,
    runs_for: Duration,
}

impl Tutorial {
    /// Every unikernel image (neither a test nor a bench image).
    fn all() -> Vec<Tutorial> {
        images::ALL
            .iter()
            .filter(|image| !image.is_test_image() && !image.is_bench_image())
            .map(|image| Tutorial::named(image.name))
            .collect()
    }

    fn named(name: &'static str) -> Tutorial {
        let (args, answer, seconds): (&'static [&'static str], _, u64) = match name {
            "speaking_clock" => (&["count=1"], None, 1),
            "echo_console" => (&[], Some(("`quit` ends", "quit\n")), 0),
            "hello" | "hello_key" => (&[], None, 4),
            // Ten lines, each after a random sleep of up to 2.5 s.
            "echo_server" => (&[], None, 25),
            _ => (&[], None, 10),
        };
        Tutorial {
            name,
            args,
            answer,
            runs_for: Duration::from_secs(seconds),
        }
    }
}

/// How long a boot may take to print its first line (normally under 2 s).
const FIRST_LINE_WITHIN: Duration = Duration::from_secs(10);

/// Whether `tutorial` boots and exits 0 with `mem_mib` of guest memory. A
/// failure is tried once more: on a loaded host a boot that would pass can
/// miss its deadline, and one such miss would skew the whole bisection.
fn runs_in(tools: &Tools, tutorial: &Tutorial, mem_mib: u32) -> bool {
    runs_once_in(tools, tutorial, mem_mib) || runs_once_in(tools, tutorial, mem_mib)
}

fn runs_once_in(tools: &Tools, tutorial: &Tutorial, mem_mib: u32) -> bool {
    let mut guest = Guest::boot(tools, tutorial.name, mem_mib, tutorial.args);
    // Too little memory hangs the bootloader: no console line at all.
    if guest
        .next_line(Instant::now() + FIRST_LINE_WITHIN)
        .is_none()
    {
        return guest.finish(Instant::now()).0 == Outcome::Exited(0);
    }
    let deadline = Instant::now() + tutorial.runs_for + Duration::from_secs(20);
    if let Some((prompt, answer)) = tutorial.answer {
        if guest.wait_for(prompt, deadline).is_none() {
            return guest.finish(Instant::now()).0 == Outcome::Exited(0);
        }
        let stdin = guest.stdin.as_mut().expect("piped");
        stdin
            .write_all(answer.as_bytes())
            .expect("QEMU reads stdin");
    }
    guest.finish(deadline).0 == Outcome::Exited(0)
}

/// The smallest `--mem` (MiB) the tutorial runs in, by bisection between 8
/// MiB and the default (32 MiB, the goal, is tried first); `None` if it
/// does not run with the default.
fn smallest_mem_mib(tools: &Tools, tutorial: &Tutorial) -> Option<u32> {
    let (mut fails, mut runs) = if runs_in(tools, tutorial, 32) {
        (8, 32)
    } else if runs_in(tools, tutorial, DEFAULT_MEM_MIB) {
        (32, DEFAULT_MEM_MIB)
    } else {
        return None;
    };
    while runs - fails > 1 {
        let middle = (fails + runs) / 2;
        if runs_in(tools, tutorial, middle) {
            runs = middle;
        } else {
            fails = middle;
        }
    }
    Some(runs)
}

/// The size of `kernel` stripped, through a temporary file named after
/// `name`.
fn stripped_size(kernel: &Path, name: &str) -> Option<u64> {
    let stripped =
        std::env::temp_dir().join(format!("unikit-kernel-bench-{}-{name}", std::process::id()));
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(kernel)
        .status()
        .ok()?;
    let size = status
        .success()
        .then(|| std::fs::metadata(&stripped).map_or(0, |meta| meta.len()));
    let _ = std::fs::remove_file(&stripped);
    size
}

fn size_section(tools: &Tools) {
    println!("\n4. Size and memory: kernel ELF stripped; smallest --mem that boots and exits 0");
    println!(
        "   {:<16} {:>10} {:>10} {:>9}   goals: < 512 KiB, runs in 32 MiB",
        "unikernel", "ELF KiB", "stripped", "--mem MiB"
    );
    // Two bisections at a time: one QEMU per host core.
    let tutorials = Tutorial::all();
    let results: Vec<(Option<u64>, Option<Option<u32>>)> = tutorials
        .chunks(2)
        .flat_map(|pair| {
            thread::scope(|scope| {
                let handles: Vec<_> = pair
                    .iter()
                    .map(|tutorial| {
                        scope.spawn(|| {
                            let image = images::find(tutorial.name).expect("the image");
                            // One temporary file per thread: strip here,
                            // before the bisection.
                            let stripped = stripped_size(Path::new(image.kernel), tutorial.name);
                            let mem = (!NETWORK_UNIKERNELS.contains(&tutorial.name))
                                .then(|| smallest_mem_mib(tools, tutorial));
                            (stripped, mem)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| handle.join().expect("a bisection"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let (mut largest, mut most_mem) = (0, 0);
    for (tutorial, (stripped, mem)) in tutorials.iter().zip(results) {
        let image: &Image = images::find(tutorial.name).expect("the image");
        let full = std::fs::metadata(image.kernel).map_or(0, |meta| meta.len());
        largest = largest.max(stripped.unwrap_or(u64::MAX));
        if let Some(mem) = mem {
            most_mem = most_mem.max(mem.unwrap_or(u32::MAX));
        }
        println!(
            "   {:<16} {:>10.1} {:>10} {:>9}{}",
            tutorial.name,
            full as f64 / 1024.0,
            stripped.map_or("?".into(), |size| format!("{:.1}", size as f64 / 1024.0)),
            match mem {
                None => "net-bench".into(),
                Some(None) => "fails".into(),
                Some(Some(mib)) => mib.to_string(),
            },
            if tutorial.args.is_empty() {
                String::new()
            } else {
                format!("   (with {})", tutorial.args.join(" "))
            }
        );
    }
    let noop = images::find("noop").expect("the noop image");
    let mib = |path: &str| {
        std::fs::metadata(path).map_or(0.0, |meta| meta.len() as f64 / (1 << 20) as f64)
    };
    println!(
        "   noop disk images: BIOS {:.2} MiB, UEFI {:.2} MiB (mostly the bootloader)",
        mib(noop.bios),
        mib(noop.uefi)
    );
    println!(
        "   largest stripped {:.1} KiB: goal < 512 KiB {}; most memory {} MiB: goal <= 32 MiB {}",
        largest as f64 / 1024.0,
        goal(largest < 512 * 1024),
        most_mem,
        goal(most_mem <= 32)
    );
}

// ---- 5. heap ------------------------------------------------------------

const ARENA_BYTES: usize = 32 << 20;
const SLOTS: usize = 8192;
const HEAP_OPS: usize = 1_000_000;
const HEAP_RUNS: usize = 3;

/// SplitMix64: the same sequence of operations for every allocator.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> usize {
        (self.next() % bound) as usize
    }

    /// Mostly small blocks, some pages, a few large buffers.
    fn layout(&mut self) -> Layout {
        let size = match self.below(100) {
            0..80 => 8 + self.below(248),
            80..95 => 256 + self.below(3_840),
            _ => 4_096 + self.below(61_440),
        };
        let align = [8, 8, 8, 16, 16, 64][self.below(6)];
        Layout::from_size_align(size, align).expect("a valid layout")
    }
}

/// What one run of the workload did.
struct HeapRun {
    elapsed: Duration,
    failures: usize,
}

/// The fragmenting workload: `HEAP_OPS` operations on random slots; an
/// empty slot gets a new block, a full one is freed (60%) or reallocated to
/// a new size (40%), so about 62% of the slots stay live (some 11 MiB of a
/// 32 MiB arena) while the holes between them multiply.
fn heap_workload<A: Arena>() -> HeapRun {
    let mut memory = vec![0u64; ARENA_BYTES / 8];
    let heap = Heap::over(A::empty());
    // SAFETY: `memory` outlives `heap` (both are dropped at the end, the
    // heap first) and only the heap uses it.
    unsafe { heap.claim(memory.as_mut_ptr().cast(), ARENA_BYTES) };
    let mut slots: Vec<Option<(*mut u8, Layout)>> = vec![None; SLOTS];
    let mut rng = SplitMix(0x756e_696b_6974);
    let mut failures = 0;
    let started = Instant::now();
    for _ in 0..HEAP_OPS {
        let slot = &mut slots[rng.below(SLOTS as u64)];
        let action = rng.below(10);
        let new_layout = rng.layout();
        // SAFETY: blocks come from this heap and are freed or reallocated
        // once, with the layout they were allocated or reallocated with,
        // and written only within their size.
        unsafe {
            *slot = match *slot {
                None => {
                    let block = heap.alloc(new_layout);
                    if block.is_null() {
                        failures += 1;
                        None
                    } else {
                        block.write(1);
                        Some((block, new_layout))
                    }
                }
                Some((block, layout)) if action < 6 => {
                    heap.dealloc(block, layout);
                    None
                }
                Some((block, layout)) => {
                    let moved = heap.realloc(block, layout, new_layout.size());
                    if moved.is_null() {
                        failures += 1;
                        Some((block, layout))
                    } else {
                        moved.add(new_layout.size() - 1).write(2);
                        let resized = Layout::from_size_align(new_layout.size(), layout.align())
                            .expect("a valid layout");
                        Some((moved, resized))
                    }
                }
            };
        }
    }
    let elapsed = started.elapsed();
    for (block, layout) in slots.into_iter().flatten() {
        // SAFETY: each live block is freed once with its layout.
        unsafe { heap.dealloc(block, layout) };
    }
    drop(heap);
    drop(memory);
    HeapRun { elapsed, failures }
}

fn heap_section() {
    println!(
        "\n5. Heap: {HEAP_OPS} mixed allocations, frees and reallocations over a {} MiB arena \
         (host, median of {HEAP_RUNS} runs)",
        ARENA_BYTES >> 20
    );
    let mut talc = Vec::new();
    let mut list = Vec::new();
    for _ in 0..HEAP_RUNS {
        talc.push(heap_workload::<TalcArena>());
        list.push(heap_workload::<LinkedListArena>());
    }
    let ns_per_op = |runs: &[HeapRun]| {
        median(runs.iter().map(|run| run.elapsed).collect::<Vec<_>>()).as_secs_f64() * 1e9
            / HEAP_OPS as f64
    };
    let (talc_ns, list_ns) = (ns_per_op(&talc), ns_per_op(&list));
    println!("   {:<24} {:>10} {:>10}", "allocator", "ns/op", "failures");
    for (name, ns, runs) in [
        (TalcArena::NAME, talc_ns, &talc),
        (LinkedListArena::NAME, list_ns, &list),
    ] {
        println!("   {name:<24} {ns:>10.1} {:>10}", runs[0].failures);
    }
    println!(
        "   ratio linked_list_allocator / talc: {:.1}x (the kernel's default: {})",
        list_ns / talc_ns,
        <unikit_kernel::heap::DefaultArena as Arena>::NAME
    );
}

fn main() {
    let sections: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |section: &str| sections.is_empty() || sections.iter().any(|s| s == section);
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    println!(
        "unikit kernel-bench: {profile} kernels, QEMU TCG, BIOS, {DEFAULT_MEM_MIB} MiB unless said"
    );
    if wanted("idle") {
        idle_section(&tools(false));
    }
    if wanted("timers") {
        timers_section(&tools(false));
    }
    if wanted("boot") {
        boot_section();
    }
    if wanted("size") {
        size_section(&tools(false));
    }
    if wanted("heap") {
        heap_section();
    }
}
