//! The unikit runner: builds every unikernel's disk images (in `build.rs`)
//! and boots one of them under QEMU with its serial console on the terminal.
//!
//! `cargo run -- <unikernel> [options]` is the whole interface (see
//! [`cli`]). The runner finds the image in the table the build script
//! generated ([`images`]), makes sure QEMU (and OVMF for UEFI) is installed
//! ([`host`]), starts QEMU with the console on its stdout ([`qemu`]), and
//! exits with the unikernel's own exit status, decoded from QEMU's.

pub mod cli;
pub mod console_log;
pub mod host;
pub mod images;
pub mod network;
pub mod qemu;
