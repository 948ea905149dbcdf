//! TCP: listeners and streams.
//!
//! A [`TcpListener`] hands out connections the runner has already
//! established (see [`crate::Stack::listen`]); a [`TcpStream`] reads and
//! writes its socket's buffers and waits on smoltcp's socket wakers when
//! they are empty or full. Every wait is cancelable: a canceled operation
//! returns [`Error::Canceled`] having read or written nothing, so the
//! stream stays usable.
//!
//! One task at a time may wait to read a stream, and one to write it
//! (smoltcp keeps one waker per direction); [`TcpStream::split`] gives the
//! two halves to two futures. Any number of tasks may wait in
//! [`TcpListener::accept`].
//!
//! Ending a connection:
//!
//! * [`TcpStream::shutdown`] sends FIN after the data already written: the
//!   peer reads end of stream; this side can still read.
//! * [`TcpStream::close`] does the same and waits until the peer has
//!   acknowledged everything; the stack then finishes the TCP close by
//!   itself.
//! * Dropping a stream without `close` aborts the connection (the peer gets
//!   a reset) and frees its socket.

use alloc::rc::Rc;
use core::future::poll_fn;
use core::task::Poll;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint};
use unikit_runtime::cancel_requested;

use crate::Error;
use crate::stack::{Shared, register};

/// A TCP port being listened on. Dropping it stops listening.
pub struct TcpListener {
    shared: Rc<Shared>,
    port: u16,
}

