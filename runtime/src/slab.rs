//! Task memory: each executor carves tasks out of large chunks.
//!
//! Every spawn allocates one block for its task and every finished task
//! frees one, often a million at a time (a burst of spawned tasks that all
//! wait). The global allocator's cost per call dominated that: glibc's
//! `malloc` and `free` took about 300 of the 935 instructions of a spawn,
//! pause and join, and on bare metal a linked-list allocator searches its
//! free list. So each executor keeps, per size class, chunks of
//! [`CHUNK`] bytes (aligned to their size) and hands out their blocks:
//!
//! * a chunk's blocks are handed out in address order the first time
//!   (a bump pointer), then from the chunk's own list of freed blocks,
//!   threaded through the free blocks themselves;
//! * a freed block finds its chunk by rounding its address down to the
//!   chunk alignment, so freeing needs no lookup;
//! * each class keeps a doubly linked list of its chunks that have a free
//!   block; allocation takes from the first of them and a chunk that fills
//!   up leaves the list;
//! * a chunk whose blocks are all free again goes back to the global
//!   allocator at once, unless it is its class's only chunk with room (kept
//!   so that a task spawned and finished in a loop does not allocate a
//!   chunk each time). Memory taken by a burst of tasks is therefore given
//!   back as the tasks finish, as it was with one allocation per task.
//!
//! A class holds blocks of one *stride* (a multiple of 8 bytes up to
//! 1 KiB): a task of `size` bytes aligned to `align` uses the stride
//! `size` rounded up to `max(align, 8)`. Chunks start their blocks at a
//! 64-byte boundary, so a block of stride `s` is aligned to the largest
//! power of two dividing `s`, at least what the task needs. Larger tasks,
//! and tasks aligned beyond 16 bytes, go to the global allocator directly.
//!
//! Tasks hold a strong count on their executor, so the executor, and its
//! slab, outlive every block: when the slab is dropped all its chunks are
//! empty. Tasks are only freed on the executor's thread (see
//! [`crate::task`]), so the slab needs no synchronisation.

use alloc::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use alloc::boxed::Box;
use core::cell::Cell;
use core::ptr::NonNull;

/// The size, and alignment, of a chunk.
pub(crate) const CHUNK: usize = 64 * 1024;
/// The granularity of strides.
const GRAIN: usize = 8;
/// How many classes: strides up to `GRAIN * CLASSES` bytes.
const CLASSES: usize = 128;
/// The largest alignment served from chunks.
const MAX_ALIGN: usize = 16;
/// Where a chunk's first block starts.
const BLOCKS_START: usize = 64;

/// The chunks of every class of one executor.
pub(crate) struct Slab {
    /// On the heap: the executor is built on the stack, which may be small.
    classes: Box<[Class; CLASSES]>,
}

/// The chunks of one class that have a free block.
#[derive(Default)]
struct Class {
    available: Cell<Option<NonNull<Chunk>>>,
}

/// The header at the start of every chunk.
struct Chunk {
    /// Freed blocks, linked through their first word.
    free: Cell<Option<NonNull<FreeBlock>>>,
    /// The first block never handed out; `end` once all were.
    fresh: Cell<usize>,
    /// The end of the chunk's last whole block.
    end: usize,
    /// How many blocks are handed out.
    used: Cell<usize>,
    /// Whether the chunk is in its class's list (it has a free block).
    listed: Cell<bool>,
    prev: Cell<Option<NonNull<Chunk>>>,
    next: Cell<Option<NonNull<Chunk>>>,
}

/// What a free block holds (every stride has room for it).
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
}

const _: () = assert!(core::mem::size_of::<Chunk>() <= BLOCKS_START);

/// The class and stride of blocks for `layout`, if chunks serve it.
#[inline]
fn class_of(layout: Layout) -> Option<(usize, usize)> {
    if layout.align() > MAX_ALIGN {
        return None;
    }
    let unit = layout.align().max(GRAIN);
    let stride = layout.size().max(GRAIN).next_multiple_of(unit);
    (stride <= GRAIN * CLASSES).then(|| (stride / GRAIN - 1, stride))
}

fn chunk_layout() -> Layout {
    Layout::from_size_align(CHUNK, CHUNK).expect("a valid chunk layout")
}

impl Default for Slab {
    fn default() -> Self {
        Slab {
            classes: Box::new(core::array::from_fn(|_| Class::default())),
        }
    }
}

