//! `network`: MirageOS's `device-usage/network` example, a TCP service on
//! the net device.
//!
//! The stack comes up (DHCP unless `ipv4=` is given, see
//! [`unikit_net::Config::from_args`]), then the unikernel listens on the
//! port of the runtime argument `port` (default [`DEFAULT_PORT`]). For each
//! connection it logs `new tcp connection from IP <ip> on port <port>`,
//! then, for every read, `read: <n> bytes: <data>` and writes the data
//! back, until the client closes its side: `Closing connection!`.
//!
//! Mirage's example reads once, logs the data at debug level and closes.
//! This one echoes until end of stream, so it is useful to test and to
//! benchmark the stack; the data is logged escaped on the same line (a
//! console log line is one line) and cut at [`LOGGED_DATA_BYTES`]. Give
//! `-- log=warn` to silence the per-read lines when measuring throughput.

use alloc::string::String;
use core::fmt::Write as _;
use rand_core::CryptoRng;
use unikit_net::{Config, Stack, TcpStream};
use unikit_runtime::devices::Args;
use unikit_runtime::devices::net::Net;
use unikit_runtime::{Error, async_};

/// The port listened on without a `port` runtime argument.
pub const DEFAULT_PORT: u16 = 8080;

/// How much of each read is shown in its log line.
pub const LOGGED_DATA_BYTES: usize = 64;

/// The unikernel.
pub async fn start<N: Net>(
    net: N,
    args: impl Args,
    mut random: impl CryptoRng,
) -> Result<(), Error> {
    let port = args.get_parsed("port", DEFAULT_PORT, "a TCP port number (1-65535)")?;
    let stack = Stack::new(net, Config::from_args(&args)?, random.next_u64());
    let address = stack.wait_config_up().await?;
    let listener = stack.listen(port)?;
    log::info!("listening on {}:{port}", address.address());
    loop {
        let stream = listener.accept().await?;
        async_(echo(stream));
    }
}

async fn echo(mut stream: TcpStream) -> Result<(), Error> {
    let remote = stream.remote_endpoint();
    log::info!(
        "new tcp connection from IP {} on port {}",
        remote.addr,
        remote.port
    );
    let mut buffer = [0u8; 4096];
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) => {
                log::warn!("Error reading data from established connection: {error}");
                return Ok(());
            }
        };
        log::info!("read: {read} bytes: {}", escaped(&buffer[..read]));
        if let Err(error) = stream.write_all(&buffer[..read]).await {
            log::warn!("Error writing data to established connection: {error}");
            return Ok(());
        }
    }
    log::info!("Closing connection!");
    stream.close().await?;
    Ok(())
}

/// The first [`LOGGED_DATA_BYTES`] of `data` as a quoted, escaped string,
/// with `...` when cut.
pub fn escaped(data: &[u8]) -> String {
    let shown = &data[..data.len().min(LOGGED_DATA_BYTES)];
    let mut text = String::from("\"");
    for chunk in shown.utf8_chunks() {
        let _ = write!(text, "{}", chunk.valid().escape_debug());
        for byte in chunk.invalid() {
            let _ = write!(text, "\\x{byte:02x}");
        }
    }
    text.push('"');
    if data.len() > shown.len() {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_data_is_escaped_on_one_line_and_cut() {
        assert_eq!(escaped(b"hello\n"), "\"hello\\n\"");
        assert_eq!(escaped(b"a\"\xff\x00"), "\"a\\\"\\xff\\0\"");
        let long = [b'a'; LOGGED_DATA_BYTES + 1];
        let shown = escaped(&long);
        assert!(shown.ends_with("\"..."), "{shown}");
        assert_eq!(shown.len(), LOGGED_DATA_BYTES + 5);
    }
}
