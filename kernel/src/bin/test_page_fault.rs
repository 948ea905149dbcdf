//! Test image: writes to an unmapped address, so the suite can check the
//! page-fault report (address, access kind, instruction) and status.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("test-page-fault", |_| start());

/// Canonical, and far above any mapping the bootloader makes.
const UNMAPPED: usize = 0x0000_7ead_beef_0000;

async fn start() -> Result<(), core::convert::Infallible> {
    let target = core::ptr::with_exposed_provenance_mut::<u64>(UNMAPPED);
    // SAFETY: deliberately not sound: this image exists to page-fault, and
    // the kernel's page-fault handler stops the machine before anything
    // could observe the write.
    unsafe { target.write_volatile(42) };
    Ok(())
}
