//! An async TCP/IP stack for unikit unikernels: smoltcp 0.14 driven by one
//! runner task over the runtime's [`Net`] device, with sockets whose
//! operations are `async fn`s on the promise runtime.
//!
//! ```text
//!  unikernel task ── stream.read().await ──► socket buffer (smoltcp)
//!        ▲                                        │ waker
//!        └──────────── woken by smoltcp ◄─────────┘
//!  runner task: Net::poll_receive ─► Interface::poll ─► Net::transmit
//!               waits for: a frame | device room | poll_at timer | a socket op
//! ```
//!
//! * [`Stack`]: the interface (ARP, IPv4, ICMP echo replies, UDP, TCP,
//!   DHCPv4 or a static address) and its runner; see [`mod@stack`] for how
//!   the runner works and how resources are bounded.
//! * [`TcpListener`], [`TcpStream`] (also `embedded_io_async::{Read,
//!   Write}`), [`UdpSocket`]: the sockets.
//! * [`Config`]: addresses and sizes, from runtime arguments with
//!   [`Config::from_args`].
//! * [`Error`]: what can go wrong, as an enum.
//! * `host` (feature `std`): [`Net`] devices for host programs and tests:
//!   an in-memory link on the runtime's (simulated) time with fault
//!   injection, and a Linux TAP device.
//!
//! `#![no_std]` + `alloc`; the kernel uses it with default features.
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use unikit_net::host::{Faults, MemoryLink};
//! use unikit_net::{Config, IpEndpoint, Ipv4Address, Ipv4Cidr, Ipv4Config, Stack};
//! use unikit_runtime::{Simulated, run};
//!
//! fn config(last: u8) -> Config {
//!     let address = Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, last), 24);
//!     Config { ipv4: Ipv4Config::Static { address, gateway: None, dns: vec![] }, ..Config::default() }
//! }
//!
//! let reply = run(Simulated::new(1), async {
//!     let (a, b) = MemoryLink::pair(Faults::none());
//!     let server = Stack::new(a, config(1), 1);
//!     let client = Stack::new(b, config(2), 2);
//!     let listener = server.listen(7)?;
//!     unikit_runtime::async_(async move {
//!         let mut stream = listener.accept().await?;
//!         let mut buf = [0; 5];
//!         let n = stream.read(&mut buf).await?;
//!         stream.write_all(&buf[..n]).await?;
//!         Ok(stream.close().await?)
//!     });
//!     let mut stream = client.connect(IpEndpoint::new(Ipv4Address::new(10, 0, 0, 1).into(), 7)).await?;
//!     stream.write_all(b"hello").await?;
//!     let mut buf = [0; 5];
//!     let n = stream.read(&mut buf).await?;
//!     Ok(buf[..n].to_vec())
//! });
//! assert_eq!(reply.unwrap(), b"hello");
//! # }
//! ```
//!
//! [`Net`]: unikit_runtime::devices::net::Net
#![no_std]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod checksum;
mod config;
mod device;
mod error;
pub mod stack;
mod tcp;
mod udp;

#[cfg(feature = "std")]
pub mod host;

pub use config::{Config, Ipv4Config, MAX_TCP_BUFFER, MIN_TCP_BUFFER};
pub use error::Error;
pub use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address, Ipv4Cidr};
pub use stack::{Stack, StackStats};
pub use tcp::{TcpListener, TcpReader, TcpStream, TcpWriter};
pub use udp::UdpSocket;
