//! `prng`: draws from the random device through `rand_core`'s traits: 32
//! bytes in hex, then one number of each width.

use alloc::string::String;
use core::fmt::Write as _;
use rand_core::CryptoRng;
use unikit_runtime::Error;

/// The unikernel. Asks for a `CryptoRng`: on bare metal that is the
/// kernel's ChaCha20 seeded from RDSEED/RDRAND.
pub async fn start(mut random: impl CryptoRng) -> Result<(), Error> {
    let mut bytes = [0u8; 32];
    random.fill_bytes(&mut bytes);
    let mut hex = String::new();
    for byte in bytes {
        let _ = write!(hex, "{byte:02x}");
    }
    log::info!("32 random bytes: {hex}");
    log::info!("u8: {}", random.next_u32() as u8);
    log::info!("u16: {}", random.next_u32() as u16);
    log::info!("u32: {}", random.next_u32());
    log::info!("u64: {}", random.next_u64());
    log::info!(
        "u128: {}",
        (u128::from(random.next_u64()) << 64) | u128::from(random.next_u64())
    );
    Ok(())
}
