//! Booting images through the runner, as a user would with `cargo run --
//! <name>`, and reading what a user sees: the console, the runner's
//! messages and the exit status.
//!
//! Every boot has a generous `--timeout` so a hung guest fails its test
//! instead of hanging the suite; guest timing is read from the guest's own
//! timestamps, never from the host's clock.

#![allow(dead_code)] // each test file uses its own subset

use std::process::{Child, Command, Output, Stdio};
use unikit::console_log::{self, LogLine};

pub const RUNNER: &str = env!("CARGO_BIN_EXE_unikit");
/// Far above a BIOS boot (about 1.5 s) and a UEFI boot (about 3-5 s) under
/// TCG, to survive a loaded machine.
pub const TIMEOUT_SECONDS: &str = "180";

pub struct Boot {
    pub status: Option<i32>,
    pub console: String,
    pub runner_messages: String,
}

impl Boot {
    pub fn log_lines(&self) -> Vec<LogLine<'_>> {
        console_log::parse_all(&self.console)
    }

    /// The kernel's fatal report: the last ERROR line from `kernel`.
    pub fn report(&self) -> String {
        self.log_lines()
            .iter()
            .rev()
            .find(|line| line.level == "ERROR" && line.source == "kernel")
            .map(|line| line.message.to_owned())
            .unwrap_or_else(|| panic!("no report on the console:\n{}", self.console))
    }

    pub fn assert_status(&self, expected: i32) {
        assert_eq!(
            self.status,
            Some(expected),
            "console:\n{}\nrunner:\n{}",
            self.console,
            self.runner_messages
        );
    }

    /// The `test-kernel` image ran its in-guest checks (at least 12), each
    /// said `ok`, and the summary counts them all as passed.
    pub fn assert_every_kernel_check_passed(&self) {
        let lines = self.log_lines();
        let checks: Vec<&str> = lines
            .iter()
            .filter(|line| line.source == "selftest" && line.message.starts_with("check "))
            .map(|line| line.message)
            .collect();
        assert!(checks.len() >= 12, "{checks:?}");
        assert!(
            checks.iter().all(|check| check.ends_with(" ... ok")),
            "{checks:?}"
        );
        let summary = lines.last().unwrap();
        assert_eq!(
            summary.message,
            format!("{} passed, 0 failed", checks.len())
        );
    }

    /// On BIOS nothing but the kernel writes to the console, so every line
    /// must follow the log line format.
    pub fn assert_every_line_is_a_log_line(&self) {
        assert!(!self.console.is_empty());
        assert!(self.console.ends_with('\n'), "{:?}", self.console);
        for line in self.console.lines() {
            assert!(
                console_log::parse_line(line).is_some(),
                "off-format line: {line:?}"
            );
        }
    }
}

pub fn runner(args: &[&str]) -> Output {
    Command::new(RUNNER)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the runner starts")
}

/// Stops a runner as a user's Ctrl-C or `kill` would (SIGTERM), so it
/// stops QEMU and cleans up after itself.
pub fn terminate(runner: &Child) {
    let pid = i32::try_from(runner.id()).expect("a pid fits an i32");
    // SAFETY: kill(2) with a pid this test started and has not reaped yet,
    // so the pid is still the runner's.
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

pub fn boot(name: &str, extra: &[&str]) -> Boot {
    let mut args = vec![name, "--timeout", TIMEOUT_SECONDS];
    args.extend_from_slice(extra);
    let output = runner(&args);
    Boot {
        status: output.status.code(),
        console: String::from_utf8_lossy(&output.stdout).into_owned(),
        runner_messages: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