impl Slab {
    /// A block for a value of `layout` (not zero-sized).
    #[inline]
    pub(crate) fn alloc(&self, layout: Layout) -> NonNull<u8> {
        let Some((class, stride)) = class_of(layout) else {
            // SAFETY: task layouts are never zero-sized (they hold a header).
            let ptr = unsafe { alloc(layout) };
            return NonNull::new(ptr).unwrap_or_else(|| handle_alloc_error(layout));
        };
        let class = &self.classes[class];
        let chunk = class.available.get().unwrap_or_else(|| class.grow(stride));
        // SAFETY: listed chunks are alive.
        let header = unsafe { chunk.as_ref() };
        let block = match header.free.get() {
            Some(block) => {
                // SAFETY: a free block of this chunk holds a `FreeBlock`.
                header.free.set(unsafe { block.read() }.next);
                block.cast()
            }
            None => {
                let fresh = header.fresh.get();
                header.fresh.set(fresh + stride);
                // SAFETY: listed chunks have room: `fresh` is a block
                // inside the chunk, which is not null.
                unsafe { NonNull::new_unchecked(fresh as *mut u8) }
            }
        };
        header.used.set(header.used.get() + 1);
        if header.free.get().is_none() && header.fresh.get() == header.end {
            class.unlink(chunk);
        }
        block
    }

    /// Takes back a block from [`Slab::alloc`].
    ///
    /// # Safety
    /// `ptr` was returned by `self.alloc(layout)`, its value was dropped,
    /// and it is not used again.
    #[inline]
    pub(crate) unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        let Some((class, _)) = class_of(layout) else {
            // SAFETY: allocated with `layout` by `alloc`.
            unsafe { dealloc(ptr.as_ptr(), layout) };
            return;
        };
        let class = &self.classes[class];
        let chunk = ptr.as_ptr().map_addr(|a| a & !(CHUNK - 1)).cast::<Chunk>();
        // SAFETY: the block lies in a chunk of this class, whose header is
        // at the chunk's aligned start (not null); the chunk has a block in
        // use, so it is alive.
        let chunk = unsafe { NonNull::new_unchecked(chunk) };
        // SAFETY: as above.
        let header = unsafe { chunk.as_ref() };
        let block = ptr.cast::<FreeBlock>();
        // SAFETY: the caller gives the block up; it is large and aligned
        // enough for a `FreeBlock`.
        unsafe {
            block.write(FreeBlock {
                next: header.free.get(),
            })
        };
        header.free.set(Some(block));
        header.used.set(header.used.get() - 1);
        if !header.listed.get() {
            class.link(chunk);
        }
        if header.used.get() == 0 {
            class.release_if_spare(chunk);
        }
    }
}

impl Class {
    /// A new chunk for blocks of `stride` bytes, listed first.
    #[cold]
    #[inline(never)]
    fn grow(&self, stride: usize) -> NonNull<Chunk> {
        let layout = chunk_layout();
        // SAFETY: the layout is not zero-sized.
        let ptr = unsafe { alloc(layout) };
        let chunk = NonNull::new(ptr)
            .unwrap_or_else(|| handle_alloc_error(layout))
            .cast::<Chunk>();
        let start = chunk.addr().get() + BLOCKS_START;
        let blocks = (CHUNK - BLOCKS_START) / stride;
        // SAFETY: a fresh chunk, aligned and large enough for its header.
        unsafe {
            chunk.write(Chunk {
                free: Cell::new(None),
                fresh: Cell::new(start),
                end: start + blocks * stride,
                used: Cell::new(0),
                listed: Cell::new(false),
                prev: Cell::new(None),
                next: Cell::new(None),
            })
        };
        self.link(chunk);
        chunk
    }

    /// Puts a chunk with a free block first in the list.
    fn link(&self, chunk: NonNull<Chunk>) {
        // SAFETY: chunks handed to the class are alive, and so are the
        // listed ones.
        let header = unsafe { chunk.as_ref() };
        let head = self.available.get();
        header.prev.set(None);
        header.next.set(head);
        if let Some(head) = head {
            // SAFETY: as above.
            unsafe { head.as_ref() }.prev.set(Some(chunk));
        }
        self.available.set(Some(chunk));
        header.listed.set(true);
    }

