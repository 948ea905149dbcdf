//! What the kernel reads from ACPI: the interrupt topology in the MADT.
//!
//! The bootloader hands over the RSDP's physical address; the `acpi` crate
//! walks the tables through [`PhysicalMemoryMap`], which reaches them through
//! the bootloader's physical-memory mapping (so "mapping" a region is only
//! an addition). From the MADT the kernel keeps the local APIC's address,
//! the first I/O APIC, and the ISA interrupt source overrides that say which
//! I/O APIC input each legacy IRQ arrives on, with which polarity and
//! trigger mode.

use crate::memory;
use acpi::platform::interrupt::{InterruptModel, Polarity, TriggerMode};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use alloc::vec::Vec;
use core::ptr::NonNull;

/// Resolves ACPI's physical addresses through the physical-memory mapping.
#[derive(Clone, Copy, Debug)]
pub struct PhysicalMemoryMap;

impl AcpiHandler for PhysicalMemoryMap {
    unsafe fn map_physical_region<T>(
        &self,
        physical: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let virt = memory::phys_to_virt(physical as u64) as *mut T;
        let virt = NonNull::new(virt).expect("the physical memory map is above address 0");
        // SAFETY: all physical memory is mapped at the offset `phys_to_virt`
        // adds, for the kernel's whole lifetime; the region is exactly the
        // one asked for, so mapped and region lengths agree.
        unsafe { PhysicalMapping::new(physical, virt, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// How a legacy ISA IRQ reaches the I/O APIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaRoute {
    /// The global system interrupt (I/O APIC input across all I/O APICs).
    pub gsi: u32,
    /// Active low instead of ISA's default active high.
    pub active_low: bool,
    /// Level triggered instead of ISA's default edge.
    pub level_triggered: bool,
}

/// The interrupt controllers of the machine.
#[derive(Debug)]
pub struct InterruptTopology {
    /// Physical address of the local APIC's registers.
    pub local_apic: u64,
    /// Physical address of the first I/O APIC's registers.
    pub io_apic: u64,
    /// The first GSI that I/O APIC serves.
    pub io_apic_gsi_base: u32,
    overrides: Vec<(u8, IsaRoute)>,
}

impl InterruptTopology {
    /// Where ISA IRQ `irq` arrives: its override, or identity and ISA's
    /// defaults (edge, active high) when there is none.
    pub fn isa_route(&self, irq: u8) -> IsaRoute {
        self.overrides
            .iter()
            .find(|(source, _)| *source == irq)
            .map_or(
                IsaRoute {
                    gsi: u32::from(irq),
                    active_low: false,
                    level_triggered: false,
                },
                |(_, route)| *route,
            )
    }
}

/// Why the interrupt topology could not be read.
#[derive(Debug)]
pub enum AcpiError {
    /// The bootloader found no RSDP.
    NoRsdp,
    /// The tables were malformed or missing.
    Tables(acpi::AcpiError),
    /// The firmware describes no APIC (only the legacy PIC).
    NoApic,
    /// The MADT lists no I/O APIC.
    NoIoApic,
}

/// Reads the MADT from the tables rooted at the RSDP.
pub fn interrupt_topology(rsdp: Option<u64>) -> Result<InterruptTopology, AcpiError> {
    let rsdp = rsdp.ok_or(AcpiError::NoRsdp)?;
    // SAFETY: the bootloader found the RSDP at this physical address, and
    // the handler maps physical memory correctly.
    let tables = unsafe { AcpiTables::from_rsdp(PhysicalMemoryMap, rsdp as usize) }
        .map_err(AcpiError::Tables)?;
    let platform = tables.platform_info().map_err(AcpiError::Tables)?;
    let InterruptModel::Apic(apic) = platform.interrupt_model else {
        return Err(AcpiError::NoApic);
    };
    let io_apic = apic.io_apics.first().ok_or(AcpiError::NoIoApic)?;
    let overrides = apic
        .interrupt_source_overrides
        .iter()
        .map(|iso| {
            (
                iso.isa_source,
                IsaRoute {
                    gsi: iso.global_system_interrupt,
                    active_low: matches!(iso.polarity, Polarity::ActiveLow),
                    level_triggered: matches!(iso.trigger_mode, TriggerMode::Level),
                },
            )
        })
        .collect();
    Ok(InterruptTopology {
        local_apic: apic.local_apic_address,
        io_apic: u64::from(io_apic.address),
        io_apic_gsi_base: io_apic.global_system_interrupt_base,
        overrides,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn isa_irqs_without_override_map_to_themselves_edge_and_active_high() {
        let topology = InterruptTopology {
            local_apic: 0xfee0_0000,
            io_apic: 0xfec0_0000,
            io_apic_gsi_base: 0,
            overrides: vec![(
                0,
                IsaRoute {
                    gsi: 2,
                    active_low: false,
                    level_triggered: false,
                },
            )],
        };
        assert_eq!(topology.isa_route(0).gsi, 2);
        assert_eq!(
            topology.isa_route(4),
            IsaRoute {
                gsi: 4,
                active_low: false,
                level_triggered: false
            }
        );
    }
}
