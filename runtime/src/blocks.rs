//! Recycled promise cells.
//!
//! A `wait`/`task` pair allocates one cell, and on bare metal the global
//! allocator may be slow (a linked-list allocator searches its free list).
//! Each executor therefore keeps the blocks of freed cells, sorted in size
//! classes of 8 bytes up to 1 KiB (each class an intrusive list threaded
//! through its free blocks, so keeping and reusing a block is a few loads
//! and stores), and hands them out again to cells of the same class: a
//! program that makes and resolves promises at a steady rate stops calling
//! the global allocator. At most [`KEEP`] blocks per class are kept; the
//! rest, larger blocks and blocks aligned beyond 16 bytes go back to the
//! global allocator at once. Everything kept is freed with the executor.
//! (Tasks, which live no longer than their executor, come from its
//! [`crate::slab`] instead.)
//!
//! A block is allocated with its class's layout, whichever cache or the
//! global allocator it came from, so any executor's cache, or the global
//! allocator, can take it back. Promise cells rely on it: they may outlive
//! the `run` that made them, and are freed through whichever executor is
//! running then ([`free_here`]), without holding a count on the one that
//! allocated them.

use alloc::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use alloc::boxed::Box;
use core::cell::Cell;
use core::ptr::NonNull;

use crate::executor;

/// The granularity of size classes.
const CLASS: usize = 8;
/// How many classes: blocks up to `CLASS * CLASSES` bytes are recycled.
const CLASSES: usize = 128;
/// The alignment of recycled blocks.
const ALIGN: usize = 16;
/// How many free blocks each class keeps at most.
const KEEP: usize = 256;

/// Free blocks by size class.
pub(crate) struct Blocks {
    /// On the heap: the executor is built on the stack, which may be small.
    free: Box<[FreeList; CLASSES]>,
}

/// The free blocks of one class, linked through their first word.
#[derive(Default)]
struct FreeList {
    head: Cell<Option<NonNull<FreeBlock>>>,
    len: Cell<usize>,
}

/// What a free block holds (every block has room for it: at least 8 bytes,
/// 16-aligned).
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
}

impl FreeList {
    fn pop(&self) -> Option<NonNull<u8>> {
        let block = self.head.get()?;
        // SAFETY: the list's blocks are unused and hold the `FreeBlock`
        // written by `push`.
        self.head.set(unsafe { block.read() }.next);
        self.len.set(self.len.get() - 1);
        Some(block.cast())
    }

    /// # Safety
    /// `ptr` is an unused block of this list's class.
    unsafe fn push(&self, ptr: NonNull<u8>) {
        let block = ptr.cast::<FreeBlock>();
        // SAFETY: unused, and large and aligned enough for a `FreeBlock`.
        unsafe {
            block.write(FreeBlock {
                next: self.head.get(),
            })
        };
        self.head.set(Some(block));
        self.len.set(self.len.get() + 1);
    }
}

impl Default for Blocks {
    fn default() -> Self {
        Blocks {
            free: Box::new(core::array::from_fn(|_| FreeList::default())),
        }
    }
}

/// The class of `layout` and the layout its blocks are allocated with, if
/// it is recycled. Inlined, like `alloc` and `free`, so that it folds away
/// for the constant layouts of callers.
#[inline]
fn class_of(layout: Layout) -> Option<(usize, Layout)> {
    if layout.align() > ALIGN || layout.size() > CLASS * CLASSES {
        return None;
    }
    let class = layout.size().div_ceil(CLASS).max(1) - 1;
    let block = Layout::from_size_align((class + 1) * CLASS, ALIGN).ok()?;
    Some((class, block))
}

/// The layout blocks for values of `layout` are allocated with.
#[inline]
fn block_layout(layout: Layout) -> Layout {
    class_of(layout).map_or(layout, |(_, block)| block)
}

fn allocate(layout: Layout) -> NonNull<u8> {
    // SAFETY: task layouts are never zero-sized (they hold a header).
    NonNull::new(unsafe { alloc(layout) }).unwrap_or_else(|| handle_alloc_error(layout))
}

impl Blocks {
    /// A block for a value of `layout` (not zero-sized).
    #[inline]
    pub(crate) fn alloc(&self, layout: Layout) -> NonNull<u8> {
        match class_of(layout) {
            Some((class, block)) => self.free[class].pop().unwrap_or_else(|| allocate(block)),
            None => allocate(layout),
        }
    }

    /// Keeps a block from [`Blocks::alloc`] if its class has room; tells
    /// whether it did. A block not kept is the caller's to give back to the
    /// global allocator, with the layout [`block_layout`] tells.
    ///
    /// # Safety
    /// `ptr` was returned by `alloc(layout)` of a `Blocks` or by
    /// [`alloc_here`]`(layout)`, its value was dropped, and it is not used
    /// again if kept.
    #[inline]
    unsafe fn keep(&self, ptr: NonNull<u8>, layout: Layout) -> bool {
        let Some((class, _)) = class_of(layout) else {
            return false;
        };
        let free = &self.free[class];
        let keep = free.len.get() < KEEP;
        if keep {
            // SAFETY: the caller gives the block up; it was allocated with
            // this class's layout.
            unsafe { free.push(ptr) };
        }
        keep
    }
}

