//! The kernel heap: `alloc` for the runtime and the unikernel.
//!
//! The bootloader maps all of physical memory at an offset it reports, so the
//! heap needs no page-table work: it is the largest usable physical region,
//! used through that mapping. The allocator is `linked_list_allocator`, the
//! one the project's brief names (a first-fit free list).
//!
//! Out of memory: Rust's `alloc` calls the global allocator and, when it
//! returns null for an infallible allocation, panics with "memory
//! allocation of N bytes failed". The wrapper below remembers the size of
//! the last failed request (cleared by the next success), and the panic
//! handler reports a panic that follows a failed allocation as out of memory
//! with its own exit status. A failed `try_reserve` that the program handles
//! is therefore not fatal.

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};
use linked_list_allocator::LockedHeap;

/// The global allocator: a free-list heap that remembers its last failure.
pub struct KernelHeap {
    heap: LockedHeap,
    last_failed_size: AtomicUsize,
}

impl KernelHeap {
    /// An empty heap; [`init`] gives it memory.
    pub const fn new() -> Self {
        KernelHeap {
            heap: LockedHeap::empty(),
            last_failed_size: AtomicUsize::new(0),
        }
    }

    /// The size of the allocation that failed most recently, if no
    /// allocation has succeeded since.
    pub fn last_failure(&self) -> Option<usize> {
        match self.last_failed_size.load(Ordering::Relaxed) {
            0 => None,
            size => Some(size),
        }
    }

    /// Bytes in use and bytes free.
    pub fn usage(&self) -> (usize, usize) {
        let heap = self.heap.lock();
        (heap.used(), heap.free())
    }
}

impl Default for KernelHeap {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: delegates to `LockedHeap`, whose GlobalAlloc implementation is
// sound; the wrapper only records sizes.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract.
        let pointer = unsafe { self.heap.alloc(layout) };
        let failed_size = if pointer.is_null() {
            layout.size().max(1)
        } else {
            0
        };
        self.last_failed_size.store(failed_size, Ordering::Relaxed);
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds GlobalAlloc::dealloc's contract, and
        // `pointer` came from `self.heap`.
        unsafe { self.heap.dealloc(pointer, layout) }
    }
}

/// The global allocator of every unikernel image.
#[cfg(target_os = "none")]
#[global_allocator]
pub static HEAP: KernelHeap = KernelHeap::new();

/// Stand-in on the host (tests, clippy), where std's allocator serves.
#[cfg(not(target_os = "none"))]
pub static HEAP: KernelHeap = KernelHeap::new();

/// The largest usable physical region, as (start, length).
pub fn largest_usable_region(regions: &MemoryRegions) -> Option<(u64, u64)> {
    regions
        .iter()
        .filter(|region| region.kind == MemoryRegionKind::Usable)
        .map(|region| (region.start, region.end - region.start))
        .max_by_key(|&(_, len)| len)
}

/// Gives the heap the largest usable region, reached through the physical
/// memory mapping at `physical_memory_offset`. Returns the heap's size.
pub fn init(regions: &MemoryRegions, physical_memory_offset: u64) -> usize {
    let Some((start, len)) = largest_usable_region(regions) else {
        return 0;
    };
    let len = len as usize;
    // SAFETY: the region is usable RAM that the bootloader handed to the
    // kernel and nothing else uses; the bootloader mapped all physical memory
    // at `physical_memory_offset`, so the range is mapped and writable; this
    // runs once, before the first allocation.
    unsafe {
        HEAP.heap
            .lock()
            .init((physical_memory_offset + start) as *mut u8, len);
    }
    len
}
