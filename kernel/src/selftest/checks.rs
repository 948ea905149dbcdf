//! The kernel's own in-guest checks, run by the `test-kernel` image.

use super::Check;
use crate::{alarm, clock, ensure, events, exceptions, heap::HEAP, interrupts, stack};
use alloc::string::String;
use alloc::vec::Vec;
use unikit_drivers::pit;
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
        name: "interrupt_controllers_report_no_anomalies",
        run: interrupt_controllers_report_no_anomalies,
    },
];

/// Halts until `delay_ns` from now through the alarm, and returns how late
/// the CPU woke and how many alarm interrupts it took.
fn sleep_and_measure(delay_ns: u64) -> (u64, u32) {
    let deadline = clock::now_ns() + delay_ns;
    let mut wakeups = 0;
    while clock::now_ns() < deadline {
        alarm::arm(deadline);
        events::wait_for_interrupt();
        if events::take() & events::ALARM != 0 {
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

/// Calibration is done once at boot; a second, independent measurement over
/// longer PIT windows (median of five) must agree within 2%.
fn tsc_rate_agrees_with_a_second_pit_measurement() -> Result<(), String> {
    let measured = without_interrupts(|| clock::measure_tsc_rate(10_000, 5));
    let booted = clock::tsc_hz();
    let deviation_permille = measured.abs_diff(booted) * 1000 / booted.max(1);
    ensure!(
        deviation_permille <= 20,
        "boot calibration {booted} Hz, now {measured} Hz ({deviation_permille} per mille apart)"
    );
    Ok(())
}

/// The monotonic clock advances, and reads a 10 ms PIT interval as 10 ms
/// within 10% (median of five intervals: the host is shared and may
/// deschedule the guest inside one of them).
fn clock_reads_a_pit_interval_as_its_length() -> Result<(), String> {
    let ticks = pit::ticks_for_micros(10_000);
    let mut lengths = [0u64; 5];
    let mut end = 0;
    for length in &mut lengths {
        let (start, stop) = without_interrupts(|| pit::measure(ticks, clock::now_ns));
        *length = stop - start;
        end = stop;
    }
    let elapsed = clock::median(&mut lengths);
    ensure!(
        (9_000_000..=11_000_000).contains(&elapsed),
        "a 10 ms PIT interval read as {elapsed} ns (median of five)"
    );
    ensure!(
        clock::now_ns() > end,
        "the clock did not advance after the interval"
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
