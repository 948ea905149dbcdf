//! The kernel's own in-guest checks, run by the `test-kernel` image.

use super::Check;
use crate::{
    alarm, clock, ensure, events, exceptions, heap::HEAP, interrupts, memory, random, stack,
    wall_clock,
};
use alloc::string::String;
use alloc::vec::Vec;
use unikit_drivers::{entropy, pci, pit, tsc};
use x86_64::instructions::interrupts::without_interrupts;

/// Every kernel check, in the order they run.
pub const KERNEL: &[Check] = &[
    Check {
        name: "tsc_rate_agrees_with_a_second_pit_measurement",
        run: tsc_rate_agrees_with_a_second_pit_measurement,
    },
    Check {
        name: "clock_reads_a_pit_interval_as_its_length",
        run: clock_reads_a_pit_interval_as_its_length,
    },
    Check {
        name: "breakpoint_is_counted_and_execution_continues",
        run: breakpoint_is_counted_and_execution_continues,
    },
    Check {
        name: "heap_allocates_fills_and_frees",
        run: heap_allocates_fills_and_frees,
    },
    Check {
        name: "boot_stack_guard_page_lies_below_the_stack",
        run: boot_stack_guard_page_lies_below_the_stack,
    },
    Check {
        name: "alarm_wakes_a_halted_cpu_at_its_deadline",
        run: alarm_wakes_a_halted_cpu_at_its_deadline,
    },
    Check {
        name: "alarm_beyond_the_source_range_still_wakes_on_time",
        run: alarm_beyond_the_source_range_still_wakes_on_time,
    },
    Check {
        name: "rdrand_returns_distinct_values",
        run: rdrand_returns_distinct_values,
    },
    Check {
        name: "csprng_output_covers_every_byte_and_never_repeats_a_block",
        run: csprng_output_covers_every_byte_and_never_repeats_a_block,
    },
    Check {
        name: "csprng_reseeds_after_a_mebibyte",
        run: csprng_reseeds_after_a_mebibyte,
    },
    Check {
        name: "wall_clock_is_a_plausible_date_and_advances",
        run: wall_clock_is_a_plausible_date_and_advances,
    },
    Check {
        name: "mmio_mapping_reaches_the_local_apic_uncached",
        run: mmio_mapping_reaches_the_local_apic_uncached,
    },
    Check {
        name: "pci_enumeration_finds_the_host_bridge_and_the_display",
        run: pci_enumeration_finds_the_host_bridge_and_the_display,
    },
    Check {
        name: "interrupt_controllers_report_no_anomalies",
        run: interrupt_controllers_report_no_anomalies,
    },
];

/// The runner's QEMU machine (i440FX, `-vga std`) has the host bridge at
/// 00:00.0 (class 06/00) and the standard VGA (1234:1111, class 03) on bus 0.
fn pci_enumeration_finds_the_host_bridge_and_the_display() -> Result<(), String> {
    let mut found = Vec::new();
    pci::enumerate(|function| found.push(function));
    let described: Vec<String> = found
        .iter()
        .map(|f| {
            alloc::format!(
                "{:02x}:{:02x}.{} {:04x}:{:04x} class {:02x}/{:02x}",
                f.address.bus(),
                f.address.device(),
                f.address.function(),
                f.vendor,
                f.device,
                f.class,
                f.subclass
            )
        })
        .collect();
    log::info!(target: "selftest", "pci: {}", described.join(", "));
    let host_bridge = found.first();
    ensure!(
        host_bridge
            .is_some_and(|f| f.address.device() == 0 && f.class == 0x06 && f.subclass == 0x00),
        "no host bridge at 00:00.0: {described:?}"
    );
    ensure!(
        found
            .iter()
            .any(|f| (f.vendor, f.device, f.class) == (0x1234, 0x1111, 0x03)),
        "no standard VGA: {described:?}"
    );
    Ok(())
}

