//! Physical memory as the kernel sees it, and mapping device memory.
//!
//! The bootloader maps all of physical memory, and at least the first 4 GiB
//! (so the local APIC at 0xfee0_0000 and the I/O APIC at 0xfec0_0000 are
//! included), at one offset it reports at boot: [`phys_to_virt`] reaches any
//! of it. That mapping is cacheable, which is harmless for the APICs (the
//! firmware's MTRRs make their ranges uncacheable) but not a general answer
//! for device memory: a PCI BAR may lie above the mapped range, and must be
//! mapped uncached. [`map_mmio`] does that: it maps device pages uncached
//! (and never executable) in a window of its own, one unused top-level
//! slot of the page tables (512 GiB), allocating page-table frames from the
//! usable RAM regions the heap does not take (the heap takes the largest).

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use core::sync::atomic::{AtomicU64, Ordering};
use spin::mutex::SpinMutex;
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PageTableIndex,
    PhysFrame, Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

const PAGE_SIZE: u64 = 4096;
/// Usable regions kept for page-table frames (the rest are ignored).
const MAX_FRAME_REGIONS: usize = 16;

static PHYSICAL_MEMORY_OFFSET: AtomicU64 = AtomicU64::new(0);
/// The end of the highest usable RAM region: the linear mapping covers
/// every physical address below it.
static USABLE_RAM_END: AtomicU64 = AtomicU64::new(0);

/// Where [`map_mmio`] gets page-table frames and places mappings.
struct MmioMapper {
    frames: FrameReserve,
    /// The next free virtual address in the window (0: no window yet).
    next: u64,
    /// The end of the window.
    end: u64,
}

/// A bump allocator over the usable regions the heap does not use.
struct FrameReserve {
    regions: [(u64, u64); MAX_FRAME_REGIONS],
    count: usize,
}

// SAFETY: the frames handed out lie in usable RAM that neither the heap
// nor the bootloader's structures use, and each is handed out once.
unsafe impl FrameAllocator<Size4KiB> for FrameReserve {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        let (start, _) = self.regions[..self.count]
            .iter_mut()
            .find(|(start, end)| end.saturating_sub(*start) >= PAGE_SIZE)?;
        let frame = PhysFrame::containing_address(PhysAddr::new(*start));
        *start += PAGE_SIZE;
        Some(frame)
    }
}

static MMIO: SpinMutex<MmioMapper> = SpinMutex::new(MmioMapper {
    frames: FrameReserve {
        regions: [(0, 0); MAX_FRAME_REGIONS],
        count: 0,
    },
    next: 0,
    end: 0,
});

/// Records where the bootloader mapped physical memory, and keeps every
/// usable region but the largest (the heap's) for page-table frames.
pub fn init(physical_memory_offset: u64, regions: &MemoryRegions) {
    PHYSICAL_MEMORY_OFFSET.store(physical_memory_offset, Ordering::Relaxed);
    let ram_end = regions
        .iter()
        .filter(|region| region.kind == MemoryRegionKind::Usable)
        .map(|region| region.end)
        .max()
        .unwrap_or(0);
    USABLE_RAM_END.store(ram_end, Ordering::Relaxed);
    let largest = crate::heap::largest_usable_region(regions).map(|(start, _)| start);
    without_interrupts(|| {
        let mut mmio = MMIO.lock();
        let reserve = &mut mmio.frames;
        for region in regions.iter() {
            let start = region.start.next_multiple_of(PAGE_SIZE);
            let end = region.end & !(PAGE_SIZE - 1);
            if region.kind == MemoryRegionKind::Usable
                && Some(region.start) != largest
                && end > start
                && reserve.count < MAX_FRAME_REGIONS
            {
                reserve.regions[reserve.count] = (start, end);
                reserve.count += 1;
            }
        }
    });
}

/// The virtual address at which physical address `phys` is mapped.
pub fn phys_to_virt(phys: u64) -> u64 {
    PHYSICAL_MEMORY_OFFSET.load(Ordering::Relaxed) + phys
}

