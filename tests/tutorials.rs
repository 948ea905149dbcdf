//! Every tutorial unikernel booted under QEMU (BIOS, TCG; `heads1` also
//! UEFI and on each alarm source), its console checked for content, order
//! and timing read from the guest's own timestamps. The tolerances allow
//! for a loaded host: under TCG the first poll of a unikernel's tasks comes
//! some tens of milliseconds after the banner (first-time translation of
//! the code), and the host may deschedule the guest.

mod common;

use common::{Boot, RUNNER, TIMEOUT_SECONDS, boot};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use unikit::console_log;

/// Seconds from the banner ("unikit: starting ...") to each line the
/// unikernel logged under `source`, with the message.
fn timeline(boot: &Boot, source: &str) -> Vec<(f64, String)> {
    let lines = boot.log_lines();
    let banner = lines
        .iter()
        .find(|line| line.source == "kernel" && line.message.starts_with("unikit: starting "))
        .unwrap_or_else(|| panic!("no banner:\n{}", boot.console));
    lines
        .iter()
        .filter(|line| line.source == source)
        .map(|line| (line.seconds() - banner.seconds(), line.message.to_owned()))
        .collect()
}

fn messages(timeline: &[(f64, String)]) -> Vec<&str> {
    timeline
        .iter()
        .map(|(_, message)| message.as_str())
        .collect()
}

/// `at` lies in `[expected, expected + slack]` seconds: a sleep never ends
/// early, only late (deadlines are absolute, so measure these from the
/// banner).
fn assert_at(at: f64, expected: f64, slack: f64, what: &str) {
    assert!(
        at >= expected - 0.000_5 && at <= expected + slack,
        "{what} at {at:.6} s, expected {expected} s (+{slack} s)"
    );
}

/// A relative sleep's interval: its deadline counts from the loop's clock
/// reading at the start of the round, the log line's timestamp from a bit
/// later (printing under TCG takes milliseconds), so it may read up to 20 ms
/// short; it may be `late` long, by however long the host kept the guest off
/// the CPU.
fn assert_relative_sleep(interval: f64, expected: f64, late: f64, what: &str) {
    assert!(
        interval >= expected - 0.02 && interval <= expected + late,
        "{what}: {interval:.6} s, expected {expected} s (-0.02 s, +{late} s)"
    );
}

/// The interval between two wake-ups lies within `slack` of `expected`:
/// either end may be late.
fn assert_interval(interval: f64, expected: f64, slack: f64, what: &str) {
    assert!(
        (interval - expected).abs() <= slack,
        "{what}: {interval:.6} s, expected {expected} s (±{slack} s)"
    );
}

fn assert_heads_tails_finished(boot: &Boot, source: &str) {
    boot.assert_status(0);
    boot.assert_every_line_is_a_log_line();
    let timeline = timeline(boot, source);
    assert_eq!(
        messages(&timeline),
        ["Heads", "Tails", "Finished"],
        "{}",
        boot.console
    );
    assert_at(timeline[0].0, 1.0, 0.25, "Heads");
    assert_at(timeline[1].0, 2.0, 0.25, "Tails");
    assert_interval(
        timeline[1].0 - timeline[0].0,
        1.0,
        0.05,
        "Tails after Heads",
    );
    assert_at(
        timeline[2].0 - timeline[1].0,
        0.0,
        0.05,
        "Finished after Tails",
    );
}

#[test]
fn heads1_prints_heads_at_one_second_tails_at_two_then_finished() {
    assert_heads_tails_finished(&boot("heads1", &[]), "heads1");
}

#[test]
fn heads1_keeps_time_on_the_pit_alarm() {
    let boot = boot("heads1", &["--", "alarm=pit"]);
    assert!(boot.console.contains(", alarm pit, "), "{}", boot.console);
    assert_heads_tails_finished(&boot, "heads1");
}