/// Maps the local APIC's page through `map_mmio` and reads its version
/// register there and through the physical memory map: the same device.
fn mmio_mapping_reaches_the_local_apic_uncached() -> Result<(), String> {
    const LOCAL_APIC: u64 = 0xfee0_0000;
    const VERSION: u64 = 0x30;
    let mapped = memory::map_mmio(LOCAL_APIC, 4096).map_err(|error| alloc::format!("{error:?}"))?;
    ensure!(
        mapped & 0xfff == 0,
        "mapped at {mapped:#x}, not page-aligned"
    );
    let read = |address: u64| {
        // SAFETY: both addresses map the local APIC's register page; the
        // version register is read-only and reading it has no side effect.
        unsafe { core::ptr::read_volatile((address + VERSION) as *const u32) }
    };
    let through_window = read(mapped);
    let through_offset = read(memory::phys_to_virt(LOCAL_APIC));
    ensure!(
        through_window == through_offset && through_window & 0xff != 0,
        "version {through_window:#x} through the window, {through_offset:#x} through the offset map"
    );
    let second =
        memory::map_mmio(LOCAL_APIC + 8, 16).map_err(|error| alloc::format!("{error:?}"))?;
    ensure!(
        second & 0xfff == 8 && second != mapped + 8,
        "second mapping at {second:#x}"
    );
    Ok(())
}

fn rdrand_returns_distinct_values() -> Result<(), String> {
    ensure!(entropy::has_rdrand(), "the CPU has no RDRAND");
    let values: Vec<u64> = (0..8).filter_map(|_| entropy::rdrand()).collect();
    ensure!(
        values.len() == 8,
        "RDRAND failed {} times of 8",
        8 - values.len()
    );
    let mut sorted = values.clone();
    sorted.sort_unstable();
    sorted.dedup();
    ensure!(sorted.len() == 8, "RDRAND repeated itself: {values:x?}");
    Ok(())
}

fn csprng_output_covers_every_byte_and_never_repeats_a_block() -> Result<(), String> {
    let mut output = alloc::vec![0u8; 64 * 1024];
    random::fill_bytes(&mut output);
    let mut seen = [false; 256];
    output
        .iter()
        .for_each(|&byte| seen[usize::from(byte)] = true);
    ensure!(
        seen.iter().all(|&s| s),
        "some byte values never appear in 64 KiB"
    );
    let mut blocks: Vec<&[u8; 16]> = output.as_chunks::<16>().0.iter().collect();
    blocks.sort_unstable();
    ensure!(
        blocks.windows(2).all(|pair| pair[0] != pair[1]),
        "a 16-byte block repeats"
    );
    Ok(())
}

fn csprng_reseeds_after_a_mebibyte() -> Result<(), String> {
    let before = random::reseeds();
    let mut chunk = alloc::vec![0u8; 64 * 1024];
    for _ in 0..=(random::RESEED_BYTES / chunk.len() as u64) {
        random::fill_bytes(&mut chunk);
    }
    ensure!(
        random::reseeds() > before,
        "no reseed after {} bytes",
        random::RESEED_BYTES
    );
    Ok(())
}

/// Logs the wall clock (the host test compares it with the host's) and
/// checks it is after 2025 and moves with the monotonic clock.
fn wall_clock_is_a_plausible_date_and_advances() -> Result<(), String> {
    const JANUARY_2025: u64 = 1_735_689_600;
    let wall = wall_clock::now_unix_ns();
    log::info!(target: "selftest", "wall clock {}", wall / 1_000_000_000);
    ensure!(
        wall / 1_000_000_000 > JANUARY_2025,
        "the RTC says {wall} ns since 1970"
    );
    let mono = clock::now_ns();
    alarm::sleep_until(mono + 5_000_000);
    let advanced = wall_clock::now_unix_ns() - wall;
    ensure!(
        advanced >= 5_000_000,
        "the wall clock advanced {advanced} ns in 5 ms"
    );
    Ok(())
}

/// Halts until `delay_ns` from now through the alarm, and returns how late
/// the CPU woke and how many alarm interrupts it took.
fn sleep_and_measure(delay_ns: u64) -> (u64, u32) {
    let deadline = clock::now_ns() + delay_ns;
    let mut wakeups = 0;
    while alarm::arm(deadline) {
        events::wait_for_interrupt();
        if events::ALARM.take() {
            wakeups += 1;
        }
    }
    (clock::now_ns() - deadline, wakeups)
}

/// A 20 ms sleep halts the CPU and is ended by the alarm interrupt, late by
/// less than 20 ms (TCG on a shared host can be slow; the benchmark
/// measures the real lateness).
fn alarm_wakes_a_halted_cpu_at_its_deadline() -> Result<(), String> {
    let (late, wakeups) = sleep_and_measure(20_000_000);
    ensure!(wakeups >= 1, "no alarm interrupt arrived");
    ensure!(
        late < 20_000_000,
        "woke {late} ns late with the {:?} alarm",
        alarm::source()
    );
    Ok(())
}

