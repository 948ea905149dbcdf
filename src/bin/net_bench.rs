//! `cargo run --release --bin net-bench [boot memory size echo http]
//! [--peer-only]`: the network unikernels against what a user would pick
//! instead, a small Linux VM, side by side in one run, printed as one
//! table with the ratios and the goals of issue 5.
//!
//! The unikit column boots `network` (TCP echo) and `http` through the
//! runner's code, directly (`--direct`: QEMU's `-kernel`, as for Linux);
//! the Linux column boots Debian's kernel with an initramfs of busybox
//! serving the same (see [`peer`]); both under the same QEMU
//! machine, NIC and user networking ([`vm`]). `--peer-only` measures the
//! Linux VM alone. Sections (all by default, or those named):
//!
//! - **boot**: QEMU spawned to the first TCP echo that comes back through
//!   the forwarded port (median of [`BOOT_RUNS`] boots); a note gives
//!   unikit's boot from its BIOS disk image too.
//! - **memory**: the smallest `-m` (MiB) at which the guest still answers
//!   an echo and an HTTP GET (bisection; for unikit, both unikernels).
//! - **size**: the Linux kernel and initramfs against the unikernels' BIOS
//!   disk images and stripped kernel ELFs.
//! - **echo**: TCP echo throughput of [`ECHO_BYTES`] sent and received
//!   concurrently on one connection, and the round-trip time of
//!   [`ROUND_TRIPS`] 64-byte messages (p50, p99).
//! - **http**: `GET /` responses per second over [`HTTP_SECONDS`] with 1
//!   and 32 connections, from Debian's `wrk` (installed when missing and
//!   root), else from the bench's own client ([`client`]: threads over
//!   `std::net`, HTTP/1.1 keep-alive, reopening a connection the server
//!   closes, and saying how many connections each run opened).
//!
//! Every figure is measured under TCG on a shared machine: compare the
//! columns of one run, not runs of different days.

#[path = "net_bench/client.rs"]
mod client;
#[path = "net_bench/cpio.rs"]
mod cpio;
#[path = "net_bench/peer.rs"]
mod peer;
#[path = "net_bench/vm.rs"]
mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use unikit::host::{self, Tools};
use vm::{Service, System, Vm};

/// Guest memory for every figure but the memory section, in MiB: the same
/// for both systems.
const MEM_MIB: u32 = 128;
const BOOT_RUNS: usize = 3;
const ECHO_BYTES: usize = 32_000_000;
const ROUND_TRIPS: usize = 1000;
const HTTP_SECONDS: u64 = 10;
/// How long a guest may take to answer its first request.
const READY_WITHIN: Duration = Duration::from_secs(120);
/// The same while bisecting memory: too little memory may hang a boot
/// (the unikernels' bootloader does), and both systems answer within a
/// few seconds when they have enough.
const SMALL_READY_WITHIN: Duration = Duration::from_secs(30);
/// How long a stalled transfer may stay silent before it counts as failed.
const STALL: Duration = Duration::from_secs(30);

/// Which way a figure is better.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

/// One line of the table: a figure of each system (`None`: not measured or
/// failed), and the goal as unikit's advantage factor.
struct Row {
    label: String,
    better: Better,
    decimals: usize,
    goal: Option<f64>,
    values: [Option<f64>; 2],
}

impl Row {
    fn new(label: &str, better: Better, decimals: usize) -> Row {
        Row {
            label: label.into(),
            better,
            decimals,
            goal: None,
            values: [None, None],
        }
    }

    /// The same row with a goal: unikit's figure `advantage` times better.
    fn goal(self, advantage: f64) -> Row {
        Row {
            goal: Some(advantage),
            ..self
        }
    }

    /// unikit's advantage: how many times better its figure is.
    fn advantage(&self) -> Option<f64> {
        let [Some(unikit), Some(linux)] = self.values else {
            return None;
        };
        match self.better {
            Better::Higher => Some(unikit / linux),
            Better::Lower => Some(linux / unikit),
        }
    }

