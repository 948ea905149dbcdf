//! The stack: one smoltcp interface and socket set, driven by one runner
//! task, shared by cheap handles.
//!
//! [`Stack::new`] spawns the runner (`stack/runner.rs`), the one task that moves frames;
//! socket operations only touch their socket's buffers and wake it.
//!
//! # Bounded resources
//!
//! TCP sockets come from a pool of [`Config::max_tcp_sockets`]: listening
//! sockets, connections and connections still closing all count. A
//! listener keeps one socket listening while fewer than
//! [`Config::tcp_backlog`] established connections wait for `accept` and
//! the pool has room. smoltcp turns the listening socket itself into the
//! connection when a request arrives, and the runner opens the next
//! listening socket right after each request, before it looks at the next
//! frame, so one is enough for any burst; more would only be visited, for
//! nothing, by every frame in and every pass over the sockets out.
//! Handshakes in progress take only from the pool, so a burst of requests
//! is served while the pool has room; when the accept queue holds the
//! whole backlog, or the pool is empty, a connection request is answered
//! with a reset and counted ([`StackStats::tcp_refused`]). A socket is freed when its connection
//! has fully closed; a socket whose owner went away ([`crate::TcpStream`]
//! dropped, or closed while the peer keeps its half open) is given
//! [`ORPHAN_LINGER`] to finish, then aborted. Sockets in TIME-WAIT are
//! reclaimed at once when the pool is full and a new connection needs one.
//! In a guest too small for the whole pool's buffers, a socket is only
//! opened while the heap can give its buffers and
//! [`TCP_MEMORY_RESERVE`] more, so a flood is refused there too instead of
//! exhausting memory.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::task::{Poll, Waker};
use core::time::Duration;

use smoltcp::iface::{self, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpCidr, IpListenEndpoint, Ipv4Address, Ipv4Cidr,
};
use unikit_runtime::devices::net::{Net, NetStats};
use unikit_runtime::time;
use unikit_runtime::{Builder, Instant, cancel_requested};

mod runner;

use crate::config::{Config, Ipv4Config};
use crate::device::{Adapter, Counters};
use crate::tcp::{TcpListener, TcpStream};
use crate::udp::UdpSocket;
use crate::{Error, IpEndpoint};

/// How long a socket whose owner is gone may take to finish closing
/// before it is aborted (Linux's `tcp_fin_timeout`).
pub const ORPHAN_LINGER: Duration = Duration::from_secs(60);

/// How long a closed socket may wait to send its reset before it is freed
/// anyway.
const RESET_GRACE: Duration = Duration::from_secs(1);

/// The ephemeral ports, [`Stack::connect`]'s local ports (IANA's dynamic
/// range).
const EPHEMERAL_PORTS: core::ops::RangeInclusive<u16> = 49152..=65535;

/// The stack's state, shared by the runner and every socket handle.
pub(crate) type Shared = RefCell<State>;

/// A listener's sockets.
#[derive(Default)]
pub(crate) struct Listener {
    /// The socket in LISTEN and those in SYN-RECEIVED.
    pending: Vec<SocketHandle>,
    /// Established connections waiting for `accept`.
    pub(crate) ready: VecDeque<SocketHandle>,
    /// Tasks waiting in `accept`.
    pub(crate) waiters: Vec<Waker>,
}

/// Everything the stack owns.
pub(crate) struct State {
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) config: Config,
    /// The device's MTU (the largest IPv4 packet).
    pub(crate) mtu: usize,
    dhcp: Option<SocketHandle>,
    address: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Address>,
    dns: Vec<Ipv4Address>,
    config_waiters: Vec<Waker>,
    runner: Option<Waker>,
    pub(crate) listeners: BTreeMap<u16, Listener>,
    /// TCP sockets in the set (the pool in use).
    pub(crate) tcp_sockets: usize,
    /// Sockets whose owner is gone, with the instant they get aborted
    /// (set by the runner when it first sees them).
    orphans: Vec<(SocketHandle, Option<Instant>)>,
    next_port: u16,
    /// Shared with the device adapter while the interface is polled.
    counters: Rc<Counters>,
}

/// A handle to a TCP/IP stack on a [`Net`] device. Clones share the stack.
pub struct Stack<N: Net> {
    shared: Rc<Shared>,
    net: N,
}

impl<N: Net> Clone for Stack<N> {
    fn clone(&self) -> Self {
        Stack {
            shared: self.shared.clone(),
            net: self.net.clone(),
        }
    }
}

