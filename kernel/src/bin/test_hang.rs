//! Test image: never exits, so the suite can check that the runner's
//! `--timeout` kills a hung guest with a clear message and status 124.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("test-hang", |_| start());

async fn start() -> Result<(), core::convert::Infallible> {
    log::info!("hanging with interrupts off");
    x86_64::instructions::interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}
