//! The boot foundation under QEMU: the exit protocol, the runner's
//! options, the in-guest kernel checks, serial input and runtime arguments.

mod common;

use common::{Boot, RUNNER, TIMEOUT_SECONDS, boot, runner};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use unikit::console_log;

fn assert_banner(boot: &Boot, name: &str) {
    let lines = boot.log_lines();
    let banner = lines
        .iter()
        .find(|line| line.source == "kernel" && line.level == "INFO")
        .unwrap_or_else(|| panic!("no banner:\n{}", boot.console));
    assert!(
        banner
            .message
            .starts_with(&format!("unikit: starting {name} (TSC ")),
        "{}",
        banner.message
    );
}

#[test]
fn noop_boots_on_bios_and_exits_0() {
    let boot = boot("noop", &[]);
    boot.assert_status(0);
    boot.assert_every_line_is_a_log_line();
    assert_banner(&boot, "noop");
    assert!(boot.runner_messages.is_empty(), "{}", boot.runner_messages);
}

#[test]
fn noop_boots_on_uefi_and_exits_0() {
    let boot = boot("noop", &["--uefi"]);
    boot.assert_status(0);
    assert_banner(&boot, "noop");
}

#[test]
fn log_timestamps_start_near_zero_and_never_go_backwards() {
    let boot = boot("test-kernel", &[]);
    boot.assert_status(0);
    let lines = boot.log_lines();
    assert!(
        lines[0].micros < 1_000_000,
        "first line at {} us",
        lines[0].micros
    );
    for pair in lines.windows(2) {
        assert!(pair[0].micros <= pair[1].micros, "{pair:?}");
    }
}

#[test]
fn in_guest_kernel_checks_all_pass_with_the_lapic_alarm() {
    assert_kernel_checks_pass("lapic");
}

#[test]
fn in_guest_kernel_checks_all_pass_with_the_pit_alarm() {
    assert_kernel_checks_pass("pit");
}

fn assert_kernel_checks_pass(alarm: &str) {
    let boot = boot("test-kernel", &["--", &format!("alarm={alarm}")]);
    boot.assert_status(0);
    assert!(
        boot.log_lines()[0]
            .message
            .contains(&format!(", alarm {alarm}, ")),
        "{}",
        boot.console
    );
    boot.assert_every_line_is_a_log_line();
    boot.assert_every_kernel_check_passed();
}

#[test]
fn panic_reports_location_and_message_and_exits_3() {
    let boot = boot("test-panic", &[]);
    boot.assert_status(3);
    boot.assert_every_line_is_a_log_line();
    assert_eq!(
        boot.report(),
        "panic at kernel/src/bin/test_panic.rs:10:5: deliberate panic: expected 42, got 41; \
         exiting with status 3 (panic)"
    );
}

#[test]
fn error_from_start_is_logged_and_exits_1() {
    let boot = boot("test-error", &[]);
    boot.assert_status(1);
    boot.assert_every_line_is_a_log_line();
    assert_eq!(
        boot.report(),
        "test-error failed: deliberate error: the test-error image always fails"
    );
}

#[test]
fn page_fault_reports_address_access_and_instruction_and_exits_4() {
    let boot = boot("test-page-fault", &[]);
    boot.assert_status(4);
    boot.assert_every_line_is_a_log_line();
    let report = boot.report();
    assert!(
        report.starts_with(
            "CPU exception: page fault: write to unmapped address 0x7eadbeef0000 at instruction 0x"
        ),
        "{report}"
    );
    assert!(
        report.contains(", error code 0x2; exiting with status 4 (cpu-exception)"),
        "{report}"
    );
}

#[test]
fn stack_overflow_is_reported_as_such_and_exits_5() {
    let boot = boot("test-stack-overflow", &[]);
    boot.assert_status(5);
    boot.assert_every_line_is_a_log_line();
    let report = boot.report();
    assert!(
        report.starts_with(
            "double fault: kernel stack overflow (the 128 KiB boot stack is exhausted"
        ),
        "{report}"
    );
    assert!(
        report.ends_with("exiting with status 5 (double-fault)"),
        "{report}"
    );
}