/// 120 ms is more than the PIT's 16-bit counter times in one shot: the
/// sleep re-arms and still ends on time.
fn alarm_beyond_the_source_range_still_wakes_on_time() -> Result<(), String> {
    let (late, wakeups) = sleep_and_measure(120_000_000);
    ensure!(wakeups >= 1, "no alarm interrupt arrived");
    ensure!(
        late < 20_000_000,
        "woke {late} ns late with the {:?} alarm",
        alarm::source()
    );
    if alarm::source() == Some(alarm::AlarmSource::Pit) {
        ensure!(
            wakeups >= 3,
            "the PIT cannot time 120 ms in {wakeups} shot(s)"
        );
    }
    Ok(())
}

fn interrupt_controllers_report_no_anomalies() -> Result<(), String> {
    let (spurious, apic_errors) = interrupts::anomalies();
    ensure!(apic_errors == 0, "{apic_errors} local APIC errors");
    ensure!(spurious == 0, "{spurious} spurious interrupts");
    Ok(())
}

/// Calibration is done once at boot over a short window; an independent
/// measurement over a 20 ms window must agree within 1%.
fn tsc_rate_agrees_with_a_second_pit_measurement() -> Result<(), String> {
    let measured =
        without_interrupts(|| clock::measure_tsc_rate(clock::PitWindow::open(tsc::read), 20_000));
    let booted = clock::tsc_hz();
    let deviation_permille = measured.abs_diff(booted) * 1000 / booted.max(1);
    ensure!(
        deviation_permille <= 10,
        "boot calibration {booted} Hz, now {measured} Hz ({deviation_permille} per mille apart)"
    );
    Ok(())
}

/// The monotonic clock reads a 20 ms PIT interval as 20 ms within 1%.
fn clock_reads_a_pit_interval_as_its_length() -> Result<(), String> {
    let (elapsed_ns, pit_ticks) = without_interrupts(|| {
        loop {
            let window = clock::PitWindow::open(clock::now_ns);
            if let Some(measured) = window.close(20_000, clock::now_ns) {
                break measured;
            }
        }
    });
    let expected_ns = pit_ticks * 1_000_000_000 / pit::FREQUENCY_HZ;
    let deviation_permille = elapsed_ns.abs_diff(expected_ns) * 1000 / expected_ns;
    ensure!(
        deviation_permille <= 10,
        "{pit_ticks} PIT ticks ({expected_ns} ns) read as {elapsed_ns} ns"
    );
    Ok(())
}

fn breakpoint_is_counted_and_execution_continues() -> Result<(), String> {
    let before = exceptions::breakpoints_handled();
    x86_64::instructions::interrupts::int3();
    let after = exceptions::breakpoints_handled();
    ensure!(
        after == before + 1,
        "breakpoints handled: {before} before, {after} after"
    );
    Ok(())
}

fn heap_allocates_fills_and_frees() -> Result<(), String> {
    let (used_before, _) = HEAP.usage();
    let blocks: Vec<Vec<u32>> = (0..64u32)
        .map(|i| (0..4096).map(|j| i ^ j).collect())
        .collect();
    for (i, block) in (0u32..).zip(&blocks) {
        ensure!(
            block.iter().zip(0u32..).all(|(&value, j)| value == i ^ j),
            "block {i} lost its contents"
        );
    }
    let (used_during, _) = HEAP.usage();
    ensure!(
        used_during >= used_before + 64 * 4096 * 4,
        "heap use grew from {used_before} only to {used_during} bytes"
    );
    drop(blocks);
    let (used_after, _) = HEAP.usage();
    ensure!(
        used_after == used_before,
        "heap use {used_before} before, {used_after} after freeing everything"
    );
    Ok(())
}

fn boot_stack_guard_page_lies_below_the_stack() -> Result<(), String> {
    let local = 0u8;
    let here = core::ptr::addr_of!(local) as u64;
    ensure!(
        !stack::is_guard_page_address(here),
        "a live stack variable at {here:#x} is taken for the guard page"
    );
    Ok(())
}
