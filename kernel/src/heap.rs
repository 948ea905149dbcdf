//! The kernel heap: `alloc` for the runtime and the unikernel.
//!
//! The bootloader maps all of physical memory at an offset it reports, so the
//! heap needs no page-table work: it is the largest usable physical region,
//! used through that mapping.
//!
//! Two allocators can serve it, each an [`Arena`]:
//!
//! - [`TalcArena`], the default: `talc`, a boundary-tagged allocator that
//!   keeps its free chunks in size bins, so finding a fit does not walk
//!   every hole. On `kernel-bench`'s fragmenting workload (mixed sizes,
//!   random frees, reallocations) it is many times faster than the other.
//! - [`LinkedListArena`], with the cargo feature `linked-list-heap`:
//!   `linked_list_allocator`, the one the project's brief names, a
//!   first-fit free list whose allocation walks the holes (O(holes)).
//!
//! Both are always compiled; the feature only picks which one is
//! [`DefaultArena`], the global allocator's. The host tests below and
//! `kernel-bench` use both.
//!
//! Out of memory: Rust's `alloc` calls the global allocator and, when it
//! returns null for an infallible allocation, panics with "memory
//! allocation of N bytes failed". [`Heap`] remembers the size of the last
//! failed request (cleared by the next success), and the panic handler
//! reports a panic that follows a failed allocation as out of memory with
//! its own exit status. A failed `try_reserve` that the program handles is
//! therefore not fatal.

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Mutex;
use talc::DefaultBinning;
use talc::base::Talc;
use talc::source::Manual;

/// An allocator the heap can run on: one region of memory given once, and
/// the counts of bytes in use and free.
pub trait Arena: GlobalAlloc {
    /// The allocator's name, for reports.
    const NAME: &'static str;

    /// An arena with no memory yet: every allocation fails.
    fn empty() -> Self;

    /// Gives the arena `len` bytes at `start` to allocate from.
    ///
    /// # Safety
    ///
    /// The range is valid, writable memory that nothing else uses for as
    /// long as the arena does; `claim` is called at most once, before any
    /// allocation.
    unsafe fn claim(&self, start: *mut u8, len: usize);

    /// Bytes in use and bytes free.
    fn usage(&self) -> (usize, usize);
}

/// `talc` over one region, behind a spin lock (there is one core, and
/// interrupt handlers do not allocate).
pub struct TalcArena(Mutex<Talc<Manual, DefaultBinning>>);

impl TalcArena {
    /// An arena with no memory yet.
    pub const fn new() -> Self {
        TalcArena(Mutex::new(Talc::new(Manual)))
    }
}

impl Default for TalcArena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena for TalcArena {
    const NAME: &'static str = "talc";

    fn empty() -> Self {
        Self::new()
    }

    unsafe fn claim(&self, start: *mut u8, len: usize) {
        // SAFETY: the caller gives memory nothing else uses; `Manual`
        // allows claiming by hand. A region too small for talc's metadata
        // is left unclaimed, and every allocation then fails.
        unsafe { self.0.lock().claim(start, len) };
    }

    fn usage(&self) -> (usize, usize) {
        let counters = *self.0.lock().counters();
        (counters.allocated_bytes, counters.available_bytes)
    }
}

