//! The CPU's hardware random number instructions.
//!
//! `RDSEED` returns output of the entropy source itself (meant for seeding);
//! `RDRAND` returns output of a CSPRNG the CPU reseeds from that source.
//! Either can transiently fail (carry flag clear) when drained; the driver
//! retries a bounded number of times, as Intel's guidance says, and reports
//! failure rather than spinning forever.

use core::arch::x86_64::{__cpuid, __cpuid_count, _rdrand64_step, _rdseed64_step};

const RETRIES: usize = 64;

/// Whether the CPU has `RDRAND`: CPUID.01H:ECX[30]. The bit is read
/// directly: a general CPUID decoder costs more boot time under QEMU's TCG
/// (where new code is translated on first use) than the two bits it is
/// asked for are worth.
pub fn has_rdrand() -> bool {
    __cpuid(1).ecx & (1 << 30) != 0
}

/// Whether the CPU has `RDSEED`: CPUID.(EAX=07H,ECX=0):EBX[18], when leaf 7
/// exists.
pub fn has_rdseed() -> bool {
    __cpuid(0).eax >= 7 && __cpuid_count(7, 0).ebx & (1 << 18) != 0
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
