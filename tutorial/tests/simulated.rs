//! Every tutorial unikernel on simulated time, with exact expected output:
//! the console lines (timestamps included) are a function of the seed, so
//! each test pins down what the unikernel prints and when.

use std::time::Duration;
use unikit_runtime::devices::host::{Devices, HostArgs, capture, install_logger};
use unikit_runtime::{Error, Runtime, Simulated};
use unikit_tutorial::host::{NAMES, bind};

/// Runs `name` on simulated time and returns its outcome and console.
fn run(
    name: &str,
    seed: u64,
    args: &[&str],
    script: &[(f64, &str)],
) -> (Result<(), Error>, String) {
    install_logger(log::LevelFilter::Info);
    let script = script
        .iter()
        .map(|&(at, line)| (Duration::from_secs_f64(at), line.to_owned()))
        .collect();
    let devices = Devices::simulated(seed, HostArgs::parse(args).unwrap(), script);
    let unikernel = bind(name, devices).unwrap();
    capture(|| Runtime::new(Simulated::new(seed)).run(unikernel))
}

/// The console of a successful run, one `(seconds, source, message)` per line.
fn lines(name: &str, seed: u64, args: &[&str], script: &[(f64, &str)]) -> Vec<String> {
    let (outcome, console) = run(name, seed, args, script);
    assert_eq!(outcome, Ok(()), "{console}");
    console.lines().map(str::to_owned).collect()
}

fn expected(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|line| (*line).to_owned()).collect()
}

#[test]
fn hello_says_hello_four_times_one_second_apart() {
    assert_eq!(
        lines("hello", 0, &[], &[]),
        expected(&[
            "[    0.000000] INFO [hello] hello",
            "[    1.000000] INFO [hello] hello",
            "[    2.000000] INFO [hello] hello",
            "[    3.000000] INFO [hello] hello",
        ])
    );
}

#[test]
fn hello_key_defaults_to_hello_world_and_takes_the_argument() {
    let default = lines("hello_key", 0, &[], &[]);
    assert_eq!(default[0], "[    0.000000] INFO [hello_key] Hello World!");
    assert_eq!(default.len(), 4);
    let bonjour = lines("hello_key", 0, &["hello=Bonjour le monde"], &[]);
    assert_eq!(
        bonjour[3],
        "[    3.000000] INFO [hello_key] Bonjour le monde"
    );
}

#[test]
fn heads1_prints_heads_at_one_second_tails_at_two_then_finished() {
    assert_eq!(
        lines("heads1", 0, &[], &[]),
        expected(&[
            "[    1.000000] INFO [heads1] Heads",
            "[    2.000000] INFO [heads1] Tails",
            "[    2.000000] INFO [heads1] Finished",
        ])
    );
}

#[test]
fn heads2_with_both_prints_the_same_as_heads1() {
    let heads2: Vec<String> = lines("heads2", 0, &[], &[])
        .into_iter()
        .map(|line| line.replace("[heads2]", "[heads1]"))
        .collect();
    assert_eq!(heads2, lines("heads1", 0, &[], &[]));
}

/// The timestamp of a console line, in microseconds.
fn micros(line: &str) -> u64 {
    let stamp = line[1..13].trim();
    let (seconds, fraction) = stamp.split_once('.').unwrap();
    seconds.parse::<u64>().unwrap() * 1_000_000 + fraction.parse::<u64>().unwrap()
}

#[test]
fn echo_server_logs_ten_lines_of_up_to_nineteen_a_within_the_generator_delays() {
    let console = lines("echo_server", 42, &[], &[]);
    assert_eq!(console.len(), 10, "{console:?}");
    let mut previous = 0;
    for line in &console {
        let message = line.split("] INFO [echo_server] ").nth(1).unwrap();
        assert!(
            message.len() < 20 && message.chars().all(|c| c == 'a'),
            "{line}"
        );
        let at = micros(line);
        assert!(
            at >= previous && at - previous < 2_500_000,
            "{line} after {previous} us"
        );
        assert_eq!(at % 1_000, 0, "delays are whole milliseconds: {line}");
        previous = at;
    }
}