#[test]
fn heads1_keeps_time_on_the_lapic_alarm() {
    let boot = boot("heads1", &["--", "alarm=lapic"]);
    assert!(boot.console.contains(", alarm lapic, "), "{}", boot.console);
    assert_heads_tails_finished(&boot, "heads1");
}

#[test]
fn heads1_keeps_time_on_uefi() {
    let boot = boot("heads1", &["--uefi"]);
    boot.assert_status(0);
    let timeline = timeline(&boot, "heads1");
    assert_eq!(
        messages(&timeline),
        ["Heads", "Tails", "Finished"],
        "{}",
        boot.console
    );
    assert_interval(
        timeline[1].0 - timeline[0].0,
        1.0,
        0.05,
        "Tails after Heads",
    );
}

#[test]
fn heads2_with_both_prints_like_heads1() {
    assert_heads_tails_finished(&boot("heads2", &[]), "heads2");
}

fn assert_four_greetings_a_second_apart(boot: &Boot, source: &str, text: &str) {
    boot.assert_status(0);
    boot.assert_every_line_is_a_log_line();
    let timeline = timeline(boot, source);
    assert_eq!(messages(&timeline), [text; 4], "{}", boot.console);
    for (i, pair) in timeline.windows(2).enumerate() {
        assert_relative_sleep(
            pair[1].0 - pair[0].0,
            1.0,
            0.25,
            &format!("greeting {}", i + 2),
        );
    }
}

#[test]
fn hello_says_hello_four_times_one_second_apart() {
    assert_four_greetings_a_second_apart(&boot("hello", &[]), "hello", "hello");
}

#[test]
fn hello_key_takes_its_text_from_a_runtime_argument() {
    let boot = boot("hello_key", &["--", "hello=Bonjour, le monde"]);
    assert_four_greetings_a_second_apart(&boot, "hello_key", "Bonjour, le monde");
}

#[test]
fn hello_key_defaults_to_hello_world() {
    assert_four_greetings_a_second_apart(&boot("hello_key", &[]), "hello_key", "Hello World!");
}

#[test]
fn echo_server_logs_ten_generated_lines() {
    let boot = boot("echo_server", &[]);
    boot.assert_status(0);
    boot.assert_every_line_is_a_log_line();
    let timeline = timeline(&boot, "echo_server");
    assert_eq!(timeline.len(), 10, "{}", boot.console);
    let mut previous = 0.0;
    for (at, line) in &timeline {
        assert!(
            line.len() < 20 && line.chars().all(|c| c == 'a'),
            "{line:?}"
        );
        assert!(*at - previous < 2.5 + 0.25, "{at} after {previous}");
        previous = *at;
    }
}

