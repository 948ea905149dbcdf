//! Test image: allocates 1 MiB blocks until the heap is exhausted, so the
//! suite can check the out-of-memory report and status.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

unikit_kernel::unikernel!("test-out-of-memory", |_| start());

async fn start() -> Result<(), core::convert::Infallible> {
    let mut blocks = Vec::new();
    loop {
        blocks.push(vec![0xa5u8; 1 << 20]);
        log::debug!("holding {} MiB", blocks.len());
    }
}