/// The stack's counters: the device's and its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackStats {
    /// The device's counters.
    pub device: NetStats,
    /// Received frames the stack dropped as malformed: a bad IPv4, TCP,
    /// UDP or ICMP checksum, or headers longer than the frame.
    pub rx_malformed: u64,
    /// Connection requests answered with a reset: nothing listens on the
    /// port, or its backlog or the socket pool is full.
    pub tcp_refused: u64,
    /// TCP sockets in use now (listening, connected or closing).
    pub tcp_sockets: usize,
}

pub(crate) fn smol_instant(instant: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(
        i64::try_from(instant.as_nanos() / 1000).unwrap_or(i64::MAX),
    )
}

fn runtime_instant(instant: smoltcp::time::Instant) -> Instant {
    Instant::from_nanos(
        u64::try_from(instant.total_micros())
            .unwrap_or(0)
            .saturating_mul(1000),
    )
}

impl<N: Net> Stack<N> {
    /// A stack on `device`, configured by `config`, and its runner task.
    /// `random_seed` seeds smoltcp's choices (initial sequence numbers,
    /// DHCP transaction ids) and the ephemeral ports: give each boot a
    /// fresh one from the platform's random device. One stack per device:
    /// two would take each other's frames.
    ///
    /// # Panics
    /// Outside [`unikit_runtime::run`].
    pub fn new(device: N, config: Config, random_seed: u64) -> Stack<N> {
        let counters = Rc::new(Counters::default());
        let mut iface_config =
            iface::Config::new(HardwareAddress::Ethernet(EthernetAddress(device.mac())));
        iface_config.random_seed = random_seed;
        let mut iface = Interface::new(
            iface_config,
            &mut Adapter::new(&device, None, &counters),
            smol_instant(time::now()),
        );
        let mut sockets = SocketSet::new(Vec::new());
        let (mut dhcp, mut address, mut gateway, mut dns) = (None, None, None, Vec::new());
        match &config.ipv4 {
            Ipv4Config::Dhcp => dhcp = Some(sockets.add(dhcpv4::Socket::new())),
            Ipv4Config::Static {
                address: static_address,
                gateway: static_gateway,
                dns: static_dns,
            } => {
                set_address(&mut iface, Some(*static_address), *static_gateway);
                address = Some(*static_address);
                gateway = *static_gateway;
                dns.clone_from(static_dns);
            }
        }
        let span = u64::from(EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start()) + 1;
        let next_port = EPHEMERAL_PORTS.start() + (random_seed % span) as u16;
        let shared = Rc::new(RefCell::new(State {
            iface,
            sockets,
            config,
            mtu: device.mtu(),
            dhcp,
            address,
            gateway,
            dns,
            config_waiters: Vec::new(),
            runner: None,
            listeners: BTreeMap::new(),
            tcp_sockets: 0,
            orphans: Vec::new(),
            next_port,
            counters,
        }));
        Builder::new()
            .name("net")
            .async_(runner::run(shared.clone(), device.clone()));
        Stack {
            shared,
            net: device,
        }
    }

