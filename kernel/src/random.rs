//! Random numbers: a ChaCha20 CSPRNG seeded from the CPU's entropy
//! instructions and reseeded as it is used.
//!
//! The seed comes from `RDSEED` (the entropy source itself), else `RDRAND`
//! (the CPU's own reseeded DRBG), else, with a warning, from TSC jitter,
//! which is not secure. The generator reseeds after [`RESEED_BYTES`] of
//! output or [`RESEED_NANOS`] of time, whichever comes first: the new key
//! is fresh hardware entropy XORed with the generator's own next output, so
//! it is never weaker than either. The generator sits behind a lock taken
//! with interrupts disabled; interrupt handlers do not use it.

use crate::clock;
use core::fmt;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use spin::mutex::SpinMutex;
use unikit_drivers::{entropy, tsc};
use x86_64::instructions::interrupts::without_interrupts;

/// Output after which the generator reseeds.
pub const RESEED_BYTES: u64 = 1 << 20;
/// Time after which the generator reseeds.
pub const RESEED_NANOS: u64 = 60_000_000_000;

/// Where the seed came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedSource {
    /// The `RDSEED` instruction.
    Rdseed,
    /// The `RDRAND` instruction.
    Rdrand,
    /// Timing jitter of the TSC: not secure.
    TscJitter,
}

impl fmt::Display for SeedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SeedSource::Rdseed => "RDSEED",
            SeedSource::Rdrand => "RDRAND",
            SeedSource::TscJitter => "TSC jitter (not secure)",
        })
    }
}

struct Generator {
    chacha: ChaCha20Rng,
    bytes_since_reseed: u64,
    reseeded_at: u64,
    reseeds: u64,
}

static GENERATOR: SpinMutex<Option<Generator>> = SpinMutex::new(None);

/// 32 bytes of seed from the best source the CPU has.
fn hardware_seed() -> ([u8; 32], SeedSource) {
    let mut seed = [0u8; 32];
    let source = if entropy::rdseed().is_some() {
        SeedSource::Rdseed
    } else if entropy::rdrand().is_some() {
        SeedSource::Rdrand
    } else {
        SeedSource::TscJitter
    };
    for chunk in seed.as_chunks_mut::<8>().0 {
        let word = match source {
            SeedSource::Rdseed => entropy::rdseed(),
            SeedSource::Rdrand => entropy::rdrand(),
            SeedSource::TscJitter => None,
        }
        .unwrap_or_else(tsc_jitter);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    (seed, source)
}

/// 64 bits gathered from the low bits of TSC deltas around port I/O.
fn tsc_jitter() -> u64 {
    (0..64).fold(0u64, |acc, _| {
        let before = tsc::read();
        entropy::has_rdrand();
        acc.rotate_left(1) ^ (tsc::read() - before)
    })
}

/// Seeds the generator. Call once at boot.
pub fn init() -> SeedSource {
    let (seed, source) = hardware_seed();
    if source == SeedSource::TscJitter {
        log::warn!(target: "kernel", "no RDSEED or RDRAND: random numbers are seeded from TSC jitter and are not secure");
    }
    let generator = Generator {
        chacha: ChaCha20Rng::from_seed(seed),
        bytes_since_reseed: 0,
        reseeded_at: clock::now_ns(),
        reseeds: 0,
    };
    without_interrupts(|| *GENERATOR.lock() = Some(generator));
    source
}

/// Fills `buffer` with random bytes.
pub fn fill_bytes(buffer: &mut [u8]) {
    without_interrupts(|| {
        let mut guard = GENERATOR.lock();
        let Some(generator) = guard.as_mut() else {
            return;
        };
        let now = clock::now_ns();
        if generator.bytes_since_reseed >= RESEED_BYTES
            || now - generator.reseeded_at >= RESEED_NANOS
        {
            let (mut seed, _) = hardware_seed();
            let mut own = [0u8; 32];
            generator.chacha.fill_bytes(&mut own);
            seed.iter_mut()
                .zip(own)
                .for_each(|(byte, mixed)| *byte ^= mixed);
            generator.chacha = ChaCha20Rng::from_seed(seed);
            generator.bytes_since_reseed = 0;
            generator.reseeded_at = now;
            generator.reseeds += 1;
        }
        generator.chacha.fill_bytes(buffer);
        generator.bytes_since_reseed += buffer.len() as u64;
    });
}

/// How many times the generator has reseeded since boot.
pub fn reseeds() -> u64 {
    without_interrupts(|| {
        GENERATOR
            .lock()
            .as_ref()
            .map_or(0, |generator| generator.reseeds)
    })
}
