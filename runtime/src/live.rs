//! The list of an executor's live tasks.
//!
//! When `run` returns, the futures of tasks still pending are dropped (see
//! [`crate::executor`]), so the executor must be able to find them. Each
//! task's index in this list is kept in its header; removal swaps the last
//! task into the freed place. The list grows in fixed chunks, so growing
//! never copies it (no reallocation of a large array on bare metal) and it
//! costs 8 bytes per live task. Chunks are kept until the executor is
//! dropped.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ptr::NonNull;

use crate::task::Header;

const CHUNK: usize = 1024;

/// Live tasks, in no particular order.
#[derive(Default)]
pub(crate) struct Live {
    chunks: Vec<Box<[Option<NonNull<Header>>]>>,
    len: usize,
}

impl Live {
    /// Adds `task`; returns its index.
    pub(crate) fn push(&mut self, task: NonNull<Header>) -> usize {
        let index = self.len;
        if index / CHUNK == self.chunks.len() {
            // Built on the heap directly, not on the stack first.
            self.chunks
                .push(alloc::vec![None; CHUNK].into_boxed_slice());
        }
        self.chunks[index / CHUNK][index % CHUNK] = Some(task);
        self.len += 1;
        index
    }

    /// Removes the task at `index`; returns the task moved into its place
    /// (whose index is now `index`), if any.
    pub(crate) fn swap_remove(&mut self, index: usize) -> Option<NonNull<Header>> {
        self.len -= 1;
        let last = self.chunks[self.len / CHUNK][self.len % CHUNK].take();
        if index == self.len {
            return None;
        }
        self.chunks[index / CHUNK][index % CHUNK] = last;
        last
    }

    /// Every live task.
    pub(crate) fn iter(&self) -> impl Iterator<Item = NonNull<Header>> + '_ {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.iter())
            .take(self.len)
            .flatten()
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_remove_moves_the_last_task_into_the_hole() {
        let mut live = Live::default();
        let tasks: Vec<NonNull<Header>> = (1..=3000usize)
            .map(|i| NonNull::new(i as *mut Header).unwrap())
            .collect();
        for (i, &t) in tasks.iter().enumerate() {
            assert_eq!(live.push(t), i);
        }
        assert_eq!(live.swap_remove(5), Some(tasks[2999]));
        assert_eq!(live.swap_remove(2998), None);
        assert_eq!(live.iter().count(), 2998);
        assert!(live.iter().all(|t| t != tasks[5] && t != tasks[2998]));
    }
}
