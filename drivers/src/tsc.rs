//! The time-stamp counter: a 64-bit cycle counter that, on every CPU QEMU
//! emulates and every CPU with an invariant TSC, ticks at a constant rate.
//!
//! The driver reads the counter and tells what CPUID says about its
//! frequency and about the local APIC's TSC-deadline timer. Calibrating it
//! against a reference clock when CPUID is silent is the kernel's policy
//! (see `unikit-kernel`'s `clock` module). CPUID's bits are read directly:
//! a general decoder costs more boot time under QEMU's TCG (where new code
//! is translated on first use) than the few bits asked for are worth.

use core::arch::x86_64::__cpuid;

/// CPUID's leaf with the TSC/crystal clock ratio.
const TSC_LEAF: u32 = 0x15;

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
    if __cpuid(0).eax < TSC_LEAF {
        return None;
    }
    let leaf = __cpuid(TSC_LEAF);
    frequency_from_leaf(leaf.eax, leaf.ebx, leaf.ecx)
}

/// The TSC frequency from leaf 0x15's ratio denominator, numerator and
/// crystal frequency in Hz; `None` where the leaf leaves any of them 0
/// (not enumerated).
pub fn frequency_from_leaf(denominator: u32, numerator: u32, crystal_hz: u32) -> Option<u64> {
    if denominator == 0 || numerator == 0 || crystal_hz == 0 {
        return None;
    }
    Some(u64::from(crystal_hz) * u64::from(numerator) / u64::from(denominator))
}

/// Whether the local APIC timer has the TSC-deadline mode:
/// CPUID.01H:ECX[24].
pub fn has_deadline_timer() -> bool {
    __cpuid(1).ecx & (1 << 24) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaf_gives_crystal_times_ratio_or_nothing_when_a_field_is_zero() {
        // A 24 MHz crystal and a 2600/24 ratio: 2.6 GHz.
        assert_eq!(
            frequency_from_leaf(24, 2600, 24_000_000),
            Some(2_600_000_000)
        );
        assert_eq!(frequency_from_leaf(2, 183, 0), None);
        assert_eq!(frequency_from_leaf(0, 183, 24_000_000), None);
        assert_eq!(frequency_from_leaf(2, 0, 24_000_000), None);
    }
}
