//! `cargo run --release --bin boot-bench [runs]`: the boot figures of `noop`.
//!
//! For BIOS and UEFI under TCG it boots `noop` `runs` times (default 5) and
//! reports the median of:
//! - QEMU start to the first console line, on the host's clock;
//! - kernel entry to the unikernel's start, on the guest's TSC (the
//!   banner's "boot took" figure).
//!
//! Then the size of the kernel ELF (as built, and stripped with `strip`)
//! and of both disk images, and the smallest `--mem` with which `noop`
//! boots (a bisection; a boot that does not exit in 20 s counts as failed).
//! Build with `--release` for release-profile kernels.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use unikit::cli::{DEFAULT_MEM_MIB, RunOptions};
use unikit::console_log;
use unikit::host::{self, Tools};
use unikit::images::{self, Image};
use unikit::qemu::{self, Outcome};

/// One boot: host time to the first console line, and the guest's own
/// entry-to-start time.
struct BootTimes {
    first_line: Duration,
    entry_to_start_micros: u64,
}

fn options(uefi: bool, mem_mib: u32, timeout: Option<Duration>) -> RunOptions {
    RunOptions {
        unikernel: "noop".into(),
        uefi,
        kvm: false,
        mem_mib,
        gdb: false,
        timeout,
        qemu_args: Vec::new(),
        runtime_args: Vec::new(),
    }
}

fn boot_once(tools: &Tools, image: &Image, uefi: bool) -> BootTimes {
    let started = Instant::now();
    let mut child = qemu::command(tools, image, &options(uefi, DEFAULT_MEM_MIB, None), None)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("QEMU starts");
    let mut first_line = None;
    let mut entry_to_start_micros = None;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.expect("console is readable");
        let Some(parsed) = console_log::parse_line(&line) else {
            continue;
        };
        first_line.get_or_insert_with(|| started.elapsed());
        if let Some(micros) = parsed.message.split("boot took ").nth(1) {
            entry_to_start_micros = micros.trim_end_matches(" us)").parse().ok();
        }
    }
    let status = child.wait().expect("QEMU exits");
    assert_eq!(
        Outcome::from_qemu(status),
        Outcome::Exited(0),
        "noop failed"
    );
    BootTimes {
        first_line: first_line.expect("a console line"),
        entry_to_start_micros: entry_to_start_micros.expect("the banner"),
    }
}

fn median<T: Ord + Copy>(mut values: Vec<T>) -> T {
    values.sort();
    values[values.len() / 2]
}

fn boots_with(tools: &Tools, image: &Image, mem_mib: u32) -> bool {
    let options = options(false, mem_mib, Some(Duration::from_secs(20)));
    let child = qemu::command(tools, image, &options, None)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("QEMU starts");
    qemu::wait(child, options.timeout).expect("QEMU runs") == Outcome::Exited(0)
}

fn smallest_mem_mib(tools: &Tools, image: &Image) -> u32 {
    let (mut fails, mut boots) = (8, DEFAULT_MEM_MIB);
    assert!(
        boots_with(tools, image, boots),
        "noop does not boot with the default memory"
    );
    while boots - fails > 1 {
        let middle = (fails + boots) / 2;
        if boots_with(tools, image, middle) {
            boots = middle;
        } else {
            fails = middle;
        }
    }
    boots
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}

fn stripped_size(kernel: &Path) -> Option<u64> {
    let stripped = std::env::temp_dir().join(format!("unikit-boot-bench-{}", std::process::id()));
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(kernel)
        .status()
        .ok()?;
    let size = status.success().then(|| file_size(&stripped));
    let _ = std::fs::remove_file(&stripped);
    size
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(5, |runs| runs.parse().expect("runs is a number"));
    let image = images::find("noop").expect("the noop image");
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    println!("noop, {profile} profile, TCG, {DEFAULT_MEM_MIB} MiB, median of {runs} boots");
    for uefi in [false, true] {
        let tools = host::ensure_tools(uefi).unwrap_or_else(|error| panic!("{error}"));
        let boots: Vec<BootTimes> = (0..runs).map(|_| boot_once(&tools, image, uefi)).collect();
        let first_line = median(boots.iter().map(|b| b.first_line).collect());
        let entry_to_start = median(boots.iter().map(|b| b.entry_to_start_micros).collect());
        println!(
            "{:<5} QEMU start to first line {:>7.3} s   kernel entry to start {:>6} us",
            if uefi { "UEFI" } else { "BIOS" },
            first_line.as_secs_f64(),
            entry_to_start
        );
    }
    let kernel = Path::new(image.kernel);
    println!(
        "kernel ELF {} bytes, stripped {} bytes; BIOS image {} bytes; UEFI image {} bytes",
        file_size(kernel),
        stripped_size(kernel).map_or("(strip failed)".into(), |size| size.to_string()),
        file_size(Path::new(image.bios)),
        file_size(Path::new(image.uefi))
    );
    let tools = host::ensure_tools(false).unwrap_or_else(|error| panic!("{error}"));
    println!(
        "smallest --mem for noop (BIOS): {} MiB",
        smallest_mem_mib(&tools, image)
    );
}
