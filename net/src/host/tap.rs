//! A Linux TAP device: Ethernet frames to and from a host network
//! interface, so host tools reach a stack running as a host process.
//!
//! Opening `/dev/net/tun` and attaching it to a TAP interface
//! (`TUNSETIFF` with `IFF_TAP | IFF_NO_PI`) needs root or
//! `CAP_NET_ADMIN`; without them [`Tap::open`] returns an error saying so.
//! The interface is left down and unaddressed: configure the host side
//! with `ip` (`ip addr add 10.0.0.1/24 dev NAME; ip link set NAME up`).
//!
//! Receiving works like a device interrupt: a reader thread waits for
//! frames (`poll(2)`), queues them (at most [`RX_QUEUE_FRAMES`]; more are
//! dropped and counted) and raises the device's
//! [`InterruptSignal`], which wakes the stack's runner on the event loop.
//! Transmitting writes the frame straight to the file descriptor, which
//! never blocks; a frame the kernel does not take is counted as dropped.
//! The reader thread stops within [`READER_POLL_MS`] of the last handle
//! being dropped, and the descriptor is closed then.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use unikit_runtime::InterruptSignal;
use unikit_runtime::devices::net::{ETHERNET_HEADER_LEN, MacAddress, Net, NetStats};
use unikit_runtime::signal::Raised;

/// The MTU of the TAP interface (the Linux default).
const MTU: usize = 1500;

/// Received frames queued for the stack; more are dropped.
pub const RX_QUEUE_FRAMES: usize = 256;

/// How often the reader thread checks whether the device was dropped.
pub const READER_POLL_MS: i32 = 100;

/// What the reader thread and the handles share.
struct Shared {
    fd: OwnedFd,
    received: Mutex<VecDeque<Vec<u8>>>,
    stats: Mutex<NetStats>,
    /// Raised by the reader thread when it queued a frame. Leaked: one
    /// small allocation per device opened, as the signal must be
    /// `'static` to be awaited.
    signal: &'static InterruptSignal,
    stop: AtomicBool,
}

/// The handle state on the event loop's thread.
struct Local {
    shared: Arc<Shared>,
    name: String,
    mac: MacAddress,
    /// The wait for the next raise, kept between polls.
    raised: RefCell<Option<Raised>>,
}

impl Drop for Local {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// A TAP interface as a [`Net`] device. Clones share the device.
#[derive(Clone)]
pub struct Tap {
    local: Rc<Local>,
}

impl core::fmt::Debug for Tap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tap")
            .field("name", &self.local.name)
            .finish_non_exhaustive()
    }
}

impl Tap {
    /// Creates (or attaches to) the TAP interface `name`, the stack using
    /// MAC address `mac` on it. Fails with a message naming the cause
    /// (no `/dev/net/tun`, no permission, a bad name).
    pub fn open(name: &str, mac: MacAddress) -> io::Result<Tap> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "TAP interface name `{name}`: expected 1 to {} characters",
                    libc::IFNAMSIZ - 1
                ),
            ));
        }
        let path = c"/dev/net/tun";
        // SAFETY: `path` is a NUL-terminated string; `open` has no other
        // preconditions.
        let raw = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            let cause = io::Error::last_os_error();
            return Err(io::Error::new(
                cause.kind(),
                format!(
                    "cannot open /dev/net/tun: {cause} (a TAP device needs root or CAP_NET_ADMIN)"
                ),
            ));
        }
        // SAFETY: `raw` is a descriptor `open` just returned, owned by
        // nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `ifreq` is plain C data for which all-zero bytes are a
        // valid value (an empty name, zero flags).
        let mut request: libc::ifreq = unsafe { core::mem::zeroed() };
        for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
            *slot = byte as libc::c_char;
        }
        request.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `ifreq`, which `request`
        // is, on a descriptor of /dev/net/tun.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut request) } < 0 {
            let cause = io::Error::last_os_error();
            return Err(io::Error::new(
                cause.kind(),
                format!(
                    "cannot create TAP interface `{name}`: {cause} (needs root or CAP_NET_ADMIN)"
                ),
            ));
        }
        let shared = Arc::new(Shared {
            fd,
            received: Mutex::new(VecDeque::new()),
            stats: Mutex::new(NetStats::default()),
            signal: Box::leak(Box::new(InterruptSignal::new())),
            stop: AtomicBool::new(false),
        });
        let reader = shared.clone();
        std::thread::Builder::new()
            .name(format!("tap {name}"))
            .spawn(move || read_frames(&reader))?;
        Ok(Tap {
            local: Rc::new(Local {
                shared,
                name: String::from(name),
                mac,
                raised: RefCell::new(None),
            }),
        })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.local.name
    }
}