/// The physical address behind virtual address `virt` (`None` when
/// unmapped): a subtraction inside the linear mapping of RAM (where the
/// heap lies, so a heap buffer's bytes are physically contiguous), a walk
/// of the page tables elsewhere. A device driver translates both ends of a
/// buffer it shares for DMA to check it is contiguous.
pub fn virt_to_phys(virt: u64) -> Option<u64> {
    let linear = virt.checked_sub(PHYSICAL_MEMORY_OFFSET.load(Ordering::Relaxed));
    if let Some(phys) = linear.filter(|&phys| phys < USABLE_RAM_END.load(Ordering::Relaxed)) {
        return Some(phys);
    }
    let virt = VirtAddr::try_new(virt).ok()?;
    without_interrupts(|| {
        let _mmio = MMIO.lock();
        // SAFETY: the MMIO lock is held.
        let table = unsafe { active_page_table() };
        table.translate_addr(virt).map(PhysAddr::as_u64)
    })
}

/// Why device memory could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioError {
    /// No top-level page-table slot is free for the window.
    NoFreeWindow,
    /// The window (512 GiB) is used up.
    WindowFull,
    /// No RAM is left for page-table frames.
    OutOfPageTableFrames,
    /// The range is empty or wraps around.
    BadRange,
}

/// The active level-4 page table, through the physical memory map.
///
/// # Safety
/// The caller must hold the MMIO lock (the only code that changes page
/// tables after boot) so no other mutable reference exists.
unsafe fn active_page_table() -> OffsetPageTable<'static> {
    let (frame, _) = Cr3::read();
    let table = phys_to_virt(frame.start_address().as_u64()) as *mut PageTable;
    let offset = VirtAddr::new(PHYSICAL_MEMORY_OFFSET.load(Ordering::Relaxed));
    // SAFETY: CR3 names the live level-4 table, mapped at the physical
    // memory offset; the caller guarantees exclusive access.
    unsafe { OffsetPageTable::new(&mut *table, offset) }
}

/// Finds an unused higher-half top-level slot and returns its address range.
fn free_window(table: &OffsetPageTable<'_>) -> Option<(u64, u64)> {
    let level_4 = table.level_4_table();
    (256u16..512)
        .find(|&index| level_4[usize::from(index)].is_unused())
        .map(|index| {
            let start = Page::<Size4KiB>::from_page_table_indices(
                PageTableIndex::new(index),
                PageTableIndex::new(0),
                PageTableIndex::new(0),
                PageTableIndex::new(0),
            )
            .start_address()
            .as_u64();
            (start, start + (1 << 39))
        })
}

/// Maps `len` bytes of device memory at physical address `phys` uncached,
/// writable and not executable, and returns the virtual address of `phys`.
pub fn map_mmio(phys: u64, len: u64) -> Result<u64, MmioError> {
    let end = phys
        .checked_add(len)
        .filter(|_| len > 0)
        .ok_or(MmioError::BadRange)?;
    let first = phys & !(PAGE_SIZE - 1);
    let pages = (end - first).div_ceil(PAGE_SIZE);
    without_interrupts(|| {
        let mut mmio = MMIO.lock();
        // SAFETY: the MMIO lock is held.
        let mut table = unsafe { active_page_table() };
        if mmio.next == 0 {
            let (start, window_end) = free_window(&table).ok_or(MmioError::NoFreeWindow)?;
            mmio.next = start;
            mmio.end = window_end;
        }
        let base = mmio.next;
        if base + pages * PAGE_SIZE > mmio.end {
            return Err(MmioError::WindowFull);
        }
        let flags = PageTableFlags::PRESENT
            | PageTableFlags::WRITABLE
            | PageTableFlags::NO_CACHE
            | PageTableFlags::WRITE_THROUGH
            | PageTableFlags::NO_EXECUTE;
        for index in 0..pages {
            let page =
                Page::<Size4KiB>::containing_address(VirtAddr::new(base + index * PAGE_SIZE));
            let frame = PhysFrame::containing_address(PhysAddr::new(first + index * PAGE_SIZE));
            // SAFETY: the page lies in the kernel's own, previously unused
            // window, so mapping it aliases no Rust object; the frame is
            // device memory the caller names.
            let flush = unsafe { table.map_to(page, frame, flags, &mut mmio.frames) }
                .map_err(|_| MmioError::OutOfPageTableFrames)?;
            flush.flush();
        }
        mmio.next = base + pages * PAGE_SIZE;
        Ok(base + (phys - first))
    })
}
