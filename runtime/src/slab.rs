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
//! # Finding the live tasks
//!
//! When `run` returns, the executor drops the futures of the tasks still
//! pending (see [`crate::executor`]), so it must find them. The slab finds
//! them without a list of its own, which would cost a word and two updates
//! per task: every class also links all its chunks, and a free block is
//! marked by a zero in its second word, where a live block holds a task
//! header's vtable reference (never null); blocks past a chunk's bump
//! pointer were never used. [`Slab::for_each`] walks them.
//!
//! A class holds blocks of one *stride* (a multiple of 8 bytes up to
//! 1 KiB): a task of `size` bytes aligned to `align` uses the stride
//! `size` rounded up to `max(align, 8)`. Chunks start their blocks at a
//! 128-byte boundary, so a block of stride `s` is aligned to the largest
//! power of two dividing `s`, at least what the task needs. Larger tasks,
//! and tasks aligned beyond 16 bytes, go to the global allocator, each
//! behind a small header that links it into the slab's list of large
//! blocks.
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
const BLOCKS_START: usize = 128;
/// The offset of the word of a block that is zero when the block is free
/// and never zero while a value the slab serves lives in it.
pub(crate) const LIVE_WORD: usize = 8;

/// The chunks of every class of one executor, and its large blocks.
pub(crate) struct Slab {
    /// On the heap: the executor is built on the stack, which may be small.
    classes: Box<[Class; CLASSES]>,
    /// The large blocks, each behind a `Large` header.
    large: Links<Large>,
}

/// The chunks of one class: those with a free block, and all of them.
#[derive(Default)]
struct Class {
    available: Links<Chunk>,
    all: Links<Chunk>,
}

/// The head of an intrusive doubly linked list.
struct Links<N> {
    head: Cell<Option<NonNull<N>>>,
}

impl<N> Default for Links<N> {
    fn default() -> Self {
        Links {
            head: Cell::new(None),
        }
    }
}

/// The links of a node in one list.
struct Link<N> {
    prev: Cell<Option<NonNull<N>>>,
    next: Cell<Option<NonNull<N>>>,
}

impl<N> Default for Link<N> {
    fn default() -> Self {
        Link {
            prev: Cell::new(None),
            next: Cell::new(None),
        }
    }
}

/// A node of one or more lists; `which` selects the list's links.
trait Node: Sized {
    fn links(&self, which: usize) -> &Link<Self>;
}

/// The header at the start of every chunk.
struct Chunk {
    /// Freed blocks, linked through their first word.
    free: Cell<Option<NonNull<FreeBlock>>>,
    /// The first block never handed out; `end` once all were.
    fresh: Cell<usize>,
    /// The end of the chunk's last whole block.
    end: usize,
    /// The size of its blocks.
    stride: usize,
    /// How many blocks are handed out.
    used: Cell<usize>,
    /// Whether the chunk is in its class's `available` list.
    listed: Cell<bool>,
    /// Links in `available` ([`AVAILABLE`]) and `all` ([`ALL`]).
    links: [Link<Chunk>; 2],
}

const AVAILABLE: usize = 0;
const ALL: usize = 1;

impl Node for Chunk {
    fn links(&self, which: usize) -> &Link<Self> {
        &self.links[which]
    }
}

/// The header before a large block.
struct Large {
    link: Link<Large>,
    /// Where the block starts, from the header (its alignment decides).
    offset: usize,
}

impl Node for Large {
    fn links(&self, _: usize) -> &Link<Self> {
        &self.link
    }
}

/// What a free block holds (every stride has room for it): the second word
/// is the zero that marks it free.
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
    free_mark: usize,
}

const _: () = assert!(core::mem::size_of::<Chunk>() <= BLOCKS_START);
const _: () = assert!(core::mem::offset_of!(FreeBlock, free_mark) == LIVE_WORD);

