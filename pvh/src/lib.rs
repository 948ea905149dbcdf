//! Direct boot of unikit kernels: the parts of the loader that need no
//! hardware, so they are tested on the host.
//!
//! A unikit kernel is a `bootloader_api` kernel: a position-independent
//! ELF whose `_start` takes a [`bootloader_api::BootInfo`]. The
//! `bootloader` crate boots it from a disk image through its BIOS or UEFI
//! stages, which under QEMU's TCG take over a second. QEMU can instead
//! load an ELF itself (`-kernel`) and enter it through the PVH boot
//! protocol: 32-bit protected mode, paging off, `ebx` pointing at a
//! `hvm_start_info` with the memory map and the modules (`-initrd`). The
//! loader binary (`pvh-loader`, `src/main.rs`) is such an ELF: it enters
//! long mode, loads the kernel ELF given as the initrd, and builds for it
//! what the `bootloader` crate's stages would have: the same boot
//! information, the physical-memory mapping, the kernel at its virtual base
//! and a stack with a guard page. So the same kernel ELF boots either way.
//!
//! - [`elf`] reads and relocates the kernel ELF;
//! - [`memory_map`] turns the firmware's memory map into the boot
//!   information's memory regions, marking what the loader used.

#![cfg_attr(not(test), no_std)]

pub mod elf;
pub mod memory_map;
