//! Errors of the stack's operations.
//!
//! One enum for every operation, so a unikernel matches on what happened
//! (`ConnectionRefused`, `ConnectionReset`, ...) instead of parsing
//! messages. It implements [`core::error::Error`], so `?` converts it into
//! the runtime's [`unikit_runtime::Error`] (as [`unikit_runtime::Error::Failed`],
//! from which [`unikit_runtime::Error::downcast_ref`] gets it back), and
//! [`embedded_io_async::Error`] with the matching [`ErrorKind`], so TCP
//! streams work with code written against `embedded-io-async`.

use alloc::string::String;
use core::fmt;

use embedded_io_async::ErrorKind;

/// Why a network operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The task awaiting the operation was canceled. The socket is left as
    /// it was before the operation (nothing read or written).
    Canceled,
    /// The peer answered the connection attempt with a reset: nothing
    /// listens on that port, or its backlog is full.
    ConnectionRefused,
    /// The connection attempt got no answer in time.
    TimedOut,
    /// The connection was reset by the peer, or aborted after its timeout
    /// expired with data unacknowledged.
    ConnectionReset,
    /// The operation needs the sending half, which this side already shut
    /// down ([`crate::TcpStream::shutdown`]).
    ConnectionClosed,
    /// An argument the operation cannot work with; the message says which
    /// and what was expected (for example a runtime argument
    /// `ipv4=10.0.0.300/24`).
    InvalidArgument(String),
    /// The port is already listened on or bound.
    AddressInUse,
    /// Every socket of the fixed pool is in use
    /// ([`crate::Config::max_tcp_sockets`]), the heap is too short for
    /// another socket's buffers (see `TCP_MEMORY_RESERVE`), or no
    /// ephemeral port is free.
    TooManySockets,
    /// No IPv4 address is configured yet, or the destination is not
    /// reachable (not on the local network and no gateway).
    NoRoute,
}

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Canceled => f.write_str("canceled"),
            Error::ConnectionRefused => f.write_str("connection refused"),
            Error::TimedOut => f.write_str("connection attempt timed out"),
            Error::ConnectionReset => f.write_str("connection reset"),
            Error::ConnectionClosed => f.write_str("connection already shut down for sending"),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::AddressInUse => f.write_str("address in use"),
            Error::TooManySockets => f.write_str("too many sockets"),
            Error::NoRoute => f.write_str("no route to host"),
        }
    }
}

impl core::error::Error for Error {}

impl embedded_io_async::Error for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Canceled => ErrorKind::Interrupted,
            Error::ConnectionRefused => ErrorKind::ConnectionRefused,
            Error::TimedOut => ErrorKind::TimedOut,
            Error::ConnectionReset => ErrorKind::ConnectionReset,
            Error::ConnectionClosed => ErrorKind::BrokenPipe,
            Error::InvalidArgument(_) => ErrorKind::InvalidInput,
            Error::AddressInUse => ErrorKind::AddrInUse,
            Error::TooManySockets => ErrorKind::OutOfMemory,
            Error::NoRoute => ErrorKind::AddrNotAvailable,
        }
    }
}
