//! The time-stamp counter: a 64-bit cycle counter that, on every CPU QEMU
//! emulates and every CPU with an invariant TSC, ticks at a constant rate.
//!
//! The driver reads the counter and tells what CPUID says about its
//! frequency. Calibrating it against a reference clock when CPUID is silent
//! is the kernel's policy (see `unikit-kernel`'s `clock` module).

use raw_cpuid::CpuId;

/// Reads the time-stamp counter.
#[inline]
pub fn read() -> u64 {
    // SAFETY: rdtsc has no side effects and is available on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The TSC frequency in Hz as CPUID leaf 0x15 states it (crystal clock times
/// the TSC/crystal ratio), or `None` when the CPU does not enumerate it.
/// Leaf 0x16's "base frequency" is deliberately not used: it is a marketing
/// figure in MHz that QEMU's TCG does not tie to the counter's real rate.
pub fn frequency_from_cpuid() -> Option<u64> {
    let info = CpuId::new().get_tsc_info()?;
    info.tsc_frequency().filter(|&hz| hz > 0)
}
