//! Physical memory as the kernel sees it.
//!
//! The bootloader maps all of physical memory, and at least the first 4 GiB
//! (so the local APIC at 0xfee0_0000 and the I/O APIC at 0xfec0_0000 are
//! included), at one offset it reports at boot. A physical address is
//! reached by adding that offset: [`phys_to_virt`]. Under QEMU the caching
//! attributes of that mapping do not matter for device registers; on real
//! hardware the firmware's MTRRs make the APIC ranges uncacheable.

use core::sync::atomic::{AtomicU64, Ordering};

static PHYSICAL_MEMORY_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Records where the bootloader mapped physical memory.
pub fn init(physical_memory_offset: u64) {
    PHYSICAL_MEMORY_OFFSET.store(physical_memory_offset, Ordering::Relaxed);
}

/// The virtual address at which physical address `phys` is mapped.
pub fn phys_to_virt(phys: u64) -> u64 {
    PHYSICAL_MEMORY_OFFSET.load(Ordering::Relaxed) + phys
}