// SAFETY: every method hands a block talc allocated (or frees one it did),
// under the lock; the caller's GlobalAlloc contract (non-zero sizes, blocks
// freed with their layout) is the one talc asks for.
unsafe impl GlobalAlloc for TalcArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: GlobalAlloc callers never ask for zero bytes.
        unsafe { self.0.lock().allocate(layout) }.map_or(null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` was allocated here with `layout`.
        unsafe { self.0.lock().deallocate(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let mut talc = self.0.lock();
        // SAFETY: `pointer` was allocated here with `layout`, and
        // `new_size` is non-zero (GlobalAlloc::realloc's contract).
        if unsafe { talc.try_realloc_in_place(pointer, layout, new_size) } {
            return pointer;
        }
        // SAFETY: `new_size` with the old alignment is a valid layout
        // (GlobalAlloc::realloc's contract), and it is non-zero.
        let moved =
            unsafe { talc.allocate(Layout::from_size_align_unchecked(new_size, layout.align())) };
        let Some(moved) = moved else {
            return null_mut();
        };
        // SAFETY: in-place resizing fails only when growing, so the old
        // block's bytes all fit in the new one, a distinct live block; then
        // the old block is freed with its own layout.
        unsafe {
            moved
                .as_ptr()
                .copy_from_nonoverlapping(pointer, layout.size());
            talc.deallocate(pointer, layout);
        }
        moved.as_ptr()
    }
}

/// `linked_list_allocator`'s locked first-fit heap over one region.
pub struct LinkedListArena(linked_list_allocator::LockedHeap);

impl LinkedListArena {
    /// An arena with no memory yet.
    pub const fn new() -> Self {
        LinkedListArena(linked_list_allocator::LockedHeap::empty())
    }
}

impl Default for LinkedListArena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena for LinkedListArena {
    const NAME: &'static str = "linked_list_allocator";

    fn empty() -> Self {
        Self::new()
    }

    unsafe fn claim(&self, start: *mut u8, len: usize) {
        // SAFETY: the caller gives memory nothing else uses, once, before
        // any allocation.
        unsafe { self.0.lock().init(start, len) }
    }

    fn usage(&self) -> (usize, usize) {
        let heap = self.0.lock();
        (heap.used(), heap.free())
    }
}

// SAFETY: delegates to `LockedHeap`, whose GlobalAlloc implementation is
// sound.
unsafe impl GlobalAlloc for LinkedListArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds GlobalAlloc::dealloc's contract.
        unsafe { self.0.dealloc(pointer, layout) }
    }
}

/// The global allocator's arena: `talc` unless the `linked-list-heap`
/// feature asks for `linked_list_allocator`.
#[cfg(not(feature = "linked-list-heap"))]
pub type DefaultArena = TalcArena;

/// The global allocator's arena: `talc` unless the `linked-list-heap`
/// feature asks for `linked_list_allocator`.
#[cfg(feature = "linked-list-heap")]
pub type DefaultArena = LinkedListArena;

/// A heap over an [`Arena`] that remembers its last failure.
pub struct Heap<A> {
    arena: A,
    last_failed_size: AtomicUsize,
}

/// The kernel's heap type.
pub type KernelHeap = Heap<DefaultArena>;

impl<A> Heap<A> {
    /// A heap over `arena`.
    pub const fn over(arena: A) -> Self {
        Heap {
            arena,
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

    fn record(&self, pointer: *mut u8, size: usize) -> *mut u8 {
        let failed_size = if pointer.is_null() { size.max(1) } else { 0 };
        self.last_failed_size.store(failed_size, Ordering::Relaxed);
        pointer
    }
}

impl<A: Arena> Heap<A> {
    /// Gives the heap `len` bytes at `start`.
    ///
    /// # Safety
    ///
    /// As [`Arena::claim`]: memory nothing else uses, given once, before
    /// the first allocation.
    pub unsafe fn claim(&self, start: *mut u8, len: usize) {
        // SAFETY: the caller upholds Arena::claim's contract.
        unsafe { self.arena.claim(start, len) }
    }

    /// Bytes in use and bytes free.
    pub fn usage(&self) -> (usize, usize) {
        self.arena.usage()
    }
}

impl KernelHeap {
    /// An empty heap; [`init`] gives it memory.
    pub const fn new() -> Self {
        Heap::over(DefaultArena::new())
    }
}

impl Default for KernelHeap {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: delegates to the arena's GlobalAlloc implementation; the wrapper
// only records sizes.
unsafe impl<A: Arena> GlobalAlloc for Heap<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract.
        let pointer = unsafe { self.arena.alloc(layout) };
        self.record(pointer, layout.size())
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds GlobalAlloc::dealloc's contract, and
        // `pointer` came from this arena.
        unsafe { self.arena.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds GlobalAlloc::realloc's contract, and
        // `pointer` came from this arena.
        let pointer = unsafe { self.arena.realloc(pointer, layout, new_size) };
        self.record(pointer, new_size)
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
    unsafe { HEAP.claim((physical_memory_offset + start) as *mut u8, len) };
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARENA_BYTES: usize = 1 << 20;

    /// Runs `check` on a heap over a fresh 1 MiB arena of type `A`.
    fn with_heap<A: Arena>(check: impl FnOnce(&Heap<A>)) {
        let mut memory = vec![0u64; ARENA_BYTES / 8];
        let heap = Heap::over(A::empty());
        // SAFETY: `memory` outlives `heap`, and only the heap uses it.
        unsafe { heap.claim(memory.as_mut_ptr().cast(), ARENA_BYTES) };
        check(&heap);
        drop(heap);
        drop(memory);
    }

    fn allocates_writes_reallocates_and_frees<A: Arena>(heap: &Heap<A>) {
        let (used_before, free_before) = heap.usage();
        assert!(free_before > ARENA_BYTES / 2, "{}", A::NAME);
        let layout = Layout::from_size_align(100, 16).unwrap();
        // SAFETY: a non-zero layout; the block is used within its size,
        // resized with its layout and freed with the resized one.
        unsafe {
            let block = heap.alloc(layout);
            assert!(
                !block.is_null() && block.align_offset(16) == 0,
                "{}",
                A::NAME
            );
            block.write_bytes(0x5a, 100);
            assert!(heap.usage().0 >= used_before + 100, "{}", A::NAME);
            let grown = heap.realloc(block, layout, 5000);
            assert!(!grown.is_null(), "{}", A::NAME);
            assert!((0..100).all(|i| *grown.add(i) == 0x5a), "{}", A::NAME);
            heap.dealloc(grown, Layout::from_size_align(5000, 16).unwrap());
        }
        assert_eq!(heap.usage().0, used_before, "{}", A::NAME);
    }

    fn remembers_the_last_failure_until_a_success<A: Arena>(heap: &Heap<A>) {
        let too_big = Layout::from_size_align(2 * ARENA_BYTES, 8).unwrap();
        let small = Layout::from_size_align(8, 8).unwrap();
        // SAFETY: non-zero layouts; the small block is freed with its own.
        unsafe {
            assert!(heap.alloc(too_big).is_null(), "{}", A::NAME);
            assert_eq!(heap.last_failure(), Some(2 * ARENA_BYTES), "{}", A::NAME);
            let block = heap.alloc(small);
            assert_eq!(heap.last_failure(), None, "{}", A::NAME);
            let grown = heap.realloc(block, small, 2 * ARENA_BYTES);
            assert!(grown.is_null(), "{}", A::NAME);
            assert_eq!(heap.last_failure(), Some(2 * ARENA_BYTES), "{}", A::NAME);
            heap.dealloc(block, small);
        }
    }

    #[test]
    fn talc_allocates_writes_reallocates_and_frees() {
        with_heap::<TalcArena>(allocates_writes_reallocates_and_frees);
    }

    #[test]
    fn linked_list_allocates_writes_reallocates_and_frees() {
        with_heap::<LinkedListArena>(allocates_writes_reallocates_and_frees);
    }

    #[test]
    fn talc_heap_remembers_the_last_failure_until_a_success() {
        with_heap::<TalcArena>(remembers_the_last_failure_until_a_success);
    }

    #[test]
    fn linked_list_heap_remembers_the_last_failure_until_a_success() {
        with_heap::<LinkedListArena>(remembers_the_last_failure_until_a_success);
    }

    #[test]
    fn an_unclaimed_heap_fails_every_allocation() {
        let heap = Heap::over(TalcArena::new());
        // SAFETY: a non-zero layout.
        let block = unsafe { heap.alloc(Layout::new::<u64>()) };
        assert!(block.is_null());
        assert_eq!(heap.last_failure(), Some(8));
    }
}
