//! UDP sockets.
//!
//! A [`UdpSocket`] queues up to [`crate::Config::udp_packets`] datagrams
//! (and [`crate::Config::udp_buffer_size`] bytes) in each direction.
//! Datagrams arriving when the receive queue is full are dropped, as UDP
//! allows; [`UdpSocket::send_to`] waits for room instead. Datagrams are
//! never fragmented: one must fit in one Ethernet frame.
//!
//! One task at a time may wait in `recv_from`, and one in `send_to`
//! (smoltcp keeps one waker per direction: a second waiter would replace
//! the first, which would then not be woken).

use alloc::format;
use alloc::rc::Rc;
use core::future::poll_fn;
use core::task::Poll;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::IpEndpoint;
use unikit_runtime::cancel_requested;

use crate::Error;
use crate::stack::Shared;

/// The IPv4 and UDP headers in front of a datagram's payload.
const HEADERS_LEN: usize = 20 + 8;

/// A bound UDP port. Dropping it unbinds the port.
pub struct UdpSocket {
    shared: Rc<Shared>,
    handle: SocketHandle,
    port: u16,
}

impl UdpSocket {
    pub(crate) fn new(shared: Rc<Shared>, handle: SocketHandle, port: u16) -> Self {
        UdpSocket {
            shared,
            handle,
            port,
        }
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the next datagram and copies it into `buf`: its length
    /// and sender. A datagram longer than `buf` is dropped and reported as
    /// [`Error::InvalidArgument`]. Cancelable.
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, IpEndpoint), Error> {
        poll_fn(|cx| {
            if cancel_requested() {
                return Poll::Ready(Err(Error::Canceled));
            }
            let mut state = self.shared.borrow_mut();
            let socket = state.sockets.get_mut::<udp::Socket>(self.handle);
            match socket.recv_slice(buf) {
                Ok((len, meta)) => Poll::Ready(Ok((len, meta.endpoint))),
                Err(udp::RecvError::Exhausted) => {
                    socket.register_recv_waker(cx.waker());
                    Poll::Pending
                }
                Err(udp::RecvError::Truncated) => Poll::Ready(Err(Error::invalid(format!(
                    "recv_from: a datagram longer than the {}-byte buffer was dropped",
                    buf.len()
                )))),
            }
        })
        .await
    }

    /// Queues `buf` as one datagram to `to`, waiting for room in the send
    /// queue. Fails with [`Error::InvalidArgument`] for a datagram that
    /// cannot fit in one frame or in the queue, [`Error::NoRoute`] for an
    /// unusable destination. Cancelable.
    pub async fn send_to(&self, buf: &[u8], to: IpEndpoint) -> Result<(), Error> {
        {
            let state = self.shared.borrow();
            let largest = state
                .config
                .udp_buffer_size
                .min(state.mtu.saturating_sub(HEADERS_LEN));
            if buf.len() > largest {
                return Err(Error::invalid(format!(
                    "send_to: a {}-byte datagram (at most {largest} bytes fit in one frame and the send queue)",
                    buf.len()
                )));
            }
        }
        poll_fn(|cx| {
            if cancel_requested() {
                return Poll::Ready(Err(Error::Canceled));
            }
            let mut state = self.shared.borrow_mut();
            let socket = state.sockets.get_mut::<udp::Socket>(self.handle);
            match socket.send_slice(buf, to) {
                Ok(()) => {
                    state.wake_runner();
                    Poll::Ready(Ok(()))
                }
                Err(udp::SendError::BufferFull) => {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
                Err(udp::SendError::Unaddressable) => Poll::Ready(Err(Error::NoRoute)),
            }
        })
        .await
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        let mut state = self.shared.borrow_mut();
        state.sockets.remove(self.handle);
    }
}
