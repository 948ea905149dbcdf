//! `noop`: the smallest unikernel. It returns `Ok` as soon as it starts, so
//! booting it measures the toolkit's own cost: image size, boot time, and
//! the least memory a unikernel runs in.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("noop", |_| start());

async fn start() -> Result<(), core::convert::Infallible> {
    Ok(())
}
