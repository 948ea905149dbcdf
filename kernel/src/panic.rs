//! The panic handler: one report line with the location and the message,
//! then exit with `Panic` (3), or `OutOfMemory` (6) when the panic follows an
//! allocation the heap could not satisfy (see [`crate::heap`]). A panic
//! inside the panic handler exits at once without formatting anything more.

use crate::fatal::{exit, report_and_exit};
use crate::heap::HEAP;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};
use unikit_drivers::qemu_exit::ExitStatus;

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    if PANICKING.swap(true, Ordering::Relaxed) {
        exit(ExitStatus::Panic);
    }
    let location = info.location();
    let file = location.map_or("<unknown>", |l| l.file());
    let line = location.map_or(0, |l| l.line());
    let column = location.map_or(0, |l| l.column());
    let message = info.message();
    if let Some(size) = HEAP.last_failure() {
        let (used, free) = HEAP.usage();
        report_and_exit(
            ExitStatus::OutOfMemory,
            format_args!(
                "out of memory: an allocation of {size} bytes failed ({used} bytes in use, {free} free) at {file}:{line}:{column}: {message}"
            ),
        )
    }
    report_and_exit(
        ExitStatus::Panic,
        format_args!("panic at {file}:{line}:{column}: {message}"),
    )
}
