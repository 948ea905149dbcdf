//! Test image: `start` returns an error, which must be logged and exit 1.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("test-error", |_| start());

async fn start() -> Result<(), &'static str> {
    Err("deliberate error: the test-error image always fails")
}
