//! The console log line format, shared by every platform (a contract the
//! test suite and users parse):
//!
//! ```text
//! [    1.000153] INFO [heads1] Heads
//! ```
//!
//! Seconds since the platform's epoch with microseconds, right-aligned in a
//! field of at least 12 characters; the level; the source in brackets; the
//! message. The source is the last `::` segment of the record's target, so a
//! record logged from `unikit_tutorial::heads1` reads `[heads1]`, and `log`'s
//! `target:` argument names any source explicitly.

use core::fmt;
use log::Level;

/// One formatted log line, `\n` included.
pub struct LogLine<'a> {
    nanos: u64,
    level: Level,
    target: &'a str,
    message: fmt::Arguments<'a>,
}

impl<'a> LogLine<'a> {
    /// A line for a record logged `nanos` nanoseconds after the platform's
    /// epoch (kernel entry on bare metal).
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
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

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
