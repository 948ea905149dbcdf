//! The CPU's hardware random number instructions.
//!
//! `RDSEED` returns output of the entropy source itself (meant for seeding);
//! `RDRAND` returns output of a CSPRNG the CPU reseeds from that source.
//! Either can transiently fail (carry flag clear) when drained; the driver
//! retries a bounded number of times, as Intel's guidance says, and reports
//! failure rather than spinning forever.

use core::arch::x86_64::{_rdrand64_step, _rdseed64_step};
use raw_cpuid::CpuId;

const RETRIES: usize = 64;

/// Whether the CPU has `RDRAND`.
pub fn has_rdrand() -> bool {
    CpuId::new()
        .get_feature_info()
        .is_some_and(|features| features.has_rdrand())
}

/// Whether the CPU has `RDSEED`.
pub fn has_rdseed() -> bool {
    CpuId::new()
        .get_extended_feature_info()
        .is_some_and(|features| features.has_rdseed())
}

/// 64 bits from `RDSEED`, or `None` if the CPU lacks it or it stays empty.
pub fn rdseed() -> Option<u64> {
    if !has_rdseed() {
        return None;
    }
    // SAFETY: CPUID says the CPU implements RDSEED.
    (0..RETRIES).find_map(|_| unsafe { rdseed_step() })
}

/// 64 bits from `RDRAND`, or `None` if the CPU lacks it or it keeps failing.
pub fn rdrand() -> Option<u64> {
    if !has_rdrand() {
        return None;
    }
    // SAFETY: CPUID says the CPU implements RDRAND.
    (0..RETRIES).find_map(|_| unsafe { rdrand_step() })
}

#[target_feature(enable = "rdseed")]
unsafe fn rdseed_step() -> Option<u64> {
    let mut value = 0;
    (_rdseed64_step(&mut value) == 1).then_some(value)
}

#[target_feature(enable = "rdrand")]
unsafe fn rdrand_step() -> Option<u64> {
    let mut value = 0;
    (_rdrand64_step(&mut value) == 1).then_some(value)
}
