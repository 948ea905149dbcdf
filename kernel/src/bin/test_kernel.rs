//! Test image: the kernel's in-guest checks (clock calibration, exceptions,
//! heap, boot stack), run on the emulated hardware. Exits 0 when all pass.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("test-kernel", |_| start());

async fn start() -> Result<(), unikit_kernel::selftest::Failures> {
    unikit_kernel::selftest::run(unikit_kernel::selftest::checks::KERNEL)
}
