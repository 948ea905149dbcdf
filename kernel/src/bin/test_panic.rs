//! Test image: panics, so the suite can check the panic report and status.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("test-panic", |_| start());

async fn start() -> Result<(), core::convert::Infallible> {
    let answer = core::hint::black_box(41);
    panic!("deliberate panic: expected 42, got {answer}");
}
