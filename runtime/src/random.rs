//! The runtime's seeded random numbers.
//!
//! `choose` and `pick` select at random among promises that are already
//! resolved, as Lwt does; the choice comes from a generator owned by the
//! running executor and seeded by [`crate::Platform::seed`] (or
//! [`crate::Runtime::seed`]), so a run on simulated time is reproducible.
//! Programs may draw from the same generator for test inputs (the tutorial's
//! dummy input generator does). It is SplitMix64: fast and well mixed, not
//! cryptographic.

use core::cell::Cell;

use crate::executor::with_core;

/// SplitMix64.
pub(crate) struct Prng {
    state: Cell<u64>,
}

impl Prng {
    pub(crate) fn new(seed: u64) -> Self {
        Prng {
            state: Cell::new(seed),
        }
    }

    pub(crate) fn next_u64(&self) -> u64 {
        let s = self.state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (Lemire's multiply-shift; `bound` > 0).
    pub(crate) fn below(&self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// A random `u64` from the running executor's generator.
///
/// # Panics
/// Outside [`crate::run`].
#[track_caller]
pub fn random_u64() -> u64 {
    with_core(|core| core.rng().next_u64())
}

/// A random number in `0..bound` from the running executor's generator.
///
/// # Panics
/// Outside [`crate::run`], or if `bound` is zero.
#[track_caller]
pub fn random_below(bound: u64) -> u64 {
    assert!(bound > 0, "random_below(0)");
    with_core(|core| core.rng().below(bound))
}