    /// Waits until the interface has an IPv4 address (at once for a static
    /// one; the first DHCP lease otherwise) and returns it. Cancelable.
    pub async fn wait_config_up(&self) -> Result<Ipv4Cidr, Error> {
        poll_fn(|cx| {
            if cancel_requested() {
                return Poll::Ready(Err(Error::Canceled));
            }
            let mut state = self.shared.borrow_mut();
            match state.address {
                Some(address) => Poll::Ready(Ok(address)),
                None => {
                    register(&mut state.config_waiters, cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// The interface's IPv4 address, if it has one.
    pub fn ipv4_address(&self) -> Option<Ipv4Cidr> {
        self.shared.borrow().address
    }

    /// The default gateway, if any.
    pub fn ipv4_gateway(&self) -> Option<Ipv4Address> {
        self.shared.borrow().gateway
    }

    /// The DNS servers, from the configuration or the DHCP lease.
    pub fn dns_servers(&self) -> Vec<Ipv4Address> {
        self.shared.borrow().dns.clone()
    }

    /// Listens for TCP connections on `port` (of every address of the
    /// interface). Connections are accepted with [`TcpListener::accept`];
    /// dropping the listener stops listening and resets the connections
    /// not yet accepted.
    pub fn listen(&self, port: u16) -> Result<TcpListener, Error> {
        if port == 0 {
            return Err(Error::invalid(
                "listen: port 0 (give a port from 1 to 65535)",
            ));
        }
        let mut state = self.shared.borrow_mut();
        if state.listeners.contains_key(&port) {
            return Err(Error::AddressInUse);
        }
        state.listeners.insert(port, Listener::default());
        state.top_up_listeners();
        state.wake_runner();
        Ok(TcpListener::new(self.shared.clone(), port))
    }

    /// Opens a TCP connection to `remote` from an ephemeral port. Fails
    /// with [`Error::ConnectionRefused`] on a reset, [`Error::TimedOut`]
    /// after [`Config::tcp_connect_timeout`], [`Error::NoRoute`] without
    /// an address or route, [`Error::TooManySockets`] when the pool is
    /// empty. Cancelable (the attempt is aborted).
    pub async fn connect(&self, remote: IpEndpoint) -> Result<TcpStream, Error> {
        let (handle, timeout) = {
            let mut state = self.shared.borrow_mut();
            let state = &mut *state;
            if remote.port == 0 || remote.addr.is_unspecified() {
                return Err(Error::invalid(
                    "connect: the remote port and address must not be 0",
                ));
            }
            if state.address.is_none() {
                return Err(Error::NoRoute);
            }
            if state.tcp_sockets >= state.config.max_tcp_sockets
                && !reclaim_time_wait(
                    &mut state.orphans,
                    &mut state.sockets,
                    &mut state.tcp_sockets,
                )
            {
                return Err(Error::TooManySockets);
            }
            let port = state.ephemeral_port()?;
            let mut socket = tcp_socket(&state.config).ok_or(Error::TooManySockets)?;
            socket
                .connect(state.iface.context(), remote, port)
                .map_err(|_| Error::NoRoute)?;
            let handle = state.sockets.add(socket);
            state.tcp_sockets += 1;
            state.wake_runner();
            (handle, state.config.tcp_connect_timeout)
        };
        let mut attempt = Attempt {
            shared: self.shared.clone(),
            handle: Some(handle),
        };
        let mut deadline = time::sleep(timeout);
        poll_fn(|cx| {
            if cancel_requested() {
                return Poll::Ready(Err(Error::Canceled));
            }
            {
                let mut state = self.shared.borrow_mut();
                let socket = state.sockets.get_mut::<tcp::Socket>(handle);
                match socket.state() {
                    tcp::State::Established | tcp::State::CloseWait => {
                        return Poll::Ready(Ok(()));
                    }
                    tcp::State::SynSent | tcp::State::SynReceived => {
                        socket.register_send_waker(cx.waker());
                    }
                    _ => return Poll::Ready(Err(Error::ConnectionRefused)),
                }
            }
            match Pin::new(&mut deadline).poll(cx) {
                Poll::Ready(_) => Poll::Ready(Err(Error::TimedOut)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        let handle = attempt.handle.take().expect("still owned");
        Ok(TcpStream::new(self.shared.clone(), handle))
    }

    /// A UDP socket bound to `port` (0 picks an ephemeral port).
    pub fn bind_udp(&self, port: u16) -> Result<UdpSocket, Error> {
        let mut state = self.shared.borrow_mut();
        let port = match port {
            0 => state.ephemeral_port()?,
            port => port,
        };
        let taken = state
            .sockets
            .iter()
            .filter_map(|(_, socket)| match socket {
                smoltcp::socket::Socket::Udp(udp) => Some(udp.endpoint().port),
                _ => None,
            })
            .any(|bound| bound == port);
        if taken {
            return Err(Error::AddressInUse);
        }
        let buffer = |state: &State| {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; state.config.udp_packets],
                vec![0; state.config.udp_buffer_size],
            )
        };
        let mut socket = udp::Socket::new(buffer(&state), buffer(&state));
        socket
            .bind(IpListenEndpoint { addr: None, port })
            .map_err(|_| Error::invalid("bind_udp: cannot bind"))?;
        let handle = state.sockets.add(socket);
        Ok(UdpSocket::new(self.shared.clone(), handle, port))
    }

    /// The counters so far.
    pub fn stats(&self) -> StackStats {
        let state = self.shared.borrow();
        StackStats {
            device: self.net.stats(),
            rx_malformed: state.counters.malformed.get(),
            tcp_refused: state.counters.refused.get(),
            tcp_sockets: state.tcp_sockets,
        }
    }
}

/// A connection attempt in progress: aborted if `connect` does not finish.
struct Attempt {
    shared: Rc<Shared>,
    handle: Option<SocketHandle>,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let Some(handle) = self.handle {
            self.shared.borrow_mut().abandon(handle, true);
        }
    }
}

/// Adds `waker` to `waiters` unless it is already there.
pub(crate) fn register(waiters: &mut Vec<Waker>, waker: &Waker) {
    if !waiters.iter().any(|w| w.will_wake(waker)) {
        waiters.push(waker.clone());
    }
}

/// Frees one orphaned socket in TIME-WAIT, if there is one, for a new
/// connection: when the pool is full, a new connection matters more than
/// answering a late retransmission of an old one's FIN (which then gets a
/// reset).
fn reclaim_time_wait(
    orphans: &mut Vec<(SocketHandle, Option<Instant>)>,
    sockets: &mut SocketSet<'static>,
    tcp_sockets: &mut usize,
) -> bool {
    let Some(index) = orphans.iter().position(|(handle, _)| {
        sockets.get::<tcp::Socket>(*handle).state() == tcp::State::TimeWait
    }) else {
        return false;
    };
    let (handle, _) = orphans.swap_remove(index);
    sockets.remove(handle);
    *tcp_sockets -= 1;
    true
}

/// The memory a new TCP socket must leave free beyond its own buffers, so
/// that the connection it serves and the rest of the unikernel still find
/// memory: in a guest too small for the whole pool, sockets stop being
/// opened (a connection request is refused) before the heap runs out.
pub const TCP_MEMORY_RESERVE: usize = 256 * 1024;

/// A new TCP socket with the configured buffers, timeout and keep-alive
/// (see [`Config::tcp_timeout`]); `None` when the heap cannot give its
/// buffers plus [`TCP_MEMORY_RESERVE`] in one piece.
fn tcp_socket(config: &Config) -> Option<tcp::Socket<'static>> {
    let size = config.tcp_buffer_size;
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(2 * size + TCP_MEMORY_RESERVE)
        .ok()?;
    drop(probe);
    let buffer = || {
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(size).ok()?;
        bytes.resize(size, 0);
        Some(tcp::SocketBuffer::new(bytes))
    };
    let mut socket = tcp::Socket::new(buffer()?, buffer()?);
    let smol = |d: Duration| {
        smoltcp::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    };
    socket.set_timeout(config.tcp_timeout.map(smol));
    socket.set_keep_alive(config.tcp_timeout.map(|d| smol(d / 4)));
    Some(socket)
}

fn set_address(iface: &mut Interface, address: Option<Ipv4Cidr>, gateway: Option<Ipv4Address>) {
    iface.update_ip_addrs(|addrs| {
        addrs.clear();
        if let Some(address) = address {
            // Cannot fail: the list was just cleared.
            let _ = addrs.push(IpCidr::Ipv4(address));
        }
    });
    match gateway {
        Some(gateway) => {
            // Cannot fail: one default route replaces the other.
            let _ = iface.routes_mut().add_default_ipv4_route(gateway);
        }
        None => {
            iface.routes_mut().remove_default_ipv4_route();
        }
    }
}

impl State {
    /// Makes the runner poll again (a socket has something to send, or a
    /// socket was added or freed).
    pub(crate) fn wake_runner(&self) {
        if let Some(runner) = &self.runner {
            runner.wake_by_ref();
        }
    }

    /// Hands a socket its owner no longer wants to the runner: aborted
    /// (a reset is sent) if `abort`, else left to finish closing; freed
    /// once closed.
    pub(crate) fn abandon(&mut self, handle: SocketHandle, abort: bool) {
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        let finished = match socket.state() {
            // No peer to tell: a listening socket, or a connection request
            // not answered yet.
            tcp::State::Listen | tcp::State::SynSent => true,
            tcp::State::Closed => socket.remote_endpoint().is_none(),
            _ => false,
        };
        if finished {
            self.sockets.remove(handle);
            self.tcp_sockets -= 1;
            return;
        }
        if abort {
            socket.abort();
        }
        self.orphans.push((handle, None));
        self.wake_runner();
    }

    /// An unused local port from the ephemeral range.
    fn ephemeral_port(&mut self) -> Result<u16, Error> {
        let span = usize::from(EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start()) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == *EPHEMERAL_PORTS.end() {
                *EPHEMERAL_PORTS.start()
            } else {
                port + 1
            };
            let in_use = self.listeners.contains_key(&port)
                || self.sockets.iter().any(|(_, socket)| match socket {
                    smoltcp::socket::Socket::Tcp(tcp) => {
                        tcp.local_endpoint().is_some_and(|local| local.port == port)
                    }
                    smoltcp::socket::Socket::Udp(udp) => udp.endpoint().port == port,
                    _ => false,
                });
            if !in_use {
                return Ok(port);
            }
        }
        Err(Error::TooManySockets)
    }

    /// Moves established connections to their listener's accept queue,
    /// frees sockets whose handshake failed, and keeps a socket listening
    /// on every port whose accept queue has room, while the pool allows.
    fn top_up_listeners(&mut self) {
        let State {
            listeners,
            sockets,
            config,
            tcp_sockets,
            orphans,
            ..
        } = self;
        for (&port, listener) in listeners.iter_mut() {
            let mut index = 0;
            let mut listening = false;
            while index < listener.pending.len() {
                let handle = listener.pending[index];
                match sockets.get::<tcp::Socket>(handle).state() {
                    tcp::State::Listen => {
                        listening = true;
                        index += 1;
                    }
                    tcp::State::SynReceived => index += 1,
                    tcp::State::Established | tcp::State::CloseWait => {
                        listener.pending.swap_remove(index);
                        listener.ready.push_back(handle);
                        for waiter in listener.waiters.drain(..) {
                            waiter.wake();
                        }
                    }
                    _ => {
                        listener.pending.swap_remove(index);
                        sockets.remove(handle);
                        *tcp_sockets -= 1;
                    }
                }
            }
            // Handshakes in progress only take from the pool: a burst of
            // requests is not refused while the pool has room.
            if !listening
                && listener.ready.len() < config.tcp_backlog
                && (*tcp_sockets < config.max_tcp_sockets
                    || reclaim_time_wait(orphans, sockets, tcp_sockets))
                && let Some(mut socket) = tcp_socket(config)
                && socket.listen(port).is_ok()
            {
                listener.pending.push(sockets.add(socket));
                *tcp_sockets += 1;
            }
        }
    }

    /// Stops listening on `port`: resets the connections not yet accepted
    /// and frees the listening socket.
    pub(crate) fn close_listener(&mut self, port: u16) {
        if let Some(listener) = self.listeners.remove(&port) {
            for handle in listener.pending.into_iter().chain(listener.ready) {
                self.abandon(handle, true);
            }
        }
    }

    /// Applies a DHCP lease or its loss.
    fn dhcp_events(&mut self) {
        let Some(handle) = self.dhcp else { return };
        let event = match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
            None => return,
            Some(dhcpv4::Event::Configured(lease)) => Some((
                lease.address,
                lease.router,
                lease.dns_servers.iter().copied().collect::<Vec<_>>(),
            )),
            Some(dhcpv4::Event::Deconfigured) => None,
        };
        match event {
            Some((address, gateway, dns)) => {
                log::info!(
                    "DHCP lease: address {address}, gateway {}, DNS {dns:?}",
                    gateway.map_or_else(
                        || alloc::string::String::from("none"),
                        |g| alloc::format!("{g}")
                    )
                );
                set_address(&mut self.iface, Some(address), gateway);
                self.address = Some(address);
                self.gateway = gateway;
                self.dns = dns;
                for waiter in self.config_waiters.drain(..) {
                    waiter.wake();
                }
            }
            // smoltcp reports `Deconfigured` once at start too, when there
            // was no lease to lose: only a real loss is worth a warning.
            None if self.address.is_none() => {}
            None => {
                log::warn!("DHCP lease lost");
                set_address(&mut self.iface, None, None);
                self.address = None;
                self.gateway = None;
                self.dns.clear();
            }
        }
    }

    /// Frees orphaned sockets that finished closing and aborts those past
    /// their linger time. Returns the earliest linger deadline and whether
    /// a socket was aborted (and so has a reset to send).
    fn reap_orphans(&mut self, now: Instant) -> (Option<Instant>, bool) {
        let mut earliest: Option<Instant> = None;
        let mut aborted = false;
        let State {
            orphans,
            sockets,
            tcp_sockets,
            ..
        } = self;
        orphans.retain_mut(|(handle, deadline)| {
            let socket = sockets.get_mut::<tcp::Socket>(*handle);
            let closed = socket.state() == tcp::State::Closed;
            if closed && socket.remote_endpoint().is_none() {
                // Closed and its last reset (if any) sent.
                sockets.remove(*handle);
                *tcp_sockets -= 1;
                return false;
            }
            let grace = if closed { RESET_GRACE } else { ORPHAN_LINGER };
            let mut until = *deadline.get_or_insert(now + grace);
            if until <= now {
                if closed {
                    // The reset could not be sent (no neighbour, no room):
                    // give up on it.
                    sockets.remove(*handle);
                    *tcp_sockets -= 1;
                    return false;
                }
                socket.abort();
                aborted = true;
                until = now + RESET_GRACE;
                *deadline = Some(until);
            }
            earliest = Some(earliest.map_or(until, |e| e.min(until)));
            true
        });
        (earliest, aborted)
    }
}