#[test]
fn out_of_memory_reports_the_failed_allocation_and_exits_6() {
    let boot = boot("test-out-of-memory", &[]);
    boot.assert_status(6);
    boot.assert_every_line_is_a_log_line();
    let report = boot.report();
    assert!(
        report.starts_with("out of memory: an allocation of 1048576 bytes failed ("),
        "{report}"
    );
    assert!(
        report.ends_with("exiting with status 6 (out-of-memory)"),
        "{report}"
    );
}

#[test]
fn the_guest_wall_clock_agrees_with_the_host() {
    let boot = boot("test-kernel", &[]);
    boot.assert_status(0);
    let lines = boot.log_lines();
    let guest: u64 = lines
        .iter()
        .find_map(|line| line.message.strip_prefix("wall clock "))
        .unwrap_or_else(|| panic!("no wall clock line:\n{}", boot.console))
        .parse()
        .unwrap();
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(guest.abs_diff(host) < 300, "guest {guest}, host {host}");
}

#[test]
fn forcing_an_absent_alarm_source_is_a_clear_error() {
    // QEMU's TCG has no TSC-deadline timer; under KVM the same image boots.
    let boot = boot("test-kernel", &["--", "alarm=tsc-deadline"]);
    match boot.status {
        Some(1) => assert_eq!(
            boot.report(),
            "test-kernel cannot start: alarm=tsc-deadline: this CPU has no such timer"
        ),
        _ => {
            boot.assert_status(0);
            assert!(
                boot.console.contains(", alarm tsc-deadline, "),
                "{}",
                boot.console
            );
        }
    }
}

#[test]
fn a_bad_kernel_argument_says_what_was_expected_and_exits_1() {
    let boot = boot("noop", &["--", "alarm=hpet"]);
    boot.assert_status(1);
    assert_eq!(
        boot.report(),
        "noop cannot start: alarm=hpet: expected one of tsc-deadline, lapic, pit, tick-1khz"
    );
}

#[test]
fn a_runtime_argument_that_is_not_key_value_is_refused_by_the_runner() {
    let output = runner(&["noop", "--", "log=debug", "verbose"]);
    assert_eq!(output.status.code(), Some(2));
    let messages = String::from_utf8_lossy(&output.stderr);
    assert!(
        messages.starts_with("unikit: runtime argument `verbose` is not of the form key=value"),
        "{messages}"
    );
}

#[test]
fn the_log_argument_sets_the_level_without_rebuilding() {
    let quiet = boot("noop", &[]);
    let verbose = boot("noop", &["--", "log=debug"]);
    quiet.assert_status(0);
    verbose.assert_status(0);
    let debug_lines = |boot: &Boot| {
        boot.log_lines()
            .iter()
            .filter(|l| l.level == "DEBUG")
            .count()
    };
    assert_eq!(debug_lines(&quiet), 0, "{}", quiet.console);
    assert!(
        verbose.console.contains("DEBUG [kernel] noop finished"),
        "{}",
        verbose.console
    );
}

