//! The end of a unikernel: orderly exit, and the fatal report.
//!
//! Every way out goes through [`exit`], which hands the status to QEMU's
//! `isa-debug-exit` device (see `unikit_drivers::qemu_exit` for the table and
//! the encoding) and halts if the device is absent. Fatal paths (panic, CPU
//! exception, out of memory) first print one report line through
//! [`report_and_exit`]: what happened, where, and the status it exits with,
//! in the ordinary log line format so the same parser reads it.

use crate::{clock, console};
use core::fmt;
use log::Level;
use unikit_drivers::qemu_exit::{self, ExitStatus};
use unikit_runtime::devices::log_line::LogLine;
use x86_64::instructions::{hlt, interrupts};

/// Stops the machine with `status`.
pub fn exit(status: ExitStatus) -> ! {
    interrupts::disable();
    qemu_exit::exit(status.code());
    loop {
        hlt();
    }
}

/// Prints `[time] ERROR [kernel] <what>; exiting with status N (name)` and
/// exits with `status`. Never allocates and never waits for a lock.
pub fn report_and_exit(status: ExitStatus, what: fmt::Arguments) -> ! {
    interrupts::disable();
    console::write_fatal(format_args!(
        "{}",
        LogLine::new(
            clock::now_ns(),
            Level::Error,
            "kernel",
            format_args!(
                "{what}; exiting with status {} ({})",
                status.code(),
                status.name()
            ),
        )
    ));
    exit(status)
}
