//! The bare-metal side of unikit: boot, CPU tables, memory and the console.
//!
//! A unikernel image is one binary that invokes [`unikernel!`] with its
//! name and a closure from the kernel's [`devices::Devices`] to the
//! unikernel's future. The macro makes the binary a `bootloader_api`
//! kernel, and [`boot`] brings the machine up in this order before running
//! that future on the promise runtime's event loop over the bare-metal
//! [`platform`]:
//!
//! 1. read the TSC (time zero of every log line) and start the PIT window
//!    that calibrates it;
//! 2. the serial console on COM1 and the `log` backend ([`console`], [`logger`]);
//! 3. the GDT with a TSS whose IST stacks serve double faults and NMIs
//!    ([`gdt`]), then an IDT covering every CPU exception ([`exceptions`]);
//! 4. the heap, the largest usable RAM region through the bootloader's
//!    physical-memory mapping ([`memory`], [`heap`]);
//! 5. the runtime arguments, from QEMU's fw_cfg ([`args`]); the interrupt
//!    controllers found in ACPI's MADT ([`acpi`], [`apic`]), interrupts
//!    still off; the alarm source, whose rate measurement, if it needs one,
//!    starts now ([`alarm`]); the CSPRNG's seed ([`random`]);
//! 6. the TSC rate, from CPUID or from the PIT window ([`clock`]); log
//!    lines printed before this point read time 0;
//! 7. the wall clock from the RTC ([`wall_clock`]), the one-shot alarm
//!    source started, serial receive on IRQ4 ([`serial_input`]), then
//!    interrupts on ([`interrupts`], [`events`]).
//!
//! Steps 2 to 5 need no TSC rate, so they run inside the calibration window
//! (at least 5 ms of PIT time) instead of after it. Under QEMU's TCG most of
//! their cost is the first-time translation of their code, so boot keeps
//! its code paths short: CPUID bits read directly, the MADT walked by hand
//! without the heap (see [`acpi`]). `cargo run --release --bin kernel-bench
//! boot` measures entry to start.
//!
//! Then it prints a banner and runs the unikernel. Its outcome decides the
//! exit status ([`fatal`]): `Ok` exits 0; `Err` logs the error and exits 1; a
//! panic ([`panic`](mod@panic)), CPU exception or out-of-memory prints a one-line
//! report and exits with its own status, as tabled in
//! `unikit_drivers::qemu_exit::ExitStatus`.
//!
//! The network card is probed on first use, not at boot ([`net`]).
//!
//! [`selftest`] runs named in-guest checks for the test images.
//!
//! The crate is `no_std`, but its pure parts (log format, clock arithmetic,
//! exception decoding) are unit-tested on the host, where it builds with std.

#![cfg_attr(not(test), no_std)]
#![feature(abi_x86_interrupt)]

extern crate alloc;

pub mod acpi;
pub mod alarm;
pub mod apic;
pub mod args;
pub mod clock;
pub mod console;
pub mod devices;
pub mod events;
pub mod exceptions;
pub mod fatal;
pub mod gdt;
pub mod heap;
pub mod interrupts;
pub mod logger;
pub mod memory;
pub mod net;
#[cfg(target_os = "none")]
mod panic;
pub mod platform;
pub mod random;
pub mod selftest;
pub mod serial_input;
pub mod stack;
pub mod wall_clock;

pub use bootloader_api;

use alarm::AlarmSource;
use alloc::format;
use alloc::string::String;
use bootloader_api::BootInfo;
use bootloader_api::config::{BootloaderConfig, Mapping};
use core::fmt::Display;
use core::future::Future;
use devices::Devices;
use log::LevelFilter;
use platform::BareMetal;
use unikit_drivers::qemu_exit::ExitStatus;
use unikit_drivers::tsc;
use unikit_runtime::Runtime;

/// What every image asks of the bootloader: all of physical memory mapped
/// (the heap and, later, device memory are reached through it) and a boot
/// stack of [`stack::SIZE`].
pub const BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.kernel_stack_size = stack::SIZE;
    config
};