    /// Takes a listed chunk out of the list.
    fn unlink(&self, chunk: NonNull<Chunk>) {
        // SAFETY: as in `link`.
        let header = unsafe { chunk.as_ref() };
        let (prev, next) = (header.prev.get(), header.next.get());
        match prev {
            // SAFETY: as above.
            Some(prev) => unsafe { prev.as_ref() }.next.set(next),
            None => self.available.set(next),
        }
        if let Some(next) = next {
            // SAFETY: as above.
            unsafe { next.as_ref() }.prev.set(prev);
        }
        header.listed.set(false);
    }

    /// Gives an empty, listed chunk back to the global allocator unless it
    /// is the class's only chunk with room.
    #[cold]
    #[inline(never)]
    fn release_if_spare(&self, chunk: NonNull<Chunk>) {
        // SAFETY: as in `link`.
        let header = unsafe { chunk.as_ref() };
        if self.available.get() == Some(chunk) && header.next.get().is_none() {
            return;
        }
        self.unlink(chunk);
        // SAFETY: no block of the chunk is in use and it is unlisted: nothing
        // refers to it any more; it was allocated with the chunk layout.
        unsafe { dealloc(chunk.as_ptr().cast(), chunk_layout()) };
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        for class in self.classes.iter() {
            while let Some(chunk) = class.available.get() {
                // SAFETY: listed chunks are alive.
                debug_assert_eq!(unsafe { chunk.as_ref() }.used.get(), 0);
                class.unlink(chunk);
                // SAFETY: every task is freed before its executor's slab
                // (each holds a count on the executor), so the chunk is
                // unused; it was allocated with the chunk layout.
                unsafe { dealloc(chunk.as_ptr().cast(), chunk_layout()) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn chunk_of(ptr: NonNull<u8>) -> usize {
        ptr.addr().get() & !(CHUNK - 1)
    }

    #[test]
    fn blocks_are_aligned_as_their_layout_asks() {
        let slab = Slab::default();
        for (size, align) in [(48, 8), (72, 8), (72, 16), (200, 16), (8, 1)] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let blocks: Vec<_> = (0..100).map(|_| slab.alloc(layout)).collect();
            assert!(blocks.iter().all(|b| b.addr().get() % align == 0));
            for b in blocks {
                // SAFETY: allocated above, unused, freed once.
                unsafe { slab.free(b, layout) };
            }
        }
    }

    #[test]
    fn a_freed_block_is_handed_out_again() {
        let slab = Slab::default();
        let layout = Layout::from_size_align(100, 8).unwrap();
        let keep = slab.alloc(layout);
        let a = slab.alloc(layout);
        // SAFETY: allocated above, unused, freed once.
        unsafe { slab.free(a, layout) };
        assert_eq!(slab.alloc(layout), a);
        // SAFETY: as above.
        unsafe {
            slab.free(a, layout);
            slab.free(keep, layout);
        }
    }

    #[test]
    fn empty_chunks_go_back_except_one_per_class() {
        let slab = Slab::default();
        let layout = Layout::from_size_align(1000, 8).unwrap();
        let per_chunk = (CHUNK - BLOCKS_START) / 1000;
        let blocks: Vec<_> = (0..per_chunk * 3).map(|_| slab.alloc(layout)).collect();
        let mut chunks: Vec<_> = blocks.iter().map(|&b| chunk_of(b)).collect();
        chunks.dedup();
        assert_eq!(chunks.len(), 3, "blocks fill one chunk after another");
        for b in blocks {
            // SAFETY: allocated above, unused, freed once.
            unsafe { slab.free(b, layout) };
        }
        let class = &slab.classes[class_of(layout).unwrap().0];
        let kept = class.available.get().expect("one chunk is kept");
        // SAFETY: listed chunks are alive.
        assert!(unsafe { kept.as_ref() }.next.get().is_none());
    }

    #[test]
    fn large_and_overaligned_layouts_are_not_carved_from_chunks() {
        assert!(class_of(Layout::from_size_align(2048, 8).unwrap()).is_none());
        assert!(class_of(Layout::from_size_align(64, 64).unwrap()).is_none());
        assert_eq!(
            class_of(Layout::from_size_align(72, 16).unwrap()),
            Some((9, 80))
        );
        assert_eq!(
            class_of(Layout::from_size_align(1, 1).unwrap()),
            Some((0, 8))
        );
    }
}
