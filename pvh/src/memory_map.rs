//! The boot information's memory regions, from the firmware's memory map.
//!
//! The PVH start information carries QEMU's E820 map. Each RAM entry
//! becomes a usable region, except the ranges the loader used (its own
//! image, the kernel's memory, page tables, stack and boot information, and
//! the kernel ELF QEMU placed as the initrd), which become `Bootloader`
//! regions, as the `bootloader` crate reports its own. Other entries keep
//! their E820 type. The kernel takes the largest usable region for its
//! heap, so marking used memory correctly is what keeps the heap off the
//! page tables.

use bootloader_api::info::{MemoryRegion, MemoryRegionKind};

/// The E820 type of RAM.
pub const E820_RAM: u32 = 1;

/// One entry of the firmware's memory map.
#[derive(Clone, Copy, Debug)]
pub struct FirmwareEntry {
    /// The first byte.
    pub start: u64,
    /// Its length in bytes.
    pub len: u64,
    /// The E820 type.
    pub kind: u32,
}

/// Writes the memory regions for `firmware` (sorted by address) into `out`,
/// with each range of `used` (sorted, not overlapping) inside RAM marked
/// `Bootloader`. Returns how many regions it wrote, or an error when `out`
/// is too small.
pub fn regions(
    firmware: &[FirmwareEntry],
    used: &[(u64, u64)],
    out: &mut [MemoryRegion],
) -> Result<usize, &'static str> {
    let mut count = 0;
    let mut push = |start: u64, end: u64, kind: MemoryRegionKind| {
        if start >= end {
            return Ok(());
        }
        let slot = out
            .get_mut(count)
            .ok_or("the firmware's memory map has too many entries")?;
        *slot = MemoryRegion { start, end, kind };
        count += 1;
        Ok(())
    };
    for entry in firmware {
        let end = entry.start.saturating_add(entry.len);
        if entry.kind != E820_RAM {
            push(entry.start, end, MemoryRegionKind::UnknownBios(entry.kind))?;
            continue;
        }
        let mut next = entry.start;
        for &(used_start, used_end) in used {
            let (from, to) = (used_start.max(next), used_end.min(end));
            if from < to {
                push(next, from, MemoryRegionKind::Usable)?;
                push(from, to, MemoryRegionKind::Bootloader)?;
                next = to;
            }
        }
        push(next, end, MemoryRegionKind::Usable)?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: u64, end: u64, kind: MemoryRegionKind) -> MemoryRegion {
        MemoryRegion { start, end, kind }
    }

    #[test]
    fn used_ranges_inside_ram_are_carved_out_as_bootloader_regions() {
        let firmware = [
            FirmwareEntry {
                start: 0,
                len: 0x9fc00,
                kind: E820_RAM,
            },
            FirmwareEntry {
                start: 0x9fc00,
                len: 0x400,
                kind: 2,
            },
            FirmwareEntry {
                start: 0x10_0000,
                len: 0x3ee_0000,
                kind: E820_RAM,
            },
        ];
        let used = [(0x10_0000, 0x18_0000), (0x3f0_0000, 0x3f5_0000)];
        let mut out = [MemoryRegion::empty(); 8];
        let count = regions(&firmware, &used, &mut out).expect("fits");
        assert_eq!(
            out[..count],
            [
                region(0, 0x9fc00, MemoryRegionKind::Usable),
                region(0x9fc00, 0xa0000, MemoryRegionKind::UnknownBios(2)),
                region(0x10_0000, 0x18_0000, MemoryRegionKind::Bootloader),
                region(0x18_0000, 0x3f0_0000, MemoryRegionKind::Usable),
                region(0x3f0_0000, 0x3f5_0000, MemoryRegionKind::Bootloader),
                region(0x3f5_0000, 0x3fe_0000, MemoryRegionKind::Usable),
            ]
        );
    }

    #[test]
    fn a_used_range_outside_ram_changes_nothing() {
        let firmware = [FirmwareEntry {
            start: 0x10_0000,
            len: 0x10_0000,
            kind: E820_RAM,
        }];
        let mut out = [MemoryRegion::empty(); 2];
        let count = regions(&firmware, &[(0x80_0000, 0x90_0000)], &mut out).expect("fits");
        assert_eq!(
            out[..count],
            [region(0x10_0000, 0x20_0000, MemoryRegionKind::Usable)]
        );
    }

    #[test]
    fn too_many_regions_for_the_table_is_an_error_not_a_truncated_map() {
        let firmware = [FirmwareEntry {
            start: 0,
            len: 0x10_0000,
            kind: E820_RAM,
        }];
        let mut out = [MemoryRegion::empty(); 2];
        assert!(regions(&firmware, &[(0x1000, 0x2000)], &mut out).is_err());
    }
}