#[test]
fn echo_console_echoes_lines_typed_on_the_serial_port() {
    let mut child = Command::new(RUNNER)
        .args(["echo_console", "--timeout", TIMEOUT_SECONDS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut console = String::new();
    while !console.contains("] INFO [echo_console] type up to 10 lines; `quit` ends\n") {
        let mut line = String::new();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "{console}");
        console.push_str(&line);
    }
    stdin
        .write_all(b"first line\r\nsecond\nquit\nnot read\n")
        .unwrap();
    stdout.read_to_string(&mut console).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{console}");
    let echoed: Vec<&str> = console_log::parse_all(&console)
        .into_iter()
        .filter(|line| line.source == "echo_console")
        .map(|line| line.message)
        .collect();
    assert_eq!(
        echoed,
        [
            "type up to 10 lines; `quit` ends",
            "echo: first line",
            "echo: second",
            "echo: quit",
            "bye"
        ]
    );
}

#[test]
fn timeout1_answers_at_exactly_two_seconds() {
    let boot = boot("timeout1", &[]);
    boot.assert_status(0);
    let timeline = timeline(&boot, "timeout1");
    assert_eq!(timeline.len(), 1, "{}", boot.console);
    let (at, message) = &timeline[0];
    assert!(
        message == "Cancelled" || message == "Returned \"Heads\"",
        "{message}"
    );
    assert_at(*at, 2.0, 0.25, message);
}

#[test]
fn timeout2_answers_as_soon_as_the_thread_does_or_at_two_seconds() {
    let boot = boot("timeout2", &[]);
    boot.assert_status(0);
    let timeline = timeline(&boot, "timeout2");
    assert_eq!(timeline.len(), 1, "{}", boot.console);
    let (at, message) = &timeline[0];
    match message.as_str() {
        "Cancelled" => assert_at(*at, 2.0, 0.25, message),
        "Returned \"Heads\"" => assert!(*at < 2.0 + 0.25, "{message} at {at}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn speaking_clock_tells_elapsed_and_wall_time_each_second() {
    let boot = boot("speaking_clock", &["--", "count=3"]);
    boot.assert_status(0);
    let timeline = timeline(&boot, "speaking_clock");
    assert_eq!(timeline.len(), 3, "{}", boot.console);
    let today = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap();
    let mut elapsed = Vec::new();
    for (_, message) in &timeline {
        let rest = message.strip_prefix("elapsed ").unwrap();
        let (nanos, wall) = rest.split_once(" ns, wall clock ").unwrap();
        elapsed.push(nanos.parse::<u64>().unwrap() as f64 / 1e9);
        assert!(wall.starts_with(&today) && wall.ends_with(" UTC"), "{wall}");
    }
    assert_relative_sleep(elapsed[1] - elapsed[0], 1.0, 0.25, "second tick");
    assert_relative_sleep(elapsed[2] - elapsed[1], 1.0, 0.25, "third tick");
}

#[test]
fn speaking_clock_rejects_a_bad_count_with_what_was_expected() {
    let boot = boot("speaking_clock", &["--", "count=many"]);
    boot.assert_status(1);
    assert_eq!(
        boot.report(),
        "speaking_clock failed: count=many: expected a whole number of ticks"
    );
}

#[test]
fn prng_draws_bytes_and_every_width_from_the_kernel_csprng() {
    let first = boot("prng", &[]);
    let second = boot("prng", &[]);
    first.assert_status(0);
    second.assert_status(0);
    let draws = |boot: &Boot| {
        messages(&timeline(boot, "prng"))
            .iter()
            .map(|m| (*m).to_owned())
            .collect::<Vec<_>>()
    };
    let (a, b) = (draws(&first), draws(&second));
    assert_eq!(a.len(), 6, "{}", first.console);
    let hex = a[0].strip_prefix("32 random bytes: ").unwrap();
    assert!(
        hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{hex}"
    );
    for (line, width) in a[1..].iter().zip(["u8", "u16", "u32", "u64", "u128"]) {
        assert!(line.starts_with(&format!("{width}: ")), "{line}");
    }
    assert_ne!(a[0], b[0], "two boots drew the same bytes");
}

#[test]
fn mailbox_paces_the_producer_to_the_consumer_on_bare_metal() {
    let boot = boot("mailbox", &[]);
    boot.assert_status(0);
    boot.assert_every_line_is_a_log_line();
    let timeline = timeline(&boot, "mailbox");
    let at = |message: &str| {
        timeline
            .iter()
            .find(|(_, m)| m == message)
            .unwrap_or_else(|| panic!("no {message:?} in\n{}", boot.console))
            .0
    };
    // Three pushes complete at once; the fourth waits for the first take.
    assert_interval(
        at("stream: pushed packet 3") - at("stream: pushed packet 1"),
        0.0,
        0.05,
        "third push",
    );
    assert_interval(
        at("stream: pushed packet 4") - at("stream: pushed packet 1"),
        0.5,
        0.1,
        "fourth push",
    );
    assert_interval(
        at("mvar: put 2") - at("mvar: put 1"),
        0.3,
        0.1,
        "second put",
    );
    assert_eq!(timeline.last().unwrap().1, "done");
    assert!(
        timeline
            .iter()
            .any(|(_, m)| m == "condition: signal with no waiter delivered: false"),
        "{}",
        boot.console
    );
}