/// A block for a value of `layout` (not zero-sized): from the running
/// executor's cache, or from the global allocator outside `run`.
#[inline]
pub(crate) fn alloc_here(layout: Layout) -> NonNull<u8> {
    executor::try_with_core(|core| core.blocks.alloc(layout))
        .unwrap_or_else(|| allocate(block_layout(layout)))
}

/// Takes back a block from [`alloc_here`] or a cache: into the running
/// executor's cache, or to the global allocator outside `run` or when the
/// cache is full.
///
/// Inlined, and with no call that can unwind: what the caller wrote to
/// memory just before can stay in registers across it, rather than be
/// read back (wide loads of its narrow stores, a store-forwarding stall).
///
/// # Safety
/// `ptr` was returned by [`alloc_here`]`(layout)` or a cache's
/// `alloc(layout)`, its value was dropped, and it is not used again.
#[inline]
pub(crate) unsafe fn free_here(ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: by the caller's contract.
    let kept = executor::try_with_core(|core| unsafe { core.blocks.keep(ptr, layout) });
    if kept != Some(true) {
        let block = block_layout(layout);
        // SAFETY: every block is allocated with its class's layout (or its
        // own, unrecycled), and this one is given up.
        unsafe { give_back(ptr, block.size(), block.align()) };
    }
}

/// Gives a block back to the global allocator. `extern "C"`, so that it is
/// known not to unwind: a global allocator must not.
///
/// # Safety
/// `ptr` was allocated with this size and alignment and is not used again.
#[inline(never)]
unsafe extern "C" fn give_back(ptr: NonNull<u8>, size: usize, align: usize) {
    // SAFETY: by the caller's contract.
    unsafe { dealloc(ptr.as_ptr(), Layout::from_size_align_unchecked(size, align)) };
}

impl Drop for Blocks {
    fn drop(&mut self) {
        for (class, free) in self.free.iter().enumerate() {
            let block =
                Layout::from_size_align((class + 1) * CLASS, ALIGN).expect("valid class layout");
            while let Some(ptr) = free.pop() {
                // SAFETY: kept blocks were allocated with their class layout
                // and are unused.
                unsafe { dealloc(ptr.as_ptr(), block) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `free_here` does, with `blocks` as the current cache.
    ///
    /// # Safety
    /// As for `free_here`.
    unsafe fn free(blocks: &Blocks, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: by the caller's contract.
        if !unsafe { blocks.keep(ptr, layout) } {
            // SAFETY: not kept, so given back, with its block's layout.
            unsafe { dealloc(ptr.as_ptr(), block_layout(layout)) };
        }
    }

    #[test]
    fn a_freed_block_is_reused_for_the_same_class() {
        let blocks = Blocks::default();
        let small = Layout::from_size_align(100, 8).unwrap();
        let a = blocks.alloc(small);
        // SAFETY: allocated just above, unused.
        unsafe { free(&blocks, a, small) };
        let b = blocks.alloc(Layout::from_size_align(104, 16).unwrap());
        assert_eq!(a, b);
        // SAFETY: as above.
        unsafe { free(&blocks, b, small) };
    }

    #[test]
    fn a_class_keeps_at_most_keep_blocks_and_hands_them_out_again() {
        let blocks = Blocks::default();
        let layout = Layout::from_size_align(48, 8).unwrap();
        let taken: alloc::vec::Vec<_> = (0..KEEP + 10).map(|_| blocks.alloc(layout)).collect();
        for &ptr in &taken {
            // SAFETY: allocated above, unused, freed once.
            unsafe { free(&blocks, ptr, layout) };
        }
        let class = &blocks.free[class_of(layout).unwrap().0];
        assert_eq!(class.len.get(), KEEP);
        // The kept blocks come back, the last freed first.
        let again: alloc::vec::Vec<_> = (0..KEEP).map(|_| blocks.alloc(layout)).collect();
        assert_eq!(class.len.get(), 0);
        assert_eq!(again[0], taken[KEEP - 1]);
        assert!(again.iter().all(|p| taken[..KEEP].contains(p)));
        for ptr in again {
            // SAFETY: as above.
            unsafe { free(&blocks, ptr, layout) };
        }
    }

    #[test]
    fn large_and_overaligned_layouts_are_not_recycled() {
        assert!(class_of(Layout::from_size_align(2048, 8).unwrap()).is_none());
        assert!(class_of(Layout::from_size_align(64, 64).unwrap()).is_none());
        assert_eq!(
            class_of(Layout::from_size_align(1, 1).unwrap()).map(|c| c.0),
            Some(0)
        );
        assert_eq!(
            class_of(Layout::from_size_align(17, 8).unwrap()).map(|c| c.0),
            Some(2)
        );
    }
}
