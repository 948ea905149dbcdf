//! What the kernel reads from ACPI: the interrupt topology in the MADT.
//!
//! The bootloader hands over the RSDP's physical address. From it the
//! kernel follows the root table (the XSDT, or the RSDT on ACPI 1.0) to the
//! MADT (signature `APIC`), checking each structure's signature, length and
//! checksum, and walks the MADT's entries. It keeps the local APIC's address
//! (or its 64-bit override), the first I/O APIC, and the ISA interrupt
//! source overrides that say which I/O APIC input each legacy IRQ arrives
//! on, with which polarity and trigger mode, in a fixed table (no heap:
//! under TCG even the allocator's first use costs boot time). Every table
//! is reached through the bootloader's mapping of all physical memory
//! ([`memory::phys_to_virt`]).
//!
//! This is a few dozen lines rather than the `acpi` crate: the kernel needs
//! one table of the dozens the crate understands, and under QEMU's TCG,
//! where every new piece of code is translated on first use, the crate's
//! table discovery alone cost about 1.5 ms of a boot whose target is 10 ms.
//! The walk is written against a reader of physical memory, so it is
//! unit-tested on the host over tables built in a buffer.

use crate::memory;

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
    /// The override of each ISA IRQ (0-15), if it has one.
    overrides: [Option<IsaRoute>; ISA_IRQS],
}

/// ISA has IRQs 0-15.
const ISA_IRQS: usize = 16;

impl InterruptTopology {
    /// Where ISA IRQ `irq` arrives: its override, or identity and ISA's
    /// defaults (edge, active high) when there is none.
    pub fn isa_route(&self, irq: u8) -> IsaRoute {
        self.overrides
            .get(usize::from(irq))
            .copied()
            .flatten()
            .unwrap_or(IsaRoute {
                gsi: u32::from(irq),
                active_low: false,
                level_triggered: false,
            })
    }
}

/// Why the interrupt topology could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// The bootloader found no RSDP.
    NoRsdp,
    /// A structure's signature, length or checksum is wrong: which one.
    Malformed(&'static str),
    /// The root table lists no MADT: the firmware describes no APIC.
    NoApic,
    /// The MADT lists no I/O APIC.
    NoIoApic,
}

/// ISA's defaults (edge, active high) apply where an override's MPS INTI
/// flags say "conforms to the bus" (0b00); 0b11 means active low or level
/// triggered.
pub fn isa_route_from_flags(gsi: u32, flags: u16) -> IsaRoute {
    IsaRoute {
        gsi,
        active_low: flags & 0b11 == 0b11,
        level_triggered: (flags >> 2) & 0b11 == 0b11,
    }
}

/// Bytes of a system description table's header.
const HEADER_LEN: usize = 36;
/// Bytes of the MADT before its entries: header, local APIC address, flags.
const MADT_ENTRIES_START: usize = HEADER_LEN + 8;

/// Reads the MADT from the tables rooted at the RSDP.
pub fn interrupt_topology(rsdp: Option<u64>) -> Result<InterruptTopology, AcpiError> {
    let rsdp = rsdp.ok_or(AcpiError::NoRsdp)?;
    // SAFETY: the bootloader maps all physical memory, the firmware's ACPI
    // tables included, for the kernel's lifetime, and nothing writes to
    // those tables.
    interrupt_topology_in(rsdp, |phys, len| unsafe {
        core::slice::from_raw_parts(memory::phys_to_virt(phys) as *const u8, len)
    })
}

/// Reads the MADT from the tables rooted at the RSDP at `rsdp`, reading
/// `len` bytes of physical memory at `phys` with `read`.
pub fn interrupt_topology_in<'a>(
    rsdp: u64,
    read: impl Fn(u64, usize) -> &'a [u8],
) -> Result<InterruptTopology, AcpiError> {
    let rsdp_v1 = read(rsdp, 20);
    if &rsdp_v1[..8] != b"RSD PTR " || !sums_to_zero(rsdp_v1) {
        return Err(AcpiError::Malformed("RSDP"));
    }
    let (root, entry_len) = if rsdp_v1[15] >= 2 {
        let rsdp_v2 = read(rsdp, 36);
        if !sums_to_zero(rsdp_v2) {
            return Err(AcpiError::Malformed("RSDP"));
        }
        (table(&read, le_u64(rsdp_v2, 24), "XSDT")?, 8)
    } else {
        (table(&read, u64::from(le_u32(rsdp_v1, 16)), "RSDT")?, 4)
    };
    let madt = root[HEADER_LEN..]
        .chunks_exact(entry_len)
        .map(|entry| {
            if entry_len == 8 {
                le_u64(entry, 0)
            } else {
                u64::from(le_u32(entry, 0))
            }
        })
        .find(|&phys| read(phys, 4) == b"APIC")
        .ok_or(AcpiError::NoApic)?;
    parse_madt(table(&read, madt, "APIC")?)
}

