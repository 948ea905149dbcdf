//! MirageOS's `hello-key`: `hello` with its text from the runtime argument
//! `hello` (`cargo run -- hello_key -- hello=Bonjour`), given when the
//! unikernel starts, not when it is built.

use crate::hello::greet;
use unikit_runtime::Error;
use unikit_runtime::devices::{Args, Time};

/// The text when no `hello=` argument is given.
pub const DEFAULT_GREETING: &str = "Hello World!";

/// The unikernel.
pub async fn start(time: impl Time, args: impl Args) -> Result<(), Error> {
    let text = args.get("hello").unwrap_or(DEFAULT_GREETING);
    greet(&time, "hello_key", text).await
}