/// The reader thread: queues frames until the device is dropped or the
/// descriptor fails.
fn read_frames(shared: &Shared) {
    let mut buffer = vec![0u8; 65536];
    while !shared.stop.load(Ordering::Relaxed) {
        let mut poll = libc::pollfd {
            fd: shared.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `poll` points to one valid `pollfd`.
        let ready = unsafe { libc::poll(&mut poll, 1, READER_POLL_MS) };
        if ready <= 0 {
            continue;
        }
        // SAFETY: `buffer` is valid for writes of its length.
        let read = unsafe {
            libc::read(
                shared.fd.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
            )
        };
        if read < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::WouldBlock
                || error.kind() == io::ErrorKind::Interrupted
            {
                continue;
            }
            log::error!("TAP device: read failed, receiving stops: {error}");
            return;
        }
        let len = read as usize;
        let mut received = shared.received.lock().expect("not poisoned");
        if !(ETHERNET_HEADER_LEN..=ETHERNET_HEADER_LEN + MTU).contains(&len)
            || received.len() >= RX_QUEUE_FRAMES
        {
            shared.stats.lock().expect("not poisoned").rx_dropped += 1;
            continue;
        }
        received.push_back(buffer[..len].to_vec());
        drop(received);
        shared.signal.raise();
    }
}

impl Net for Tap {
    type RxFrame = Vec<u8>;

    fn mac(&self) -> MacAddress {
        self.local.mac
    }

    fn mtu(&self) -> usize {
        MTU
    }

    fn stats(&self) -> NetStats {
        *self.local.shared.stats.lock().expect("not poisoned")
    }

    fn poll_receive(&self, cx: &mut Context<'_>) -> Poll<Vec<u8>> {
        let shared = &self.local.shared;
        loop {
            if let Some(frame) = shared.received.lock().expect("not poisoned").pop_front() {
                let mut stats = shared.stats.lock().expect("not poisoned");
                stats.rx_packets += 1;
                stats.rx_bytes += frame.len() as u64;
                return Poll::Ready(frame);
            }
            let mut raised = self.local.raised.borrow_mut();
            let wait = raised.get_or_insert_with(|| shared.signal.wait());
            match Pin::new(wait).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => *raised = None,
                Poll::Ready(Err(_)) => {
                    // Canceled: look again on the next poll.
                    *raised = None;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
        }
    }

    fn poll_transmit_ready(&self, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }

    fn transmit<R>(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R {
        let mut frame = vec![0; len];
        let result = fill(&mut frame);
        let shared = &self.local.shared;
        let written = if len <= ETHERNET_HEADER_LEN + MTU {
            // SAFETY: `frame` is valid for reads of `len` bytes.
            unsafe { libc::write(shared.fd.as_raw_fd(), frame.as_ptr().cast(), len) }
        } else {
            -1
        };
        let mut stats = shared.stats.lock().expect("not poisoned");
        if written == len as isize {
            stats.tx_packets += 1;
            stats.tx_bytes += len as u64;
        } else {
            stats.tx_dropped += 1;
        }
        result
    }
}
