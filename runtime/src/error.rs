//! Rejections: why a promise did not produce its value.
//!
//! Lwt rejects a promise with an OCaml exception. Rust has no exceptions, so a
//! rejected promise carries an [`Error`], a small enum whose variants are the
//! rejections the runtime itself produces and whose [`Error::Failed`] variant
//! carries any error value the program rejects with.
//!
//! * Cancellation is its own variant, [`Error::Canceled`] (Lwt's
//!   `Lwt.Canceled`), so `matches!(e, Error::Canceled)` or
//!   [`Error::is_canceled`] recognise it without downcasting.
//! * Every error type implementing [`core::error::Error`] converts into
//!   [`Error::Failed`], so `?` works inside tasks; [`Error::downcast_ref`]
//!   gets the original value back.
//! * `Error` is cheap to clone (the failure is reference counted): `join`
//!   and `choose` hand the same rejection to several places.
//!
//! # Two words
//!
//! Every variant's data is one thin pointer, so an `Error` is two words
//! and a `Result<T, Error>` for a `T` of one word is two words too.
//! Every await and every poll moves such results around, through memory
//! (an enum nested in `Result` is returned through memory even at two
//! words): with a fat `&'static str` and `Rc<dyn Error>` they were three
//! words, one more to store, copy and load each time (the benchmark's
//! `wait_wakeup` shows it). Hence
//! [`Error::InvalidArgument`]'s `&'static &'static str` (write
//! `Error::InvalidArgument(&"why")`) and the boxed error value of
//! [`Error::Failed`] (a failure is rare; it costs a second allocation).
//!
//! Expected errors (a closed connection, a parse error the caller handles)
//! belong in the promise's value as a `Result`, as the MirageOS tutorial
//! advises; `Error` is for what Lwt would raise.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use core::fmt;

/// The reason a promise was rejected.
#[derive(Clone)]
pub enum Error {
    /// The promise was canceled (Lwt's `Canceled`).
    Canceled,
    /// A [`crate::time::timeout`] expired (Lwt_unix's `Timeout`).
    Timeout,
    /// The [`crate::Resolver`] was dropped without resolving its promise.
    ///
    /// Lwt leaves such a promise pending forever; here the waiter learns
    /// that nobody will resolve it.
    Abandoned,
    /// A combinator was called with arguments it cannot work with, such as
    /// `choose` on no promise (Lwt's `Invalid_argument`). A reference to
    /// the message, so that it takes one word (see "Two words" above).
    InvalidArgument(&'static &'static str),
    /// The program rejected the promise with this error value (boxed
    /// behind the count, so that it takes one word).
    Failed(Rc<Box<dyn core::error::Error>>),
}

impl Error {
    /// A failure carrying only a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::Failed(Rc::new(Box::new(Message(message.into()))))
    }

    /// Whether this is the rejection of a canceled promise.
    pub fn is_canceled(&self) -> bool {
        matches!(self, Error::Canceled)
    }

    /// The failure's error value, if it is an `E`.
    pub fn downcast_ref<E: core::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Failed(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }
}

impl<E: core::error::Error + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        Error::Failed(Rc::new(Box::new(e)))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Canceled => f.write_str("canceled"),
            Error::Timeout => f.write_str("timeout"),
            Error::Abandoned => f.write_str("resolver dropped without resolving"),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            _ => fmt::Display::fmt(self, f),
        }
    }
}

impl PartialEq for Error {
    /// Runtime rejections compare by variant; failures compare by their
    /// message, which is what tests and logs look at.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Error::Canceled, Error::Canceled)
            | (Error::Timeout, Error::Timeout)
            | (Error::Abandoned, Error::Abandoned) => true,
            (Error::InvalidArgument(a), Error::InvalidArgument(b)) => a == b,
            (Error::Failed(a), Error::Failed(b)) => alloc::format!("{a}") == alloc::format!("{b}"),
            _ => false,
        }
    }
}

/// The error value of [`Error::msg`].
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::error::Error for Message {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_and_a_one_word_result_are_two_words() {
        let word = core::mem::size_of::<usize>();
        assert_eq!(core::mem::size_of::<Error>(), 2 * word);
        assert_eq!(core::mem::size_of::<Result<usize, Error>>(), 2 * word);
        assert_eq!(core::mem::size_of::<Result<(), Error>>(), 2 * word);
    }

    #[test]
    fn a_failure_keeps_its_value_and_message() {
        let error = Error::from(core::fmt::Error);
        assert!(error.downcast_ref::<core::fmt::Error>().is_some());
        assert_eq!(
            alloc::format!("{error}"),
            "an error occurred when formatting an argument"
        );
        assert_eq!(
            alloc::format!("{}", Error::InvalidArgument(&"no promise")),
            "invalid argument: no promise"
        );
    }
}