/// The table with `signature` at `phys`, its length and checksum checked.
fn table<'a>(
    read: &impl Fn(u64, usize) -> &'a [u8],
    phys: u64,
    signature: &'static str,
) -> Result<&'a [u8], AcpiError> {
    let header = read(phys, HEADER_LEN);
    let len = le_u32(header, 4) as usize;
    if &header[..4] != signature.as_bytes() || len < HEADER_LEN {
        return Err(AcpiError::Malformed(signature));
    }
    let table = read(phys, len);
    if !sums_to_zero(table) {
        return Err(AcpiError::Malformed(signature));
    }
    Ok(table)
}

/// The interrupt topology a checked MADT describes.
pub fn parse_madt(madt: &[u8]) -> Result<InterruptTopology, AcpiError> {
    if madt.len() < MADT_ENTRIES_START {
        return Err(AcpiError::Malformed("APIC"));
    }
    let mut local_apic = u64::from(le_u32(madt, HEADER_LEN));
    let mut io_apic = None;
    let mut overrides = [None; ISA_IRQS];
    let mut rest = &madt[MADT_ENTRIES_START..];
    while let [kind, len, ..] = *rest {
        let len = usize::from(len);
        if len < 2 || len > rest.len() {
            return Err(AcpiError::Malformed("APIC"));
        }
        let entry = &rest[..len];
        match (kind, len) {
            (1, 12..) if io_apic.is_none() => {
                io_apic = Some((u64::from(le_u32(entry, 4)), le_u32(entry, 8)));
            }
            // Bus 0 is ISA, the only bus interrupt source overrides name.
            (2, 10..) if entry[2] == 0 && usize::from(entry[3]) < ISA_IRQS => {
                let flags = u16::from_le_bytes([entry[8], entry[9]]);
                overrides[usize::from(entry[3])] =
                    Some(isa_route_from_flags(le_u32(entry, 4), flags));
            }
            (5, 12..) => local_apic = le_u64(entry, 4),
            _ => {}
        }
        rest = &rest[len..];
    }
    let (io_apic, io_apic_gsi_base) = io_apic.ok_or(AcpiError::NoIoApic)?;
    Ok(InterruptTopology {
        local_apic,
        io_apic,
        io_apic_gsi_base,
        overrides,
    })
}

