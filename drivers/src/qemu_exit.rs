//! QEMU's `isa-debug-exit` device, and the table of exit statuses a
//! unikernel reports through it.
//!
//! Writing a value `v` to the device's port makes QEMU exit at once with the
//! process status `(v << 1) | 1`. QEMU itself exits with 1 when it fails (a
//! bad option, a missing file) and with 0 when the guest powers off or, with
//! `-no-reboot`, resets (a triple fault). To keep those apart from anything a
//! unikernel reports, the guest writes `STATUS_BIAS + status`, so every status
//! it reports arrives as an odd QEMU status of at least 33, and
//! [`decode_qemu_status`] maps it back. The runner (`cargo run`) exits with
//! the decoded status.
//!
//! The device must be present: the runner passes
//! `-device isa-debug-exit,iobase=0xf4,iosize=0x04`.

use x86_64::instructions::port::Port;

/// The I/O port the runner places `isa-debug-exit` at.
pub const PORT: u16 = 0xf4;

/// Added to a status before it is written, so that QEMU's own statuses 0 and
/// 1 never look like a unikernel's.
pub const STATUS_BIAS: u32 = 16;

/// Why a unikernel stopped: the exit statuses of the contract. Status 2 is
/// not here: the runner uses it for its own usage errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// `start` returned `Ok`.
    Success = 0,
    /// `start` returned an error, or an in-guest check failed.
    Error = 1,
    /// A Rust panic.
    Panic = 3,
    /// A CPU exception (page fault, general protection fault, invalid
    /// opcode, ...), other than a double fault.
    CpuException = 4,
    /// A double fault, most often a kernel stack overflow.
    DoubleFault = 5,
    /// The heap could not satisfy an allocation.
    OutOfMemory = 6,
}

impl ExitStatus {
    /// The numeric status the runner exits with.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// A short name for reports, e.g. `cpu-exception`.
    pub fn name(self) -> &'static str {
        match self {
            ExitStatus::Success => "success",
            ExitStatus::Error => "error",
            ExitStatus::Panic => "panic",
            ExitStatus::CpuException => "cpu-exception",
            ExitStatus::DoubleFault => "double-fault",
            ExitStatus::OutOfMemory => "out-of-memory",
        }
    }
}

/// The QEMU process status produced when the guest writes `status`.
pub fn qemu_status_for(status: u8) -> i32 {
    (((STATUS_BIAS + u32::from(status)) << 1) | 1) as i32
}

/// The unikernel's status carried by a QEMU process status, or `None` when
/// QEMU exited on its own (failure, power-off, reset).
pub fn decode_qemu_status(qemu_status: i32) -> Option<u8> {
    let min = qemu_status_for(0);
    if qemu_status >= min && qemu_status & 1 == 1 && qemu_status <= 255 {
        Some(((qemu_status - min) / 2) as u8)
    } else {
        None
    }
}

/// Makes QEMU exit with `status`. Returns only if the device is absent (the
/// image was not started by the runner); the caller then halts.
pub fn exit(status: u8) {
    let mut port: Port<u32> = Port::new(PORT);
    // SAFETY: writing to the isa-debug-exit port has no effect other than
    // stopping the machine; without the device the write is ignored.
    unsafe { port.write(STATUS_BIAS + u32::from(status)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status, in numeric order.
    const ALL: [ExitStatus; 6] = [
        ExitStatus::Success,
        ExitStatus::Error,
        ExitStatus::Panic,
        ExitStatus::CpuException,
        ExitStatus::DoubleFault,
        ExitStatus::OutOfMemory,
    ];

    #[test]
    fn every_status_survives_the_round_trip_through_qemu() {
        for status in ALL {
            let through_qemu = qemu_status_for(status.code());
            assert_eq!(decode_qemu_status(through_qemu), Some(status.code()));
        }
    }

    #[test]
    fn qemu_own_statuses_are_not_mistaken_for_a_unikernel_status() {
        assert_eq!(decode_qemu_status(0), None);
        assert_eq!(decode_qemu_status(1), None);
        assert_eq!(decode_qemu_status(2), None);
        assert_eq!(decode_qemu_status(32), None);
    }

    #[test]
    fn statuses_are_the_documented_numbers() {
        let codes: Vec<(u8, &str)> = ALL
            .iter()
            .map(|status| (status.code(), status.name()))
            .collect();
        assert_eq!(
            codes,
            [
                (0, "success"),
                (1, "error"),
                (3, "panic"),
                (4, "cpu-exception"),
                (5, "double-fault"),
                (6, "out-of-memory"),
            ]
        );
    }
}