#[test]
fn echo_server_is_reproducible_for_a_seed_and_differs_across_seeds() {
    assert_eq!(
        lines("echo_server", 7, &[], &[]),
        lines("echo_server", 7, &[], &[])
    );
    assert_ne!(
        lines("echo_server", 7, &[], &[]),
        lines("echo_server", 8, &[], &[])
    );
}

#[test]
fn echo_console_echoes_typed_lines_until_quit() {
    assert_eq!(
        lines(
            "echo_console",
            0,
            &[],
            &[
                (0.5, "hello"),
                (1.25, "world"),
                (2.0, "quit"),
                (3.0, "never read")
            ]
        ),
        expected(&[
            "[    0.000000] INFO [echo_console] type up to 10 lines; `quit` ends",
            "[    0.500000] INFO [echo_console] echo: hello",
            "[    1.250000] INFO [echo_console] echo: world",
            "[    2.000000] INFO [echo_console] echo: quit",
            "[    2.000000] INFO [echo_console] bye",
        ])
    );
}

#[test]
fn echo_console_stops_after_ten_lines_or_at_the_end_of_input() {
    let many: Vec<(f64, String)> = (0..12)
        .map(|i| (f64::from(i), format!("line {i}")))
        .collect();
    let script: Vec<(f64, &str)> = many.iter().map(|(at, line)| (*at, line.as_str())).collect();
    let console = lines("echo_console", 0, &[], &script);
    assert_eq!(console.len(), 12, "{console:?}");
    assert!(console[10].ends_with("echo: line 9"));
    assert!(console[11].ends_with("bye"));
    let ended = lines("echo_console", 0, &[], &[(1.0, "only")]);
    assert_eq!(
        ended.last().unwrap(),
        "[    1.000000] INFO [echo_console] end of input"
    );
}

/// The first seed whose timeout run prints `outcome`.
fn seed_printing(name: &str, outcome: &str) -> (u64, Vec<String>) {
    (0..200)
        .map(|seed| (seed, lines(name, seed, &[], &[])))
        .find(|(_, console)| console.iter().any(|line| line.ends_with(outcome)))
        .unwrap_or_else(|| panic!("no seed makes {name} print {outcome}"))
}

#[test]
fn timeout1_cancels_a_late_thread_at_exactly_two_seconds() {
    let (_, console) = seed_printing("timeout1", "Cancelled");
    assert_eq!(
        console,
        expected(&["[    2.000000] INFO [timeout1] Cancelled"])
    );
}

#[test]
fn timeout1_returns_heads_at_exactly_two_seconds_even_when_the_thread_is_early() {
    let (_, console) = seed_printing("timeout1", "Returned \"Heads\"");
    assert_eq!(
        console,
        expected(&["[    2.000000] INFO [timeout1] Returned \"Heads\""])
    );
}

#[test]
fn timeout2_cancels_a_late_thread_at_two_seconds() {
    let (_, console) = seed_printing("timeout2", "Cancelled");
    assert_eq!(
        console,
        expected(&["[    2.000000] INFO [timeout2] Cancelled"])
    );
}

#[test]
fn timeout2_returns_as_soon_as_the_thread_does() {
    let (_, console) = seed_printing("timeout2", "Returned \"Heads\"");
    assert_eq!(console.len(), 1);
    assert!(console[0].ends_with("INFO [timeout2] Returned \"Heads\""));
    assert!(micros(&console[0]) < 2_000_000, "{}", console[0]);
    assert_eq!(micros(&console[0]) % 1_000, 0, "{}", console[0]);
}

