//! Hardware drivers for the unikit unikernels on x86_64.
//!
//! Each module owns one device and exposes its registers as operations; none
//! of them knows about the promise runtime, the console or the exit policy.
//! The kernel (`unikit-kernel`) composes them. Everything here also compiles
//! on the host so that the pure parts (encodings, arithmetic) are unit-tested
//! there; the parts that touch hardware are exercised by the in-guest checks
//! of the `selftest` image.
//!
//! | module | device |
//! |---|---|
//! | [`tsc`] | the time-stamp counter and its CPUID frequency leaves |
//! | [`pit`] | the 8254 programmable interval timer: reference clock and one-shot alarm |
//! | [`entropy`] | the CPU's `RDSEED` and `RDRAND` instructions |
//! | [`fw_cfg`] | QEMU's firmware configuration files (runtime arguments) |
//! | [`pci`] | PCI configuration space through ports 0xcf8/0xcfc: enumeration, BARs, capabilities, INTx |
//! | [`virtio_net`] | a virtio-net card on PCI: `virtio-drivers`' transport and virtqueues, with batched notifications |
//! | [`pic`] | the legacy 8259 pair, remapped and masked |
//! | [`rtc`] | the CMOS real-time clock (wall-clock time at boot) |
//! | [`qemu_exit`] | QEMU's `isa-debug-exit` device and the exit statuses it carries |

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod entropy;
pub mod fw_cfg;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod qemu_exit;
pub mod rtc;
pub mod tsc;
pub mod virtio_net;
