//! The `log` facade's backend: one console line per record, in the format
//! of `unikit_runtime::devices::log_line` (a contract, see DESIGN.md), with
//! seconds since kernel entry. The maximum level defaults to `Info`; the
//! runtime argument `log=<level>` changes it.

use crate::{clock, console};
use log::{LevelFilter, Log, Metadata, Record};
use unikit_runtime::devices::log_line::LogLine;

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