/// Declares a unikernel image: `unikernel!("name", |devices| future)`,
/// where the closure takes the kernel's [`devices::Devices`] and returns the
/// unikernel's future, resolving to `Result<(), E>` with `E: Display`:
///
/// ```ignore
/// unikit_kernel::unikernel!("heads1", |d| unikit_tutorial::heads1::start(d.time));
/// ```
#[macro_export]
macro_rules! unikernel {
    ($name:literal, $start:expr) => {
        // Images are built for bare metal only; when the host type-checks
        // them (clippy on the workspace), std supplies the panic handler
        // and allocator the kernel provides on bare metal.
        #[cfg(not(target_os = "none"))]
        extern crate std;

        $crate::bootloader_api::entry_point!(
            __unikit_kernel_entry,
            config = &$crate::BOOTLOADER_CONFIG
        );

        fn __unikit_kernel_entry(boot_info: &'static mut $crate::bootloader_api::BootInfo) -> ! {
            $crate::boot(boot_info, $name, $start)
        }
    };
}

/// Brings the machine up, runs the unikernel `start` returns on the event
/// loop, and exits with its outcome.
pub fn boot<F, E>(
    boot_info: &'static mut BootInfo,
    name: &str,
    start: impl FnOnce(Devices) -> F,
) -> !
where
    F: Future<Output = Result<(), E>> + 'static,
    E: Display,
{
    let entry_tsc = tsc::read();
    let calibration_window = clock::PitWindow::open(tsc::read);
    console::init();
    logger::init(LevelFilter::Info);
    gdt::init();
    exceptions::init();
    stack::init(boot_info.kernel_stack_bottom);
    let physical_memory_offset = boot_info
        .physical_memory_offset
        .into_option()
        .expect("BOOTLOADER_CONFIG asks for the physical memory mapping");
    memory::init(physical_memory_offset, &boot_info.memory_regions);
    let heap_size = heap::init(&boot_info.memory_regions, physical_memory_offset);
    let configured = configure(boot_info.rsdp_addr.into_option());
    let seed_source = random::init();
    let calibration = clock::init(entry_tsc, calibration_window);
    let alarm_source = match configured {
        Ok(prepared) => start_alarm(prepared),
        Err(error) => {
            log::error!(target: "kernel", "{name} cannot start: {error}");
            fatal::exit(ExitStatus::Error)
        }
    };
    log::info!(
        target: "kernel",
        "unikit: starting {name} (TSC {}.{:03} GHz from {}, alarm {}, seed from {}, heap {} KiB, boot took {} us)",
        calibration.tsc_hz / 1_000_000_000,
        calibration.tsc_hz / 1_000_000 % 1_000,
        calibration.source,
        alarm_source.name(),
        seed_source,
        heap_size / 1024,
        clock::now_ns() / 1_000
    );
    let unikernel = start(Devices::default());
    let outcome = Runtime::new(BareMetal).run(async move {
        unikernel
            .await
            .map_err(|error| unikit_runtime::Error::msg(format!("{error}")))
    });
    match outcome {
        Ok(()) => {
            log::debug!(target: "kernel", "{name} finished");
            fatal::exit(ExitStatus::Success)
        }
        Err(error) => {
            log::error!(target: "kernel", "{name} failed: {error}");
            fatal::exit(ExitStatus::Error)
        }
    }
}

/// Reads the runtime arguments, applies the kernel's own (`log=`,
/// `alarm=`), sets up the interrupt controllers and prepares the alarm
/// source (starting its rate measurement if it needs one). Needs no TSC
/// rate, so it runs while the PIT calibration window is open.
fn configure(rsdp: Option<u64>) -> Result<alarm::Prepared, String> {
    args::init().map_err(|error| format!("{error}"))?;
    if let Some(level) = args::get("log") {
        let level: LevelFilter = level.parse().map_err(|_| {
            format!("log={level}: expected one of off, error, warn, info, debug, trace")
        })?;
        log::set_max_level(level);
    }
    let alarm_source = match args::get("alarm") {
        None => AlarmSource::best_available(),
        Some(name) => {
            let source = AlarmSource::from_name(name).ok_or_else(|| {
                format!("alarm={name}: expected one of tsc-deadline, lapic, pit, tick-1khz")
            })?;
            if !source.is_available() {
                return Err(format!("alarm={name}: this CPU has no such timer"));
            }
            source
        }
    };
    let topology = acpi::interrupt_topology(rsdp)
        .map_err(|error| format!("cannot read the interrupt controllers from ACPI: {error:?}"))?;
    apic::init(topology, alarm_source.lapic_timer_mode());
    Ok(alarm::prepare(alarm_source))
}

/// Once the TSC rate is known: reads the wall clock, starts the alarm
/// source, enables serial receive and turns interrupts on. Returns the
/// alarm source in use.
fn start_alarm(prepared: alarm::Prepared) -> AlarmSource {
    wall_clock::init();
    let alarm_source = alarm::init(prepared);
    serial_input::enable();
    x86_64::instructions::interrupts::enable();
    alarm_source
}
