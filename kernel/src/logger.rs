//! The `log` facade's backend: one console line per record, in the format
//! the test suite and users parse (a contract, see DESIGN.md):
//!
//! ```text
//! [    1.000153] INFO [heads1] Heads
//! ```
//!
//! Seconds since kernel entry with microseconds, right-aligned in a field of
//! at least 12 characters; the level; the source in brackets; the message.
//! The source is the last `::` segment of the record's target, so a record
//! logged from `unikit_tutorial::heads1` reads `[heads1]`, and `log`'s
//! `target:` argument names any source explicitly.
//!
//! The maximum level defaults to `Info`.

use crate::{clock, console};
use core::fmt;
use log::{Level, LevelFilter, Log, Metadata, Record};

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

/// Installs the console logger with the given maximum level.
pub fn init(max_level: LevelFilter) {
    // Only the first call installs the logger; boot calls this once.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(max_level);
}

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            console::write_fmt(format_args!(
                "{}",
                LogLine::new(
                    clock::now_ns(),
                    record.level(),
                    record.target(),
                    *record.args()
                )
            ));
        }
    }

    fn flush(&self) {}
}

/// One formatted log line, `\n` included.
pub struct LogLine<'a> {
    nanos: u64,
    level: Level,
    target: &'a str,
    message: fmt::Arguments<'a>,
}

impl<'a> LogLine<'a> {
    /// A line for a record logged `nanos` nanoseconds after kernel entry.
    pub fn new(nanos: u64, level: Level, target: &'a str, message: fmt::Arguments<'a>) -> Self {
        LogLine {
            nanos,
            level,
            target,
            message,
        }
    }
}

/// The source shown in brackets: the last segment of a module path.
pub fn source_of(target: &str) -> &str {
    target.rsplit("::").next().unwrap_or(target)
}

impl fmt::Display for LogLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.nanos / 1_000_000_000;
        let micros = (self.nanos % 1_000_000_000) / 1_000;
        writeln!(
            f,
            "[{seconds:>5}.{micros:06}] {} [{}] {}",
            self.level,
            source_of(self.target),
            self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(nanos: u64, level: Level, target: &str, message: &str) -> String {
        LogLine::new(nanos, level, target, format_args!("{message}")).to_string()
    }

    #[test]
    fn line_matches_the_contract_example() {
        assert_eq!(
            line(
                1_000_153_999,
                Level::Info,
                "unikit_tutorial::heads1",
                "Heads"
            ),
            "[    1.000153] INFO [heads1] Heads\n"
        );
    }

    #[test]
    fn timestamp_field_is_twelve_characters_then_grows() {
        assert_eq!(
            line(0, Level::Warn, "k", "m"),
            "[    0.000000] WARN [k] m\n"
        );
        assert_eq!(
            line(123_456_000_001_000, Level::Error, "k", "m"),
            "[123456.000001] ERROR [k] m\n"
        );
    }

    #[test]
    fn every_level_prints_its_name() {
        let names: Vec<String> = [
            Level::Error,
            Level::Warn,
            Level::Info,
            Level::Debug,
            Level::Trace,
        ]
        .into_iter()
        .map(|level| {
            line(0, level, "k", "m")[15..]
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
        assert_eq!(names, ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]);
    }

    #[test]
    fn explicit_target_is_used_as_is() {
        assert_eq!(source_of("selftest"), "selftest");
        assert_eq!(source_of("a::b::c"), "c");
    }
}
