//! The unikernels of the MirageOS Lwt tutorial (the seeds' 000 and 002) and
//! MirageOS's skeleton, each written once as an `async fn` generic over the
//! device traits of `unikit_runtime::devices`, so the same code boots as a
//! kernel image (`cargo run -- heads1`) and runs as a host program on real
//! or simulated time (`cargo run -p unikit-tutorial -- heads1 --simulated 7`).
//!
//! | unikernel | what it does |
//! |---|---|
//! | [`hello`] | `hello` four times, one second apart |
//! | [`hello_key`] | the same with the text of the runtime argument `hello` |
//! | [`heads1`] | `Heads` at 1 s, `Tails` at 2 s, then `Finished` (join) |
//! | [`heads2`] | the same with `both` |
//! | [`echo_server`] | ten lines from the dummy input generator, each logged |
//! | [`echo_console`] | echoes lines typed on the console until `quit` or ten lines |
//! | [`timeout1`] | `Cancelled` or `Returned "Heads"` at exactly 2 s, with `state` and `cancel` |
//! | [`timeout2`] | the same with `pick`, returning as soon as the thread does |
//! | [`speaking_clock`] | every second, the elapsed nanoseconds and the wall time |
//! | [`prng`] | 32 random bytes in hex and one random number of each width |
//! | [`mailbox`] | seed 003: a bounded stream, an MVar and a condition between a producer and a consumer |
//! | [`network`] | MirageOS's device-usage/network: a TCP service logging and echoing what it reads |
//! | [`udp_echo`] | sends every UDP datagram back |
//! | [`http`] | HTTP/1.1 with keep-alive: `hello mirage world!` at `/`, 404 elsewhere |
//!
//! Each module's `start` is the unikernel; the kernel binds it in
//! `kernel/src/bin/<name>.rs` and the host program in `src/bin/host.rs`.

#![no_std]

extern crate alloc;

pub mod echo_console;
pub mod echo_server;
pub mod heads1;
pub mod heads2;
pub mod hello;
pub mod hello_key;
pub mod http;
pub mod mailbox;
pub mod network;
pub mod prng;
pub mod speaking_clock;
pub mod timeout1;
pub mod timeout2;
pub mod udp_echo;

#[cfg(feature = "host")]
pub mod host;

use rand_core::Rng;

/// A uniformly distributed integer in `0..bound` (Randomconv's `int
/// ~bound`), by rejection so no value is favoured.
pub fn random_below(random: &mut impl Rng, bound: u32) -> u32 {
    let zone = u32::MAX - u32::MAX % bound;
    loop {
        let value = random.next_u32();
        if value < zone {
            return value % bound;
        }
    }
}