#[test]
fn lines_typed_on_the_serial_console_reach_the_unikernel() {
    let mut child = Command::new(RUNNER)
        .args(["test-serial-input", "--timeout", TIMEOUT_SECONDS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut console = String::new();
    while !console.ends_with("] INFO [test_serial_input] ready\n") {
        let mut line = String::new();
        assert_ne!(
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap(),
            0,
            "{console}"
        );
        console.push_str(&line);
    }
    stdin
        .write_all(b"hello unikernel\r\nsecond line\nquit\n")
        .unwrap();
    stdout.read_to_string(&mut console).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{console}");
    let lines: Vec<&str> = console_log::parse_all(&console)
        .into_iter()
        .filter(|line| line.source == "test_serial_input")
        .map(|line| line.message)
        .collect();
    assert_eq!(
        lines,
        [
            "ready",
            "line 1: hello unikernel",
            "line 2: second line",
            "line 3: quit"
        ]
    );
}

#[test]
fn a_hung_guest_is_killed_at_the_timeout_with_status_124() {
    // Long enough for the guest to boot and print on a loaded machine.
    let started = Instant::now();
    let output = runner(&["test-hang", "--timeout", "30"]);
    assert_eq!(output.status.code(), Some(124));
    assert!(started.elapsed() < Duration::from_secs(120));
    let console = String::from_utf8_lossy(&output.stdout);
    assert!(
        console.contains("INFO [test_hang] hanging with interrupts off"),
        "{console}"
    );
    let messages = String::from_utf8_lossy(&output.stderr);
    assert!(
        messages.contains("unikit: test-hang did not exit within 30s; QEMU killed (status 124)"),
        "{messages}"
    );
}

/// The QEMU processes the runner `pid` has started.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|child| child.parse().expect("a pid"))
        .collect()
}

#[test]
fn sigterm_to_the_runner_stops_qemu_and_cleans_up_with_status_143() {
    let mut child = Command::new(RUNNER)
        .args(["test-hang", "--timeout", TIMEOUT_SECONDS, "--", "note=kept"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the runner starts");
    let stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    // Kept open until the runner ends, so QEMU's console never hits a
    // closed pipe.
    let mut lines = std::io::BufRead::lines(stdout);
    let hanging = lines
        .by_ref()
        .map(|line| line.expect("console output is text"))
        .any(|line| line.contains("hanging with interrupts off"));
    assert!(hanging, "the runner ended before the guest hung");
    let qemu = children_of(child.id());
    assert_eq!(qemu.len(), 1, "the runner runs one QEMU: {qemu:?}");
    let args_file = std::env::temp_dir().join(format!("unikit-args-{}-0", child.id()));
    assert!(
        args_file.exists(),
        "{} while QEMU runs",
        args_file.display()
    );
    common::terminate(&child);
    let output = child.wait_with_output().expect("the runner ends");
    drop(lines);
    assert_eq!(output.status.code(), Some(143));
    let messages = String::from_utf8_lossy(&output.stderr);
    assert!(
        messages.contains("unikit: stopped by signal 15; QEMU stopped (status 143)"),
        "{messages}"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{}", qemu[0])).exists(),
        "QEMU outlived the runner"
    );
    assert!(!args_file.exists(), "{} left behind", args_file.display());
}

#[test]
fn qemu_dies_with_a_runner_that_is_killed() {
    let mut child = Command::new(RUNNER)
        .args(["test-hang", "--timeout", TIMEOUT_SECONDS])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the runner starts");
    let started = Instant::now();
    let qemu = loop {
        if let [qemu] = children_of(child.id())[..] {
            break qemu;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no QEMU started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let qemu_proc = format!("/proc/{qemu}/stat");
    let started = Instant::now();
    // A killed QEMU lingers as a zombie until init reaps it: "Z" counts as dead.
    while std::fs::read_to_string(&qemu_proc).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "QEMU {qemu} outlived its killed runner"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_unknown_unikernel_lists_the_available_ones_and_exits_2() {
    let output = runner(&["no-such-kernel"]);
    assert_eq!(output.status.code(), Some(2));
    let messages = String::from_utf8_lossy(&output.stderr);
    let mut lines = messages.lines();
    assert_eq!(
        lines.next(),
        Some("unikit: no unikernel called `no-such-kernel`")
    );
    let unikernels = lines.next().unwrap();
    assert!(
        unikernels.starts_with("unikernels: ") && unikernels.contains("noop"),
        "{messages}"
    );
    assert!(
        lines.next().unwrap().starts_with("test images: test-"),
        "{messages}"
    );
}

#[test]
fn a_bad_option_says_what_was_expected_and_exits_2() {
    let output = runner(&["noop", "--mem", "a-lot"]);
    assert_eq!(output.status.code(), Some(2));
    let messages = String::from_utf8_lossy(&output.stderr);
    assert!(
        messages.starts_with(
            "unikit: `--mem` expects a positive whole number of MiB, got `a-lot`\nusage:"
        ),
        "{messages}"
    );
}

#[test]
fn list_prints_unikernels_and_test_images() {
    let output = runner(&["--list"]);
    assert_eq!(output.status.code(), Some(0));
    let listing = String::from_utf8_lossy(&output.stdout);
    let unikernels = listing.lines().next().unwrap();
    for name in ["noop", "heads1", "echo_console", "timeout2", "prng"] {
        assert!(
            unikernels.split(' ').any(|listed| listed == name),
            "{name}: {listing}"
        );
    }
    assert!(
        listing.contains("test images: test-error test-hang test-kernel"),
        "{listing}"
    );
}

#[test]
fn extra_qemu_arguments_reach_qemu() {
    let output = runner(&[
        "noop",
        "--timeout",
        "60",
        "--qemu-arg",
        "-no-such-qemu-option",
    ]);
    assert_eq!(output.status.code(), Some(125));
    let messages = String::from_utf8_lossy(&output.stderr);
    assert!(messages.contains("-no-such-qemu-option"), "{messages}");
    assert!(
        messages.contains("unikit: QEMU stopped without a status from noop (QEMU exit code 1)"),
        "{messages}"
    );
}

#[test]
fn mem_sets_the_guest_memory() {
    let small = boot("noop", &["--mem", "40"]);
    let large = boot("noop", &["--mem", "96"]);
    small.assert_status(0);
    large.assert_status(0);
    let heap_kib = |boot: &Boot| -> u64 {
        let banner = boot
            .log_lines()
            .into_iter()
            .find(|l| l.source == "kernel")
            .unwrap()
            .message
            .to_owned();
        let after = banner.split("heap ").nth(1).unwrap();
        after.split(' ').next().unwrap().parse().unwrap()
    };
    let grown = heap_kib(&large) - heap_kib(&small);
    assert!(
        (50 * 1024..=60 * 1024).contains(&grown),
        "the heap grew by {grown} KiB for 56 MiB more RAM"
    );
}

/// Sends one packet of gdb's remote serial protocol and reads the reply.
fn gdb_packet(stream: &mut TcpStream, payload: &str) -> String {
    let checksum = payload
        .bytes()
        .fold(0u8, |sum, byte| sum.wrapping_add(byte));
    write!(stream, "${payload}#{checksum:02x}").unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while stream.read(&mut byte).unwrap() == 1 {
        reply.push(byte[0]);
        if reply.len() >= 3 && reply[reply.len() - 3] == b'#' {
            break;
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn gdb_option_waits_for_a_debugger_that_can_continue_the_guest() {
    let child = Command::new(RUNNER)
        .args(["noop", "--gdb", "--timeout", TIMEOUT_SECONDS])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = loop {
        match TcpStream::connect("127.0.0.1:1234") {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(error) => panic!("gdb stub not reachable: {error}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let stop_reason = gdb_packet(&mut stream, "?");
    assert!(
        stop_reason.starts_with("+$T05") || stop_reason.starts_with("+$S05"),
        "{stop_reason}"
    );
    write!(stream, "+$c#63").unwrap();
    let output = child.wait_with_output().unwrap();
    let messages = String::from_utf8_lossy(&output.stderr);
    assert!(
        messages.contains("unikit: QEMU waits for gdb; attach with: gdb "),
        "{messages}"
    );
    assert_eq!(output.status.code(), Some(0), "{messages}");
    let console = String::from_utf8_lossy(&output.stdout);
    assert!(console.contains("unikit: starting noop"), "{console}");
}
