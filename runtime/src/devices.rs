//! The device layer: what a unikernel may use of the machine, as traits in
//! the spirit of MirageOS's module signatures, so one unikernel runs on bare
//! metal and as a host process.
//!
//! A unikernel is an `async fn` generic over the devices it needs, like a
//! Mirage functor over `TIME` and `CONSOLE`:
//!
//! ```
//! use unikit_runtime::devices::{Console, Time};
//! use unikit_runtime::Error;
//!
//! async fn start(time: impl Time, console: impl Console) -> Result<(), Error> {
//!     time.sleep_ns(1_000_000_000).await?;
//!     console.write("one second later\n");
//!     Ok(())
//! }
//! ```
//!
//! Binding it to an implementation is one line: `unikernel!("name", |d|
//! start(d.time, d.console))` in a kernel image, or the same closure over
//! [`host::Devices`] in a host program. Every platform's `Devices` bundle
//! has the same fields: `time`, `mclock`, `pclock`, `console`, `random`,
//! `args`.
//!
//! | Mirage | trait | what |
//! |---|---|---|
//! | `Mirage_time.S` | [`Time`] | `sleep_ns`: sleep on the runtime's timer queue |
//! | `Mirage_clock.MCLOCK` | [`Mclock`] | `elapsed_ns`: monotonic nanoseconds |
//! | `Mirage_clock.PCLOCK` | [`Pclock`] | `now_unix_ns`: wall clock |
//! | `Mirage_console.S` | [`Console`] | `write`, `read_line` |
//! | `Mirage_random.S` | `rand_core::CryptoRng` | a CSPRNG, used through `rand_core`'s traits |
//! | `Mirage_runtime` keys | [`Args`] | `get`: runtime arguments `key=value` |
//! | `Mirage_net.S` | [`net::Net`] | Ethernet frames in and out, MAC, MTU, counters |
//!
//! Every device is a cheap, cloneable, `'static` handle (like a Mirage
//! device value), so tasks spawned by a unikernel can capture their own
//! copy.
//!
//! Logging goes through the `log` crate on every platform, printed in the
//! console line format of [`log_line`].

use alloc::string::String;
use core::future::Future;
use core::time::Duration;

use crate::Error;
use crate::time::{Sleep, sleep};

pub mod log_line;
pub mod net;

#[cfg(feature = "std")]
pub mod host;

/// Sleeping, like Mirage's `Time`. The default method sleeps on the
/// runtime's timer queue, which every platform drives with its own clock.
pub trait Time: Clone + 'static {
    /// Resolves `nanos` nanoseconds from now.
    fn sleep_ns(&self, nanos: u64) -> Sleep {
        sleep(Duration::from_nanos(nanos))
    }
}

/// The monotonic clock, like Mirage's `Mclock`.
pub trait Mclock: Clone + 'static {
    /// Nanoseconds since the platform's epoch (boot, or the start of a
    /// simulation). Never goes backwards.
    fn elapsed_ns(&self) -> u64 {
        crate::time::now().as_nanos()
    }
}

/// The wall clock, like Mirage's `Pclock`.
pub trait Pclock: Clone + 'static {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    fn now_unix_ns(&self) -> u64;
}

/// The console, like Mirage's `Console`: text out, lines in.
pub trait Console: Clone + 'static {
    /// Writes `text` as is.
    fn write(&self, text: &str);

    /// The next line typed on the console, without its line ending; `None`
    /// at the end of input.
    fn read_line(&self) -> impl Future<Output = Result<Option<String>, Error>>;
}

/// Runtime arguments: `key=value` pairs given when the unikernel starts,
/// not when it is built (Mirage's runtime keys).
pub trait Args: Clone + 'static {
    /// The value given for `key`, if any.
    fn get(&self, key: &str) -> Option<&str>;

    /// The value for `key` parsed as `T`, or `default` when absent; an
    /// unparsable value is an error that names the key and what was
    /// expected.
    fn get_parsed<T: core::str::FromStr>(
        &self,
        key: &str,
        default: T,
        expected: &'static str,
    ) -> Result<T, Error> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|_| Error::msg(alloc::format!("{key}={value}: expected {expected}"))),
        }
    }
}

/// Splits a line-editing buffer: the first complete line of `pending`
/// (ended by `\n` or `\r`, with `\r\n` as one ending), removed from it.
pub fn take_line(pending: &mut String) -> Option<String> {
    let end = pending.find(['\n', '\r'])?;
    let line = String::from(&pending[..end]);
    let rest = &pending[end..];
    let ending = if rest.starts_with("\r\n") { 2 } else { 1 };
    pending.replace_range(..end + ending, "");
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_line_accepts_every_line_ending_and_keeps_the_rest() {
        let mut pending = String::from("one\r\ntwo\nthree\rfour");
        assert_eq!(take_line(&mut pending).as_deref(), Some("one"));
        assert_eq!(take_line(&mut pending).as_deref(), Some("two"));
        assert_eq!(take_line(&mut pending).as_deref(), Some("three"));
        assert_eq!(take_line(&mut pending), None);
        assert_eq!(pending, "four");
    }
}