/// The class and stride of blocks for `layout`, if chunks serve it.
#[inline]
fn class_of(layout: Layout) -> Option<(usize, usize)> {
    if layout.align() > MAX_ALIGN {
        return None;
    }
    let unit = layout.align().max(GRAIN);
    let stride = layout
        .size()
        .max(core::mem::size_of::<FreeBlock>())
        .next_multiple_of(unit);
    (stride <= GRAIN * CLASSES).then(|| (stride / GRAIN - 1, stride))
}

fn chunk_layout() -> Layout {
    Layout::from_size_align(CHUNK, CHUNK).expect("a valid chunk layout")
}

/// The layout of a large block behind its header, and the block's offset.
fn large_layout(layout: Layout) -> (Layout, usize) {
    Layout::new::<Large>()
        .extend(layout)
        .expect("a task layout fits with its header")
}

impl<N: Node> Links<N> {
    /// Puts `node` first in the list.
    ///
    /// # Safety
    /// `node` and every node in the list are alive; `node` is not in it.
    unsafe fn push(&self, node: NonNull<N>, which: usize) {
        // SAFETY: by the caller's contract.
        let link = unsafe { node.as_ref() }.links(which);
        let head = self.head.get();
        link.prev.set(None);
        link.next.set(head);
        if let Some(head) = head {
            // SAFETY: as above.
            unsafe { head.as_ref() }.links(which).prev.set(Some(node));
        }
        self.head.set(Some(node));
    }

    /// Takes `node` out of the list.
    ///
    /// # Safety
    /// `node` is in the list, whose nodes are alive.
    unsafe fn remove(&self, node: NonNull<N>, which: usize) {
        // SAFETY: by the caller's contract.
        let link = unsafe { node.as_ref() }.links(which);
        let (prev, next) = (link.prev.get(), link.next.get());
        match prev {
            // SAFETY: as above.
            Some(prev) => unsafe { prev.as_ref() }.links(which).next.set(next),
            None => self.head.set(next),
        }
        if let Some(next) = next {
            // SAFETY: as above.
            unsafe { next.as_ref() }.links(which).prev.set(prev);
        }
    }

    /// Every node, first to last.
    ///
    /// # Safety
    /// The nodes are alive and the list does not change while the iterator
    /// is used.
    unsafe fn iter(&self, which: usize) -> impl Iterator<Item = NonNull<N>> + '_ {
        core::iter::successors(self.head.get(), move |node| {
            // SAFETY: by the caller's contract.
            unsafe { node.as_ref() }.links(which).next.get()
        })
    }
}

impl Default for Slab {
    fn default() -> Self {
        Slab {
            classes: Box::new(core::array::from_fn(|_| Class::default())),
            large: Links::default(),
        }
    }
}

