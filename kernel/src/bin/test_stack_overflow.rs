//! Test image: recurses without bound, so the suite can check that a kernel
//! stack overflow is reported as such (double fault on the guard page).

#![no_std]
#![no_main]

use core::hint::black_box;

unikit_kernel::unikernel!("test-stack-overflow", |_| start());

#[allow(unconditional_recursion)] // the point of this image
fn depth_first(depth: u64) -> u64 {
    let frame = black_box([depth; 64]);
    frame[0] + depth_first(black_box(depth + 1))
}

async fn start() -> Result<(), core::convert::Infallible> {
    black_box(depth_first(0));
    Ok(())
}
