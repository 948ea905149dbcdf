//! `http`: an HTTP/1.1 server with keep-alive, serving
//! `hello mirage world!\n` at `/` and `404` elsewhere (MirageOS's
//! `applications/static_website`-style hello), robust to slow and
//! malformed requests.
//!
//! Listens on the port of the runtime argument `port` (default
//! [`DEFAULT_PORT`]) once the stack is up. Each connection is a task that
//! reads into a bounded buffer and answers requests as [`request`] decides,
//! pipelined requests included. Slow clients are bounded in time:
//!
//! * a request must arrive whole within `request-timeout` seconds (a
//!   runtime argument, default [`REQUEST_TIMEOUT`]) of its first byte,
//!   else `408 Request Timeout` and the connection is closed (a client
//!   sending one byte at a time cannot hold a connection forever);
//! * a keep-alive connection idle for `idle-timeout` seconds (default
//!   [`IDLE_TIMEOUT`]) is closed.
//!
//! Connections beyond the stack's socket pool are refused by the stack
//! (see `unikit_net::Config`), so a flood cannot exhaust memory. Each
//! request is logged at debug level (`GET / -> 200`), errors at info.

pub mod request;

use alloc::vec::Vec;
use core::time::Duration;
use rand_core::CryptoRng;
use request::{MAX_BODY_BYTES, MAX_HEAD_BYTES, Step};
use unikit_net::{Config, Stack, TcpStream};
use unikit_runtime::devices::Args;
use unikit_runtime::devices::net::Net;
use unikit_runtime::{Error, Instant, async_, time, with_timeout};

/// The port listened on without a `port` runtime argument.
pub const DEFAULT_PORT: u16 = 8080;

/// How long a request may take to arrive once its first byte has.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a kept-alive connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The unikernel.
pub async fn start<N: Net>(
    net: N,
    args: impl Args,
    mut random: impl CryptoRng,
) -> Result<(), Error> {
    let port = args.get_parsed("port", DEFAULT_PORT, "a TCP port number (1-65535)")?;
    let timeouts = Timeouts {
        request: seconds(&args, "request-timeout", REQUEST_TIMEOUT)?,
        idle: seconds(&args, "idle-timeout", IDLE_TIMEOUT)?,
    };
    let stack = Stack::new(net, Config::from_args(&args)?, random.next_u64());
    let address = stack.wait_config_up().await?;
    let listener = stack.listen(port)?;
    log::info!("serving HTTP on {}:{port}", address.address());
    loop {
        let stream = listener.accept().await?;
        async_(serve(stream, timeouts));
    }
}

/// How long a connection may take over a request, and stay idle.
#[derive(Clone, Copy, Debug)]
struct Timeouts {
    request: Duration,
    idle: Duration,
}

fn seconds(args: &impl Args, key: &str, default: Duration) -> Result<Duration, Error> {
    let seconds = args.get_parsed(
        key,
        default.as_secs(),
        "a whole number of seconds (1 or more)",
    )?;
    if seconds == 0 {
        return Err(Error::msg(alloc::format!(
            "{key}=0: expected a whole number of seconds (1 or more)"
        )));
    }
    Ok(Duration::from_secs(seconds))
}

/// Answers the requests of one connection until it closes, misbehaves or
/// times out.
async fn serve(mut stream: TcpStream, timeouts: Timeouts) -> Result<(), Error> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 2048];
    let mut request_deadline: Option<Instant> = None;
    loop {
        match request::next_step(&received) {
            Step::Respond(reply) => {
                if reply.status >= 400 && reply.consumed == 0 {
                    log::info!(
                        "{}: refused with {}",
                        stream.remote_endpoint(),
                        reply.status
                    );
                } else {
                    log::debug!("{} -> {}", first_line(&received), reply.status);
                }
                stream.write_all(&reply.bytes).await?;
                if reply.close {
                    return stream.close().await.map_err(Error::from);
                }
                received.drain(..reply.consumed);
                request_deadline = None;
                continue;
            }
            Step::NeedMore => {}
        }
        if received.len() > MAX_HEAD_BYTES + MAX_BODY_BYTES {
            // next_step refuses oversized heads and bodies before this;
            // the check keeps the buffer bounded whatever it decides.
            return stream.close().await.map_err(Error::from);
        }
        let wait = match request_deadline {
            Some(deadline) => deadline.saturating_duration_since(time::now()),
            None => timeouts.idle,
        };
        match with_timeout(wait, async { Ok(stream.read(&mut chunk).await?) }).await {
            Ok(0) => return stream.close().await.map_err(Error::from),
            Ok(read) => {
                if received.is_empty() {
                    request_deadline = Some(time::now() + timeouts.request);
                }
                received.extend_from_slice(&chunk[..read]);
            }
            Err(Error::Timeout) if received.is_empty() => {
                return stream.close().await.map_err(Error::from);
            }
            Err(Error::Timeout) => {
                log::info!("{}: request timed out", stream.remote_endpoint());
                stream
                    .write_all(&request::error_reply(408, "Request Timeout").bytes)
                    .await?;
                return stream.close().await.map_err(Error::from);
            }
            Err(error) => return Err(error),
        }
    }
}

/// The request line at the start of `received`, for the log.
fn first_line(received: &[u8]) -> &str {
    let end = received.iter().position(|&byte| byte == b'\r').unwrap_or(0);
    core::str::from_utf8(&received[..end]).unwrap_or("?")
}