impl Slab {
    /// A block for a value of `layout`, whose word at [`LIVE_WORD`] the
    /// caller sets to non-zero before anything else runs and keeps so until
    /// it frees the block.
    #[inline]
    pub(crate) fn alloc(&self, layout: Layout) -> NonNull<u8> {
        let Some((class, stride)) = class_of(layout) else {
            return self.alloc_large(layout);
        };
        let class = &self.classes[class];
        let chunk = class
            .available
            .head
            .get()
            .unwrap_or_else(|| class.grow(stride));
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
                chunk.cast::<u8>().with_addr(
                    // A listed chunk has room: `fresh` is a block inside it.
                    fresh.try_into().expect("a block address is not null"),
                )
            }
        };
        header.used.set(header.used.get() + 1);
        if header.free.get().is_none() && header.fresh.get() == header.end {
            class.unlist(chunk);
        }
        block
    }

    #[cold]
    #[inline(never)]
    fn alloc_large(&self, layout: Layout) -> NonNull<u8> {
        let (full, offset) = large_layout(layout);
        // SAFETY: the layout is not zero-sized (it holds a header).
        let ptr = unsafe { alloc(full) };
        let large = NonNull::new(ptr)
            .unwrap_or_else(|| handle_alloc_error(full))
            .cast::<Large>();
        // SAFETY: a fresh allocation, aligned for its header and large
        // enough for the block at `offset`; listed large blocks are alive.
        unsafe {
            large.write(Large {
                link: Link::default(),
                offset,
            });
            self.large.push(large, 0);
            large.cast::<u8>().add(offset)
        }
    }

    /// Takes back a block from [`Slab::alloc`].
    ///
    /// # Safety
    /// `ptr` was returned by `self.alloc(layout)`, its value was dropped,
    /// and it is not used again.
    #[inline]
    pub(crate) unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        let Some((class, _)) = class_of(layout) else {
            // SAFETY: by the caller's contract.
            return unsafe { self.free_large(ptr, layout) };
        };
        let class = &self.classes[class];
        let chunk = ptr
            .cast::<Chunk>()
            .map_addr(|a| (a.get() & !(CHUNK - 1)).try_into().expect("not null"));
        // SAFETY: the block lies in a chunk of this class, whose header is
        // at the chunk's aligned start; the chunk has a block in use, so it
        // is alive.
        let header = unsafe { chunk.as_ref() };
        let block = ptr.cast::<FreeBlock>();
        // SAFETY: the caller gives the block up; it is large and aligned
        // enough for a `FreeBlock`.
        unsafe {
            block.write(FreeBlock {
                next: header.free.get(),
                free_mark: 0,
            })
        };
        header.free.set(Some(block));
        header.used.set(header.used.get() - 1);
        if !header.listed.get() {
            class.relist(chunk);
        }
        if header.used.get() == 0 {
            class.release_if_spare(chunk);
        }
    }

    /// # Safety
    /// As for [`Slab::free`], for a large block.
    #[cold]
    #[inline(never)]
    unsafe fn free_large(&self, ptr: NonNull<u8>, layout: Layout) {
        let (full, offset) = large_layout(layout);
        // SAFETY: `alloc_large` put the header `offset` bytes before the
        // block and listed it.
        unsafe {
            let large = ptr.sub(offset).cast::<Large>();
            self.large.remove(large, 0);
            dealloc(large.as_ptr().cast(), full);
        }
    }

    /// Calls `f` with every block handed out and not freed yet.
    ///
    /// # Safety
    /// Every block handed out has its word at [`LIVE_WORD`] set (see
    /// [`Slab::alloc`]); `f` neither allocates nor frees blocks.
    pub(crate) unsafe fn for_each(&self, mut f: impl FnMut(NonNull<u8>)) {
        for class in self.classes.iter() {
            // SAFETY: listed chunks are alive and `f` changes no list.
            for chunk in unsafe { class.all.iter(ALL) } {
                // SAFETY: as above.
                let header = unsafe { chunk.as_ref() };
                let start = chunk.addr().get() + BLOCKS_START;
                for addr in (start..header.fresh.get()).step_by(header.stride) {
                    let block = chunk
                        .cast::<u8>()
                        .with_addr(addr.try_into().expect("not null"));
                    // SAFETY: a block below the bump pointer was handed out
                    // once: it holds a `FreeBlock` or a live value, which
                    // both have a word at `LIVE_WORD`.
                    let mark = unsafe { block.add(LIVE_WORD).cast::<usize>().read() };
                    if mark != 0 {
                        f(block);
                    }
                }
            }
        }
        // SAFETY: listed large blocks are alive and `f` changes no list.
        for large in unsafe { self.large.iter(0) } {
            // SAFETY: the block is `offset` bytes after its header.
            f(unsafe { large.cast::<u8>().add(large.as_ref().offset) });
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
        // SAFETY: a fresh chunk, aligned and large enough for its header;
        // the chunks in the lists are alive.
        unsafe {
            chunk.write(Chunk {
                free: Cell::new(None),
                fresh: Cell::new(start),
                end: start + blocks * stride,
                stride,
                used: Cell::new(0),
                listed: Cell::new(false),
                links: [Link::default(), Link::default()],
            });
            self.all.push(chunk, ALL);
        }
        self.relist(chunk);
        chunk
    }

    /// Puts a chunk that has a free block again first in `available`.
    fn relist(&self, chunk: NonNull<Chunk>) {
        // SAFETY: the class's chunks are alive; this one is not listed.
        unsafe {
            self.available.push(chunk, AVAILABLE);
            chunk.as_ref().listed.set(true);
        }
    }

    /// Takes a full chunk out of `available`.
    fn unlist(&self, chunk: NonNull<Chunk>) {
        // SAFETY: the class's chunks are alive; this one is listed.
        unsafe {
            self.available.remove(chunk, AVAILABLE);
            chunk.as_ref().listed.set(false);
        }
    }

    /// Gives an empty, listed chunk back to the global allocator unless it
    /// is the class's only chunk with room.
    #[cold]
    #[inline(never)]
    fn release_if_spare(&self, chunk: NonNull<Chunk>) {
        // SAFETY: the class's chunks are alive.
        let header = unsafe { chunk.as_ref() };
        let only = self.available.head.get() == Some(chunk)
            && header.links[AVAILABLE].next.get().is_none();
        if !only {
            self.unlist(chunk);
            // SAFETY: no block of the chunk is in use, so once out of the
            // lists nothing refers to it; it was allocated with the chunk
            // layout.
            unsafe {
                self.all.remove(chunk, ALL);
                dealloc(chunk.as_ptr().cast(), chunk_layout());
            }
        }
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        for class in self.classes.iter() {
            while let Some(chunk) = class.all.head.get() {
                // SAFETY: the chunks in the list are alive. Every task is
                // freed before its executor's slab (each holds a count on
                // the executor), so the chunk is unused; it was allocated
                // with the chunk layout.
                unsafe {
                    debug_assert_eq!(chunk.as_ref().used.get(), 0);
                    class.all.remove(chunk, ALL);
                    dealloc(chunk.as_ptr().cast(), chunk_layout());
                }
            }
        }
        debug_assert!(self.large.head.get().is_none(), "large tasks are freed");
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
        let kept = class.all.head.get().expect("one chunk is kept");
        assert_eq!(class.available.head.get(), Some(kept));
        // SAFETY: listed chunks are alive.
        assert!(unsafe { kept.as_ref() }.links[ALL].next.get().is_none());
    }

    #[test]
    fn for_each_finds_the_blocks_in_use_and_only_them() {
        let slab = Slab::default();
        let small = Layout::from_size_align(64, 8).unwrap();
        let large = Layout::from_size_align(4096, 64).unwrap();
        let mut blocks: Vec<_> = (0..3000).map(|_| slab.alloc(small)).collect();
        let big = slab.alloc(large);
        assert_eq!(big.addr().get() % 64, 0);
        for &b in blocks.iter().chain([&big]) {
            // SAFETY: blocks of at least 16 bytes, just allocated.
            unsafe { b.add(LIVE_WORD).cast::<usize>().write(1) };
        }
        for b in blocks.drain(..1000) {
            // SAFETY: allocated above, unused, freed once.
            unsafe { slab.free(b, small) };
        }
        let mut found = Vec::new();
        // SAFETY: every block in use has its live word set.
        unsafe { slab.for_each(|b| found.push(b)) };
        let mut expected = blocks.clone();
        expected.push(big);
        found.sort();
        expected.sort();
        assert_eq!(found, expected);
        // SAFETY: allocated above, unused, freed once.
        unsafe {
            slab.free(big, large);
            blocks.into_iter().for_each(|b| slab.free(b, small));
        }
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
            Some((1, 16)),
            "a block has room for a free block's two words"
        );
    }
}