    fn print(&self) {
        let value = |value: Option<f64>| {
            value.map_or("-".into(), |value| format!("{value:.*}", self.decimals))
        };
        let advantage = self
            .advantage()
            .map_or("-".into(), |advantage| format!("{advantage:.2}x"));
        let goal = match (self.goal, self.advantage()) {
            (Some(goal), Some(advantage)) => format!(
                ">= {goal}x: {}",
                if advantage >= goal { "met" } else { "MISSED" }
            ),
            (Some(goal), None) => format!(">= {goal}x: not measured"),
            (None, _) => String::new(),
        };
        println!(
            "   {:<40} {:>10} {:>10} {:>9}   {goal}",
            self.label,
            value(self.values[0]),
            value(self.values[1]),
            advantage
        );
    }
}

/// The systems of this run, unikit first when it is in.
struct Bench<'a> {
    tools: Tools,
    /// wrk, when installed or installable; else the bench's own client.
    wrk: Option<PathBuf>,
    systems: Vec<(usize, System<'a>)>,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Bench<'_> {
    fn row(&mut self, row: Row) -> usize {
        self.rows.push(row);
        self.rows.len() - 1
    }

    fn note(&mut self, note: String) {
        eprintln!("net-bench: {note}");
        self.notes.push(note);
    }
}

/// Boots `system` serving `service` and waits (at most `within`) until it
/// answers: returns the guest and when the first echo came back (the
/// first HTTP answer for the `http` unikernel), or why it did not.
fn ready(
    tools: &Tools,
    system: &System,
    service: Service,
    mem_mib: u32,
    within: Duration,
) -> Result<(Vm, Instant), String> {
    let mut vm = system.boot(tools, service, mem_mib);
    let deadline = Instant::now() + within;
    let echoed = match system {
        System::Unikit { .. } if service == Service::Http => None,
        _ => {
            let port = vm.port(Service::Echo);
            Some(client::first_echo(port, deadline, || vm.exited()))
        }
    };
    let answered_at = match echoed {
        Some(Some(at)) => at,
        Some(None) => return Err(failure(&mut vm, "no echo", mem_mib)),
        None => loop {
            if client::http_get_ok(vm.port(Service::Http), Duration::from_secs(1)) {
                break Instant::now();
            }
            if Instant::now() >= deadline || vm.exited() {
                return Err(failure(&mut vm, "no HTTP answer", mem_mib));
            }
            std::thread::sleep(Duration::from_millis(50));
        },
    };
    if service == Service::Http {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !client::http_get_ok(vm.port(Service::Http), Duration::from_secs(2)) {
            if Instant::now() >= deadline || vm.exited() {
                return Err(failure(&mut vm, "no HTTP answer", mem_mib));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok((vm, answered_at))
}

fn failure(vm: &mut Vm, what: &str, mem_mib: u32) -> String {
    let state = if vm.exited() {
        "QEMU exited"
    } else {
        "timed out"
    };
    format!(
        "{what} with {mem_mib} MiB ({state}); last console lines:\n   | {}",
        vm.console_tail(8)
    )
}

/// Boots each system serving `service` and, once it answers, runs
/// `measure` on it (which fills its column of the rows and adds notes); a
/// guest that does not answer leaves a note instead.
fn on_each_ready(
    bench: &mut Bench,
    service: Service,
    mut measure: impl FnMut(usize, &System, &Vm, &mut [Row], &mut Vec<String>),
) {
    let mut notes = Vec::new();
    for (column, system) in &bench.systems {
        match ready(&bench.tools, system, service, MEM_MIB, READY_WITHIN) {
            Ok((vm, _)) => measure(*column, system, &vm, &mut bench.rows, &mut notes),
            Err(error) => notes.push(format!("{} {service:?}: {error}", system.name())),
        }
    }
    for note in notes {
        bench.note(note);
    }
}

// ---- boot ---------------------------------------------------------------

/// The median of [`BOOT_RUNS`] boots of `system`, QEMU spawned to the
/// first echo, in ms.
fn median_boot_ms(tools: &Tools, system: &System) -> Result<f64, String> {
    let mut times = (0..BOOT_RUNS)
        .map(|_| {
            ready(tools, system, Service::Echo, MEM_MIB, READY_WITHIN)
                .map(|(vm, at)| at.duration_since(vm.started))
        })
        .collect::<Result<Vec<_>, _>>()?;
    times.sort();
    Ok(times[BOOT_RUNS / 2].as_secs_f64() * 1000.0)
}

fn boot_section(bench: &mut Bench) {
    let row = bench.row(
        Row::new(
            &format!("boot to first echo, ms (median of {BOOT_RUNS})"),
            Better::Lower,
            0,
        )
        .goal(10.0),
    );
    let mut boots = vec![];
    for (column, system) in &bench.systems {
        boots.push((
            Some(*column),
            median_boot_ms(&bench.tools, system),
            system.name(),
        ));
        if let System::Unikit { .. } = system {
            let disk = System::Unikit { direct: false };
            boots.push((None, median_boot_ms(&bench.tools, &disk), disk.name()));
        }
    }
    for (column, boot, name) in boots {
        match (column, boot) {
            (Some(column), Ok(ms)) => bench.rows[row].values[column] = Some(ms),
            (None, Ok(ms)) => bench.note(format!(
                "{name} (BIOS, through the bootloader's stages): {ms:.0} ms to the first echo"
            )),
            (_, Err(error)) => bench.note(format!("{name} boot: {error}")),
        }
    }
}

// ---- memory -------------------------------------------------------------

/// Whether `system` answers an echo and an HTTP GET with `mem_mib`.
fn answers_in(bench: &Bench, system: &System, mem_mib: u32) -> bool {
    match system {
        System::Unikit { .. } => [Service::Echo, Service::Http].into_iter().all(|service| {
            ready(&bench.tools, system, service, mem_mib, SMALL_READY_WITHIN).is_ok()
        }),
        System::Linux(_) => ready(
            &bench.tools,
            system,
            Service::Http,
            mem_mib,
            SMALL_READY_WITHIN,
        )
        .is_ok(),
    }
}

/// The smallest `-m` that answers, by bisection between 1 MiB (too little
/// for any PC guest) and the first of [`MEM_MIB`] or 512 MiB that answers.
fn smallest_mem_mib(bench: &Bench, system: &System) -> Option<u32> {
    let mut runs = [MEM_MIB, 512]
        .into_iter()
        .find(|&mib| answers_in(bench, system, mib))?;
    let mut fails = 1;
    while runs - fails > 1 {
        let middle = (fails + runs) / 2;
        eprintln!("net-bench: {} memory: trying {middle} MiB", system.name());
        if answers_in(bench, system, middle) {
            runs = middle;
        } else {
            fails = middle;
        }
    }
    Some(runs)
}

fn memory_section(bench: &mut Bench) {
    let row = bench.row(Row::new("smallest guest memory, MiB", Better::Lower, 0).goal(4.0));
    for (column, system) in &bench.systems {
        let mib = smallest_mem_mib(bench, system);
        bench.rows[row].values[*column] = mib.map(f64::from);
    }
}

// ---- size ---------------------------------------------------------------

/// The size of `kernel` stripped.
fn stripped_size(kernel: &Path) -> Option<u64> {
    let stripped = std::env::temp_dir().join(format!(
        "unikit-net-bench-{}-{}",
        std::process::id(),
        kernel.file_name()?.to_string_lossy()
    ));
    let stripped_ok = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(kernel)
        .status()
        .is_ok_and(|status| status.success());
    let size = std::fs::metadata(&stripped).map(|meta| meta.len()).ok();
    let _ = std::fs::remove_file(&stripped);
    size.filter(|_| stripped_ok)
}

fn size_section(bench: &mut Bench) {
    let kib = |bytes: u64| bytes as f64 / 1024.0;
    let image = bench.row(Row::new(
        "image, KiB (loader+ELF | kernel+initrd)",
        Better::Lower,
        0,
    ));
    let elf = bench.row(Row::new(
        "kernel, KiB (stripped ELF | vmlinuz)",
        Better::Lower,
        0,
    ));
    for (column, system) in &bench.systems {
        match system {
            System::Unikit { .. } => {
                let size = |path: &str| std::fs::metadata(path).map_or(0, |meta| meta.len());
                let loader = size(unikit::images::DIRECT_BOOT_LOADER);
                let (mut booted, mut disks) = (0, 0);
                let mut elves = Some(0);
                for service in [Service::Echo, Service::Http] {
                    let name = vm::unikernel(service).0;
                    let image = unikit::images::find(name).expect("checked before");
                    booted = booted.max(loader + size(image.kernel));
                    disks = disks.max(size(image.bios));
                    let stripped = stripped_size(Path::new(image.kernel));
                    elves = elves.zip(stripped).map(|(most, size)| most.max(size));
                }
                bench.rows[image].values[*column] = Some(kib(booted));
                bench.rows[elf].values[*column] = elves.map(kib);
                bench.notes.push(format!(
                    "size: unikit = the larger of network's and http's loader + kernel ELF as \
                     booted (with symbols) / stripped ELF; their BIOS disk images: {:.0} KiB",
                    kib(disks)
                ));
            }
            System::Linux(peer) => {
                let (kernel, initramfs) = peer.sizes();
                bench.rows[image].values[*column] = Some(kib(kernel + initramfs));
                bench.rows[elf].values[*column] = Some(kib(kernel));
                bench.notes.push(format!(
                    "size: Linux = vmlinuz {:.0} KiB (compressed, not stripped) + initramfs \
                     {:.0} KiB ({})",
                    kib(kernel),
                    kib(initramfs),
                    if peer.compressed {
                        "gzip -9"
                    } else {
                        "uncompressed"
                    }
                ));
            }
        }
    }
}

// ---- echo ---------------------------------------------------------------

fn echo_section(bench: &mut Bench) {
    let throughput = bench.row(
        Row::new(
            &format!("TCP echo, MB/s ({} MB each way)", ECHO_BYTES / 1_000_000),
            Better::Higher,
            2,
        )
        .goal(1.5),
    );
    let p50 = bench.row(Row::new("TCP echo round trip p50, us", Better::Lower, 0));
    let p99 = bench.row(Row::new("TCP echo round trip p99, us", Better::Lower, 0));
    on_each_ready(bench, Service::Echo, |column, system, vm, rows, notes| {
        let port = vm.port(Service::Echo);
        match client::echo_throughput(port, ECHO_BYTES, STALL) {
            Ok(elapsed) => {
                rows[throughput].values[column] =
                    Some(ECHO_BYTES as f64 / 1e6 / elapsed.as_secs_f64());
            }
            Err(error) => notes.push(format!("{} echo throughput: {error}", system.name())),
        }
        match client::echo_round_trips(port, ROUND_TRIPS, STALL) {
            Ok(times) => {
                let micros = |time: Duration| time.as_secs_f64() * 1e6;
                rows[p50].values[column] = Some(micros(client::percentile(&times, 50)));
                rows[p99].values[column] = Some(micros(client::percentile(&times, 99)));
            }
            Err(error) => notes.push(format!("{} echo round trips: {error}", system.name())),
        }
    });
}

// ---- http ---------------------------------------------------------------

fn http_section(bench: &mut Bench) {
    let runs: Vec<(usize, usize)> = [1, 32]
        .into_iter()
        .map(|clients| {
            let label = format!("HTTP GET /, requests/s, {clients} conn");
            (
                clients,
                bench.row(Row::new(&label, Better::Higher, 0).goal(1.5)),
            )
        })
        .collect();
    let wrk = bench.wrk.clone();
    on_each_ready(bench, Service::Http, |column, system, vm, rows, notes| {
        for &(clients, row) in &runs {
            let port = vm.port(Service::Http);
            let duration = Duration::from_secs(HTTP_SECONDS);
            let load = match &wrk {
                Some(wrk) => client::wrk_load(wrk, port, clients, duration),
                None => Ok(client::http_load(port, clients, duration)),
            };
            let load = match load {
                Ok(load) => load,
                Err(error) => {
                    notes.push(format!("{} http {clients} conn: {error}", system.name()));
                    continue;
                }
            };
            if load.requests > 0 {
                rows[row].values[column] = Some(load.rate());
            }
            notes.push(format!(
                "{} http {clients} conn: {} responses in {:.1} s{}{}",
                system.name(),
                load.requests,
                load.elapsed.as_secs_f64(),
                load.connections
                    .map_or(String::new(), |connections| format!(
                        " on {connections} connections ({:.2} per response)",
                        connections as f64 / load.requests.max(1) as f64
                    )),
                match (&load.first_error, load.errors) {
                    (Some(error), errors) => format!(", {errors} failed: {error}"),
                    (None, _) => String::new(),
                }
            ));
        }
    });
}

/// Where the peer's initramfs is kept: next to this binary, under the
/// target directory.
fn cache_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's path");
    exe.parent().expect("its directory").join("net-bench-peer")
}

fn main() {
    let mut sections = Vec::new();
    let mut peer_only = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--peer-only" => peer_only = true,
            "boot" | "memory" | "size" | "echo" | "http" => sections.push(arg),
            other => {
                eprintln!(
                    "net-bench: unknown argument `{other}`; expected sections boot memory size \
                     echo http, and --peer-only"
                );
                std::process::exit(2);
            }
        }
    }
    let wanted = |section: &str| sections.is_empty() || sections.iter().any(|s| s == section);
    let tools = host::ensure_tools(false).unwrap_or_else(|error| panic!("{error}"));
    let peer = peer::Peer::build(&cache_dir()).unwrap_or_else(|error| {
        eprintln!("net-bench: {error}");
        std::process::exit(1);
    });
    let mut systems = Vec::new();
    let mut notes = Vec::new();
    let missing: Vec<&str> = [Service::Echo, Service::Http]
        .into_iter()
        .map(|service| vm::unikernel(service).0)
        .filter(|name| unikit::images::find(name).is_none())
        .collect();
    if peer_only {
        notes.push("unikit: left out (--peer-only)".to_string());
    } else if !missing.is_empty() {
        notes.push(format!(
            "unikit: left out, no image {} in this build",
            missing.join(" or ")
        ));
    } else {
        systems.push((0, System::Unikit { direct: true }));
    }
    systems.push((1, System::Linux(&peer)));
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    println!(
        "unikit net-bench: {profile} unikernels ({}) vs Linux {} (busybox initramfs, `{}`), \
         QEMU TCG, virtio-net-pci, user networking, {MEM_MIB} MiB unless said",
        vm::LOG_LEVEL,
        peer.release,
        peer::CMDLINE
    );
    let wrk = host::ensure_program("wrk", &["wrk"])
        .map_err(|error| eprintln!("net-bench: {error}; using the bench's own HTTP client"))
        .ok();
    let mut bench = Bench {
        tools,
        wrk,
        systems,
        rows: Vec::new(),
        notes,
    };
    if wanted("boot") {
        boot_section(&mut bench);
    }
    if wanted("memory") {
        memory_section(&mut bench);
    }
    if wanted("size") {
        size_section(&mut bench);
    }
    if wanted("echo") {
        echo_section(&mut bench);
    }
    if wanted("http") {
        http_section(&mut bench);
    }
    println!(
        "\n   {:<40} {:>10} {:>10} {:>9}   goal",
        "figure", "unikit", "Linux VM", "unikit's"
    );
    println!("   {:<40} {:>10} {:>10} {:>9}", "", "", "", "advantage");
    for row in &bench.rows {
        row.print();
    }
    println!(
        "\n   HTTP client: {}; busybox httpd closes the connection after every response, so \
         the Linux VM's clients reconnect for each request",
        if bench.wrk.is_some() {
            "wrk (at most 2 threads, keep-alive, reconnecting when the server closes)"
        } else {
            "the bench's own (a thread per connection over std::net, HTTP/1.1 keep-alive, \
             reconnecting when the server closes)"
        }
    );
    for note in &bench.notes {
        println!("   {note}");
    }
}