#[test]
fn speaking_clock_ticks_count_times_with_elapsed_and_wall_time() {
    assert_eq!(
        lines("speaking_clock", 0, &["count=3"], &[]),
        expected(&[
            "[    1.000000] INFO [speaking_clock] elapsed 1000000000 ns, wall clock 2026-01-01 00:00:01.000 UTC",
            "[    2.000000] INFO [speaking_clock] elapsed 2000000000 ns, wall clock 2026-01-01 00:00:02.000 UTC",
            "[    3.000000] INFO [speaking_clock] elapsed 3000000000 ns, wall clock 2026-01-01 00:00:03.000 UTC",
        ])
    );
}

#[test]
fn speaking_clock_rejects_a_count_that_is_not_a_number() {
    let (outcome, _) = run("speaking_clock", 0, &["count=many"], &[]);
    assert_eq!(
        outcome.unwrap_err().to_string(),
        "count=many: expected a whole number of ticks"
    );
}

#[test]
fn prng_prints_32_hex_bytes_and_each_width_reproducibly() {
    let console = lines("prng", 3, &[], &[]);
    let messages: Vec<&str> = console
        .iter()
        .map(|l| l.split("INFO [prng] ").nth(1).unwrap())
        .collect();
    let hex = messages[0].strip_prefix("32 random bytes: ").unwrap();
    assert_eq!(hex.len(), 64);
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    for (message, width) in messages[1..]
        .iter()
        .zip(["u8", "u16", "u32", "u64", "u128"])
    {
        let (name, value) = message.split_once(": ").unwrap();
        assert_eq!(name, width);
        assert!(value.parse::<u128>().is_ok(), "{message}");
    }
    assert_eq!(console, lines("prng", 3, &[], &[]));
    assert_ne!(console, lines("prng", 4, &[], &[]));
}

#[test]
fn mailbox_shows_back_pressure_reader_driven_puts_and_a_condition_that_is_not_sticky() {
    let console: Vec<String> = lines("mailbox", 0, &[], &[])
        .into_iter()
        .map(|line| line.replace(" INFO [mailbox]", ""))
        .collect();
    assert_eq!(
        console,
        expected(&[
            "[    0.000000] stream: capacity 2, 6 packets, consumer takes one per 500 ms",
            "[    0.000000] stream: pushed packet 1",
            "[    0.000000] stream: pushed packet 2",
            "[    0.000000] stream: pushed packet 3",
            "[    0.500000] stream: consumed packet 1",
            "[    0.500000] stream: pushed packet 4",
            "[    1.000000] stream: consumed packet 2",
            "[    1.000000] stream: pushed packet 5",
            "[    1.500000] stream: consumed packet 3",
            "[    1.500000] stream: pushed packet 6",
            "[    2.000000] stream: consumed packet 4",
            "[    2.500000] stream: consumed packet 5",
            "[    3.000000] stream: consumed packet 6",
            "[    3.000000] mvar: one slot, consumer takes every 300 ms",
            "[    3.000000] mvar: put 1",
            "[    3.300000] mvar: took 1",
            "[    3.300000] mvar: put 2",
            "[    3.600000] mvar: took 2",
            "[    3.600000] mvar: put 3",
            "[    3.900000] mvar: took 3",
            "[    3.900000] condition: signal with no waiter delivered: false",
            "[    4.100000] condition: broadcast woke 2 listeners",
            "[    4.100000] condition: listener 1 heard \"packet arrived\"",
            "[    4.100000] condition: listener 2 heard \"packet arrived\"",
            "[    4.100000] done",
        ])
    );
}

#[test]
fn every_unikernel_name_binds() {
    for name in NAMES {
        let devices = Devices::simulated(0, HostArgs::default(), Vec::new());
        assert!(bind(name, devices).is_some(), "{name}");
    }
    assert!(
        bind(
            "no_such",
            Devices::simulated(0, HostArgs::default(), Vec::new())
        )
        .is_none()
    );
}
