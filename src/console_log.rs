//! Reading a unikernel's console: the log line format of the contract.
//!
//! ```text
//! [    1.000153] INFO [heads1] Heads
//! ```
//!
//! [`parse_line`] turns one such line into a [`LogLine`]; other lines (the
//! UEFI firmware's own output, for instance) give `None`. The test suite and
//! the benchmarks read guest timestamps through it.

/// One parsed console log line.
#[derive(Debug, PartialEq)]
pub struct LogLine<'a> {
    /// Microseconds since kernel entry.
    pub micros: u64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: &'a str,
    /// The source, without brackets.
    pub source: &'a str,
    /// The message.
    pub message: &'a str,
}

impl LogLine<'_> {
    /// The timestamp in seconds.
    pub fn seconds(&self) -> f64 {
        self.micros as f64 / 1e6
    }
}

const LEVELS: [&str; 5] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

/// Parses one line (without its `\n`), or `None` if it is not a log line.
pub fn parse_line(line: &str) -> Option<LogLine<'_>> {
    let rest = line.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once("] ")?;
    if stamp.len() < 12 {
        return None;
    }
    let (seconds, micros) = stamp.trim_start_matches(' ').split_once('.')?;
    if micros.len() != 6 || seconds.is_empty() {
        return None;
    }
    let micros = seconds.parse::<u64>().ok()? * 1_000_000 + micros.parse::<u64>().ok()?;
    let (level, rest) = rest.split_once(' ')?;
    if !LEVELS.contains(&level) {
        return None;
    }
    let rest = rest.strip_prefix('[')?;
    let (source, message) = rest.split_once("] ")?;
    Some(LogLine {
        micros,
        level,
        source,
        message,
    })
}

/// Every log line of a console transcript, skipping other lines.
pub fn parse_all(console: &str) -> Vec<LogLine<'_>> {
    console.lines().filter_map(parse_line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_example() {
        let line = parse_line("[    1.000153] INFO [heads1] Heads").unwrap();
        assert_eq!(
            line,
            LogLine {
                micros: 1_000_153,
                level: "INFO",
                source: "heads1",
                message: "Heads"
            }
        );
        assert_eq!(line.seconds(), 1.000153);
    }

    #[test]
    fn messages_may_contain_brackets_and_wide_stamps_are_fine() {
        let line = parse_line("[123456.000001] ERROR [kernel] a [b] c").unwrap();
        assert_eq!((line.micros, line.message), (123_456_000_001, "a [b] c"));
    }

    #[test]
    fn rejects_lines_off_the_format() {
        for line in [
            "BdsDxe: loading Boot0001",
            "[1.000153] INFO [x] narrow stamp",
            "[    1.00015] INFO [x] five digits",
            "[    1.000153] NOTICE [x] unknown level",
            "[    1.000153] INFO x no brackets",
            "[    1.000153]  INFO [x] two spaces",
        ] {
            assert_eq!(parse_line(line), None, "{line}");
        }
    }
}
