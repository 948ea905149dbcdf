//! Binding the unikernels to the host's devices: the table the host
//! program and the simulated-time tests share (the kernel images bind the
//! same `start` functions to the kernel's devices, one per image).

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use unikit_runtime::Error;
use unikit_runtime::devices::host::Devices;
use unikit_runtime::devices::net::Net;

/// A unikernel bound to its devices, ready to run.
pub type Bound = Pin<Box<dyn Future<Output = Result<(), Error>>>>;

/// Every unikernel's name, as `cargo run -- <name>` and the host program
/// take it.
pub const NAMES: &[&str] = &[
    "echo_console",
    "echo_server",
    "heads1",
    "heads2",
    "hello",
    "hello_key",
    "mailbox",
    "prng",
    "speaking_clock",
    "timeout1",
    "timeout2",
];

/// The unikernel `name` bound to `d`, or `None` for an unknown name.
pub fn bind(name: &str, d: Devices) -> Option<Bound> {
    use crate::*;
    Some(match name {
        "echo_console" => Box::pin(echo_console::start(d.console)),
        "echo_server" => Box::pin(echo_server::start(d.time, d.random)),
        "heads1" => Box::pin(heads1::start(d.time)),
        "heads2" => Box::pin(heads2::start(d.time)),
        "hello" => Box::pin(hello::start(d.time)),
        "hello_key" => Box::pin(hello_key::start(d.time, d.args)),
        "mailbox" => Box::pin(mailbox::start(d.time)),
        "prng" => Box::pin(prng::start(d.random)),
        "speaking_clock" => Box::pin(speaking_clock::start(d.time, d.mclock, d.pclock, d.args)),
        "timeout1" => Box::pin(timeout1::start(d.time, d.random)),
        "timeout2" => Box::pin(timeout2::start(d.time, d.random)),
        _ => return None,
    })
}

/// The network unikernels: they also need a [`Net`] device, so
/// [`bind_network`] binds them.
pub const NETWORK_NAMES: &[&str] = &["http", "network", "udp_echo"];

/// The network unikernel `name` bound to `d` and the network device `net`,
/// or `None` for an unknown name.
pub fn bind_network<N: Net>(name: &str, d: Devices, net: N) -> Option<Bound> {
    use crate::*;
    Some(match name {
        "http" => Box::pin(http::start(net, d.args, d.random)),
        "network" => Box::pin(network::start(net, d.args, d.random)),
        "udp_echo" => Box::pin(udp_echo::start(net, d.args, d.random)),
        _ => return None,
    })
}
