//! `udp_echo`: sends every UDP datagram back to where it came from.
//!
//! Listens on the port of the runtime argument `port` (default
//! [`DEFAULT_PORT`]) once the stack is up, and logs one line per datagram:
//! `udp: <n> bytes from <ip>:<port>`.

use rand_core::CryptoRng;
use unikit_net::{Config, Stack};
use unikit_runtime::Error;
use unikit_runtime::devices::Args;
use unikit_runtime::devices::net::Net;

/// The port listened on without a `port` runtime argument.
pub const DEFAULT_PORT: u16 = 8080;

/// The largest datagram echoed whole (the largest UDP payload in one
/// standard Ethernet frame); longer ones are not received.
pub const MAX_DATAGRAM: usize = 1472;

/// The unikernel.
pub async fn start<N: Net>(
    net: N,
    args: impl Args,
    mut random: impl CryptoRng,
) -> Result<(), Error> {
    let port = args.get_parsed("port", DEFAULT_PORT, "a UDP port number (1-65535)")?;
    let stack = Stack::new(net, Config::from_args(&args)?, random.next_u64());
    let address = stack.wait_config_up().await?;
    let socket = stack.bind_udp(port)?;
    log::info!("echoing UDP on {}:{port}", address.address());
    let mut buffer = [0u8; MAX_DATAGRAM];
    loop {
        let (len, from) = socket.recv_from(&mut buffer).await?;
        log::info!("udp: {len} bytes from {}:{}", from.addr, from.port);
        socket.send_to(&buffer[..len], from).await?;
    }
}
