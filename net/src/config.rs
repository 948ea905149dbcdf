//! The stack's configuration: how the interface gets its IPv4 address, and
//! the sizes of its fixed resources.
//!
//! Every resource the stack uses is bounded by a field here, so a flood of
//! connections or datagrams is refused instead of exhausting memory. The
//! worst-case memory of TCP is about `max_tcp_sockets * 2 *
//! tcp_buffer_size` (the default: 128 * 2 * 32 KiB = 8 MiB); socket buffers
//! are allocated when a socket is created and freed when it closes.
//!
//! [`Config::from_args`] reads the runtime arguments a unikernel is started
//! with: `ipv4=10.0.0.2/24 ipv4-gateway=10.0.0.1 dns=1.1.1.1,8.8.8.8`;
//! without `ipv4` the address comes from DHCP. `tcp-buffer=65536` sizes
//! the TCP buffers (the window, so the throughput on a link with latency).

use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;

use smoltcp::wire::{Ipv4Address, Ipv4Cidr};
use unikit_runtime::devices::Args;

use crate::Error;

/// Where the interface's IPv4 address comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ipv4Config {
    /// A DHCPv4 lease: address, default gateway and DNS servers from the
    /// network's DHCP server, renewed as the lease says.
    Dhcp,
    /// A fixed address.
    Static {
        /// The address and the prefix length of the local network.
        address: Ipv4Cidr,
        /// The default gateway, for destinations outside the local network.
        gateway: Option<Ipv4Address>,
        /// DNS servers, in order of preference (recorded for programs that
        /// resolve names; the stack itself does not).
        dns: Vec<Ipv4Address>,
    },
}

/// The stack's configuration. [`Config::default`] is DHCP with the
/// documented default sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How the IPv4 address is obtained.
    pub ipv4: Ipv4Config,
    /// The TCP socket pool: listening sockets, connections (accepted or
    /// not) and connections still closing all count. When it is full, new
    /// connection attempts are answered with a reset and counted in
    /// [`crate::StackStats::tcp_refused`]. Default 128.
    pub max_tcp_sockets: usize,
    /// Connections established but not yet accepted that a listener
    /// holds for `accept`; with that many waiting, it stops listening
    /// until one is accepted (handshakes in progress are bounded by the
    /// pool only). Default 16.
    pub tcp_backlog: usize,
    /// The receive and the send buffer of every TCP socket, in bytes (the
    /// receive buffer is the advertised window). Default 32 KiB: under
    /// QEMU, echoing through user networking, 16 KiB held a connection to
    /// about two thirds of the throughput 32 KiB gives.
    pub tcp_buffer_size: usize,
    /// A connection that hears nothing from its peer this long is aborted
    /// (smoltcp's socket timeout), whether data waits for acknowledgement
    /// or the connection is idle: keep-alive probes every quarter of it
    /// make a live peer answer, so only a vanished peer times out. `None`:
    /// no keep-alive, and retransmissions go on forever. Default 120 s.
    pub tcp_timeout: Option<Duration>,
    /// How long [`crate::Stack::connect`] waits for the handshake before
    /// [`Error::TimedOut`]. Default 20 s.
    pub tcp_connect_timeout: Duration,
    /// The payload bytes every UDP socket queues in each direction.
    /// Default 16 KiB.
    pub udp_buffer_size: usize,
    /// The datagrams every UDP socket queues in each direction. Default 32.
    pub udp_packets: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ipv4: Ipv4Config::Dhcp,
            max_tcp_sockets: 128,
            tcp_backlog: 16,
            tcp_buffer_size: 32 * 1024,
            tcp_timeout: Some(Duration::from_secs(120)),
            tcp_connect_timeout: Duration::from_secs(20),
            udp_buffer_size: 16 * 1024,
            udp_packets: 32,
        }
    }
}

impl Config {
    /// The default configuration with the address from the runtime
    /// arguments:
    ///
    /// * `ipv4=ADDRESS/PREFIX` (like `10.0.0.2/24`): a static address;
    ///   absent, DHCP;
    /// * `ipv4-gateway=ADDRESS`: the default gateway (needs `ipv4`);
    /// * `dns=ADDRESS[,ADDRESS...]`: DNS servers (needs `ipv4`);
    /// * `tcp-buffer=BYTES`: [`Config::tcp_buffer_size`], from
    ///   [`MIN_TCP_BUFFER`] to [`MAX_TCP_BUFFER`].
    ///
    /// A value that does not parse is an [`Error::InvalidArgument`] naming
    /// the key, the value and what was expected.
    pub fn from_args(args: &impl Args) -> Result<Config, Error> {
        let ipv4 = match args.get("ipv4") {
            None => {
                for key in ["ipv4-gateway", "dns"] {
                    if args.get(key).is_some() {
                        return Err(Error::invalid(format!(
                            "{key} needs a static address: give ipv4=ADDRESS/PREFIX too"
                        )));
                    }
                }
                Ipv4Config::Dhcp
            }
            Some(value) => Ipv4Config::Static {
                address: parse_cidr(value)?,
                gateway: args
                    .get("ipv4-gateway")
                    .map(|value| parse_address("ipv4-gateway", value))
                    .transpose()?,
                dns: match args.get("dns") {
                    None => Vec::new(),
                    Some(value) => value
                        .split(',')
                        .map(|one| parse_address("dns", one))
                        .collect::<Result<_, _>>()?,
                },
            },
        };
        let defaults = Config::default();
        let tcp_buffer_size = match args.get("tcp-buffer") {
            None => defaults.tcp_buffer_size,
            Some(value) => value
                .parse()
                .ok()
                .filter(|size| (MIN_TCP_BUFFER..=MAX_TCP_BUFFER).contains(size))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "tcp-buffer={value}: expected a size in bytes from {MIN_TCP_BUFFER} to {MAX_TCP_BUFFER}"
                    ))
                })?,
        };
        Ok(Config {
            ipv4,
            tcp_buffer_size,
            ..defaults
        })
    }
}

/// The smallest `tcp-buffer` [`Config::from_args`] takes (a few segments).
pub const MIN_TCP_BUFFER: usize = 4096;

/// The largest `tcp-buffer` [`Config::from_args`] takes (every socket has
/// two).
pub const MAX_TCP_BUFFER: usize = 4 * 1024 * 1024;

fn parse_cidr(value: &str) -> Result<Ipv4Cidr, Error> {
    let expected = || {
        Error::invalid(format!(
            "ipv4={value}: expected an IPv4 address with a prefix length, like 10.0.0.2/24"
        ))
    };
    let (address, prefix) = value.split_once('/').ok_or_else(expected)?;
    let address: Ipv4Address = address.parse().map_err(|_| expected())?;
    let prefix: u8 = prefix.parse().map_err(|_| expected())?;
    if prefix > 32 || address.is_unspecified() || address.is_broadcast() {
        return Err(expected());
    }
    Ok(Ipv4Cidr::new(address, prefix))
}

fn parse_address(key: &str, value: &str) -> Result<Ipv4Address, Error> {
    value.parse().map_err(|_| {
        Error::invalid(format!(
            "{key}={value}: expected an IPv4 address, like 10.0.0.1"
        ))
    })
}