/// ACPI's checksum: all bytes of a structure add up to 0 (mod 256).
fn sums_to_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte)) == 0
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from(le_u32(bytes, at)) | u64::from(le_u32(bytes, at + 4)) << 32
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn isa_irqs_without_override_map_to_themselves_edge_and_active_high() {
        let topology = InterruptTopology {
            local_apic: 0xfee0_0000,
            io_apic: 0xfec0_0000,
            io_apic_gsi_base: 0,
            overrides: {
                let mut overrides = [None; ISA_IRQS];
                overrides[0] = Some(isa_route_from_flags(2, 0));
                overrides
            },
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

    #[test]
    fn override_flags_give_polarity_and_trigger_mode() {
        let conforming = isa_route_from_flags(9, 0b0000);
        assert!(!conforming.active_low && !conforming.level_triggered);
        // QEMU's SCI override: active high, level triggered.
        let sci = isa_route_from_flags(9, 0b1101);
        assert!(!sci.active_low && sci.level_triggered);
        let pci_like = isa_route_from_flags(11, 0b1111);
        assert!(pci_like.active_low && pci_like.level_triggered);
        assert_eq!(pci_like.gsi, 11);
    }

    /// Sets a table's length and checksum byte (offset 9) in place.
    fn seal(table: &mut [u8], checksum_at: usize) {
        table[checksum_at] = 0;
        let sum = table.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte));
        table[checksum_at] = sum.wrapping_neg();
    }

    fn header(signature: &[u8; 4], len: usize) -> Vec<u8> {
        let mut table = vec![0u8; len];
        table[..4].copy_from_slice(signature);
        table[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        table
    }

    /// QEMU's layout: an RSDP (revision 2) at 0, an XSDT at 0x40 listing a
    /// FACP at 0x80 and the MADT at 0x100, whose entries are `entries`.
    fn firmware(entries: &[&[u8]]) -> Vec<u8> {
        let mut memory = vec![0u8; 0x400];
        let mut rsdp = [0u8; 36];
        rsdp[..8].copy_from_slice(b"RSD PTR ");
        rsdp[15] = 2;
        rsdp[20..24].copy_from_slice(&36u32.to_le_bytes());
        rsdp[24..32].copy_from_slice(&0x40u64.to_le_bytes());
        seal(&mut rsdp[..20], 8);
        seal(&mut rsdp, 32);
        memory[..36].copy_from_slice(&rsdp);
        let mut xsdt = header(b"XSDT", HEADER_LEN + 16);
        xsdt[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&0x80u64.to_le_bytes());
        xsdt[HEADER_LEN + 8..].copy_from_slice(&0x100u64.to_le_bytes());
        seal(&mut xsdt, 9);
        memory[0x40..0x40 + xsdt.len()].copy_from_slice(&xsdt);
        let mut facp = header(b"FACP", HEADER_LEN);
        seal(&mut facp, 9);
        memory[0x80..0x80 + facp.len()].copy_from_slice(&facp);
        let len = MADT_ENTRIES_START + entries.iter().map(|entry| entry.len()).sum::<usize>();
        let mut madt = header(b"APIC", len);
        madt[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&0xfee0_0000u32.to_le_bytes());
        let mut at = MADT_ENTRIES_START;
        for entry in entries {
            madt[at..at + entry.len()].copy_from_slice(entry);
            at += entry.len();
        }
        seal(&mut madt, 9);
        memory[0x100..0x100 + madt.len()].copy_from_slice(&madt);
        memory
    }

    const LOCAL_APIC: &[u8] = &[0, 8, 0, 0, 1, 0, 0, 0];
    const IO_APIC: &[u8] = &[1, 12, 0, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0];
    /// IRQ0 arrives on GSI 2, conforming to the bus.
    const IRQ0_OVERRIDE: &[u8] = &[2, 10, 0, 0, 2, 0, 0, 0, 0, 0];
    /// IRQ9 (the SCI) on GSI 9, active high, level triggered.
    const IRQ9_OVERRIDE: &[u8] = &[2, 10, 0, 9, 9, 0, 0, 0, 0x0d, 0];

    fn topology_of(memory: &[u8]) -> Result<InterruptTopology, AcpiError> {
        interrupt_topology_in(0, |phys, len| &memory[phys as usize..][..len])
    }

    #[test]
    fn the_madt_found_through_the_xsdt_gives_the_apics_and_overrides() {
        let memory = firmware(&[LOCAL_APIC, IO_APIC, IRQ0_OVERRIDE, IRQ9_OVERRIDE]);
        let topology = topology_of(&memory).unwrap();
        assert_eq!(topology.local_apic, 0xfee0_0000);
        assert_eq!(topology.io_apic, 0xfec0_0000);
        assert_eq!(topology.io_apic_gsi_base, 0);
        assert_eq!(topology.isa_route(0), isa_route_from_flags(2, 0));
        assert_eq!(topology.isa_route(9), isa_route_from_flags(9, 0x0d));
        assert_eq!(topology.isa_route(4), isa_route_from_flags(4, 0));
    }

    #[test]
    fn a_local_apic_address_override_replaces_the_32_bit_address() {
        let local_override: &[u8] = &[5, 12, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0];
        let memory = firmware(&[IO_APIC, local_override]);
        assert_eq!(topology_of(&memory).unwrap().local_apic, 0x10_0000_0000);
    }

    #[test]
    fn a_bad_checksum_or_entry_length_is_refused_not_followed() {
        let mut memory = firmware(&[IO_APIC]);
        memory[0x100 + MADT_ENTRIES_START + 4] ^= 1;
        assert_eq!(
            topology_of(&memory).unwrap_err(),
            AcpiError::Malformed("APIC")
        );
        let zero_length: &[u8] = &[1, 0];
        let memory = firmware(&[IO_APIC, zero_length]);
        assert_eq!(
            topology_of(&memory).unwrap_err(),
            AcpiError::Malformed("APIC")
        );
        let mut memory = firmware(&[IO_APIC]);
        memory[0] = b'X';
        assert_eq!(
            topology_of(&memory).unwrap_err(),
            AcpiError::Malformed("RSDP")
        );
    }

    #[test]
    fn a_madt_without_an_io_apic_is_an_error() {
        let memory = firmware(&[LOCAL_APIC]);
        assert_eq!(topology_of(&memory).unwrap_err(), AcpiError::NoIoApic);
    }
}