impl TcpListener {
    pub(crate) fn new(shared: Rc<Shared>, port: u16) -> Self {
        TcpListener { shared, port }
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The next established connection. Cancelable.
    pub async fn accept(&self) -> Result<TcpStream, Error> {
        poll_fn(|cx| {
            if cancel_requested() {
                return Poll::Ready(Err(Error::Canceled));
            }
            let mut state = self.shared.borrow_mut();
            let listener = state
                .listeners
                .get_mut(&self.port)
                .expect("a listener is registered while its handle lives");
            match listener.ready.pop_front() {
                Some(handle) => {
                    // The backlog has room again.
                    state.wake_runner();
                    Poll::Ready(Ok(handle))
                }
                None => {
                    register(&mut listener.waiters, cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
        .map(|handle| TcpStream::new(self.shared.clone(), handle))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.shared.borrow_mut().close_listener(self.port);
    }
}

/// A TCP connection. Also implements `embedded_io_async`'s `Read` and
/// `Write`.
pub struct TcpStream {
    shared: Rc<Shared>,
    handle: SocketHandle,
    local: IpEndpoint,
    remote: IpEndpoint,
    /// This side sent its FIN.
    shut_down: bool,
    /// `close` finished: the socket is left to close by itself.
    closed: bool,
}

impl core::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl TcpStream {
    pub(crate) fn new(shared: Rc<Shared>, handle: SocketHandle) -> Self {
        let unknown = IpEndpoint::new(IpAddress::v4(0, 0, 0, 0), 0);
        let (local, remote) = {
            let mut state = shared.borrow_mut();
            let socket = state.sockets.get_mut::<tcp::Socket>(handle);
            (
                socket.local_endpoint().unwrap_or(unknown),
                socket.remote_endpoint().unwrap_or(unknown),
            )
        };
        TcpStream {
            shared,
            handle,
            local,
            remote,
            shut_down: false,
            closed: false,
        }
    }

    /// The peer's address and port.
    pub fn remote_endpoint(&self) -> IpEndpoint {
        self.remote
    }

    /// This side's address and port.
    pub fn local_endpoint(&self) -> IpEndpoint {
        self.local
    }

    /// Runs `f` on the socket.
    fn with_socket<R>(&self, f: impl FnOnce(&mut tcp::Socket<'static>) -> R) -> R {
        let mut state = self.shared.borrow_mut();
        f(state.sockets.get_mut::<tcp::Socket>(self.handle))
    }

    /// Reads what has arrived, waiting until something has: the number of
    /// bytes read, 0 at end of stream (the peer shut down its side) or
    /// for an empty `buf`. Fails with [`Error::ConnectionReset`] if the
    /// connection was reset or timed out. Cancelable.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        read(&self.shared, self.handle, buf).await
    }

    /// Queues as much of `buf` as fits in the send buffer, waiting until
    /// some fits: the number of bytes queued. Fails with
    /// [`Error::ConnectionClosed`] after [`TcpStream::shutdown`], and
    /// [`Error::ConnectionReset`] if the connection was reset. Cancelable.
    pub async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        write(&self.shared, self.handle, self.shut_down, buf).await
    }

    /// Queues all of `buf`, waiting for room as needed. On an error or a
    /// cancellation, a prefix of `buf` may have been queued.
    pub async fn write_all(&mut self, buf: &[u8]) -> Result<(), Error> {
        write_all(&self.shared, self.handle, self.shut_down, buf).await
    }

    /// The stream's reading and writing halves, to read and write
    /// concurrently (from two futures joined, or two tasks in one scope).
    pub fn split(&mut self) -> (TcpReader<'_>, TcpWriter<'_>) {
        (TcpReader { stream: self }, TcpWriter { stream: self })
    }

    /// Waits until the peer has acknowledged everything written so far.
    /// Cancelable.
    pub async fn flush(&mut self) -> Result<(), Error> {
        let shut_down = self.shut_down;
        poll_fn(|cx| {
            if cancel_requested() {
                return Poll::Ready(Err(Error::Canceled));
            }
            self.with_socket(|socket| {
                if socket.state() == tcp::State::Closed {
                    // Closed after our FIN: all was delivered; else reset.
                    Poll::Ready(if shut_down {
                        Ok(())
                    } else {
                        Err(Error::ConnectionReset)
                    })
                } else if socket.send_queue() == 0 {
                    Poll::Ready(Ok(()))
                } else {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Closes the sending half: a FIN follows the data already written,
    /// and the peer reads end of stream after it. Reading goes on until
    /// the peer closes its half. Does not wait; shutting down again does
    /// nothing.
    pub async fn shutdown(&mut self) -> Result<(), Error> {
        if self.shut_down {
            return Ok(());
        }
        self.shut_down = true;
        let mut state = self.shared.borrow_mut();
        let socket = state.sockets.get_mut::<tcp::Socket>(self.handle);
        if socket.state() == tcp::State::Closed {
            return Err(Error::ConnectionReset);
        }
        socket.close();
        state.wake_runner();
        Ok(())
    }

    /// Closes the connection gracefully: sends FIN after the data already
    /// written and waits until the peer has acknowledged all of it. The
    /// stack finishes the TCP close (the peer's FIN, TIME-WAIT) by itself
    /// and then frees the socket. Data arriving after `close` is
    /// discarded. Canceling it aborts the connection.
    pub async fn close(mut self) -> Result<(), Error> {
        self.shutdown().await?;
        poll_fn(|cx| {
            if cancel_requested() {
                return Poll::Ready(Err(Error::Canceled));
            }
            self.with_socket(|socket| match socket.state() {
                tcp::State::FinWait2 | tcp::State::TimeWait | tcp::State::Closed => {
                    Poll::Ready(Ok(()))
                }
                _ => {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await?;
        self.closed = true;
        Ok(())
    }
}

/// The reading half of a [`TcpStream`] ([`TcpStream::split`]).
pub struct TcpReader<'a> {
    stream: &'a TcpStream,
}

impl TcpReader<'_> {
    /// As [`TcpStream::read`].
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        read(&self.stream.shared, self.stream.handle, buf).await
    }
}

/// The writing half of a [`TcpStream`] ([`TcpStream::split`]).
pub struct TcpWriter<'a> {
    stream: &'a TcpStream,
}

impl TcpWriter<'_> {
    /// As [`TcpStream::write`].
    pub async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        let stream = self.stream;
        write(&stream.shared, stream.handle, stream.shut_down, buf).await
    }

    /// As [`TcpStream::write_all`].
    pub async fn write_all(&mut self, buf: &[u8]) -> Result<(), Error> {
        let stream = self.stream;
        write_all(&stream.shared, stream.handle, stream.shut_down, buf).await
    }
}

/// Reads from the socket `handle` (see [`TcpStream::read`]).
async fn read(shared: &Shared, handle: SocketHandle, buf: &mut [u8]) -> Result<usize, Error> {
    poll_fn(|cx| {
        if cancel_requested() {
            return Poll::Ready(Err(Error::Canceled));
        }
        let mut state = shared.borrow_mut();
        let socket = state.sockets.get_mut::<tcp::Socket>(handle);
        match socket.recv_slice(buf) {
            Ok(0) if !buf.is_empty() => {
                socket.register_recv_waker(cx.waker());
                Poll::Pending
            }
            Ok(read) => {
                // The window opened: let the runner tell the peer.
                state.wake_runner();
                Poll::Ready(Ok(read))
            }
            Err(tcp::RecvError::Finished) => Poll::Ready(Ok(0)),
            Err(tcp::RecvError::InvalidState) => Poll::Ready(Err(Error::ConnectionReset)),
        }
    })
    .await
}

/// Writes to the socket `handle` (see [`TcpStream::write`]).
async fn write(
    shared: &Shared,
    handle: SocketHandle,
    shut_down: bool,
    buf: &[u8],
) -> Result<usize, Error> {
    poll_fn(|cx| {
        if cancel_requested() {
            return Poll::Ready(Err(Error::Canceled));
        }
        if shut_down {
            return Poll::Ready(Err(Error::ConnectionClosed));
        }
        let mut state = shared.borrow_mut();
        let socket = state.sockets.get_mut::<tcp::Socket>(handle);
        match socket.send_slice(buf) {
            Ok(0) if !buf.is_empty() => {
                socket.register_send_waker(cx.waker());
                Poll::Pending
            }
            Ok(written) => {
                state.wake_runner();
                Poll::Ready(Ok(written))
            }
            Err(tcp::SendError::InvalidState) => Poll::Ready(Err(Error::ConnectionReset)),
        }
    })
    .await
}

/// Writes all of `buf` (see [`TcpStream::write_all`]).
async fn write_all(
    shared: &Shared,
    handle: SocketHandle,
    shut_down: bool,
    mut buf: &[u8],
) -> Result<(), Error> {
    while !buf.is_empty() {
        let written = write(shared, handle, shut_down, buf).await?;
        buf = &buf[written..];
    }
    Ok(())
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.shared.borrow_mut().abandon(self.handle, !self.closed);
    }
}

impl embedded_io_async::ErrorType for TcpStream {
    type Error = Error;
}

impl embedded_io_async::Read for TcpStream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        TcpStream::read(self, buf).await
    }
}

impl embedded_io_async::Write for TcpStream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        TcpStream::write(self, buf).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        TcpStream::flush(self).await
    }
}
