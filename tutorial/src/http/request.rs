//! The HTTP/1.1 request side of [`super`], without any socket: given the
//! bytes a connection has received so far, decide whether a whole request
//! is there and, if so, what to answer and whether to close afterwards.
//!
//! Request heads are parsed by `httparse`. The server is deliberately
//! small and strict, so malformed or oversized input gets an error status
//! and the connection is closed, never a panic or an unbounded buffer:
//!
//! | request | answer | connection |
//! |---|---|---|
//! | `GET` or `HEAD` of `/` | `200 OK` with [`BODY`] (no body for `HEAD`) | kept alive on HTTP/1.1 unless `Connection: close`; closed on HTTP/1.0 unless `Connection: keep-alive` |
//! | `GET` or `HEAD` of another path | `404 Not Found` | as above |
//! | another method | `405 Method Not Allowed` with `Allow: GET, HEAD` | as above |
//! | a head that does not parse | `400 Bad Request` | closed |
//! | a head over [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`] headers | `431 Request Header Fields Too Large` | closed |
//! | a body over [`MAX_BODY_BYTES`], or a bad `Content-Length` | `413 Content Too Large` / `400` | closed |
//! | `Transfer-Encoding` | `501 Not Implemented` | closed |
//!
//! A request body (allowed, though `/` ignores it) is skipped once it has
//! fully arrived, so pipelined requests after it are read correctly.

use alloc::format;
use alloc::vec::Vec;

/// What `/` serves.
pub const BODY: &str = "hello mirage world!\n";

/// The longest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// The most headers a request may have.
pub const MAX_HEADERS: usize = 32;

/// The longest request body skipped.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What to do with the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// No complete request yet: read more.
    NeedMore,
    /// Answer the request at the start of the buffer.
    Respond(Reply),
}

/// The answer to one request.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status code, for the log.
    pub status: u16,
    /// The whole response, head and body.
    pub bytes: Vec<u8>,
    /// How many received bytes the request used (head and body).
    pub consumed: usize,
    /// Whether to close the connection after sending the response.
    pub close: bool,
}

/// Looks at the start of `received` for one request.
pub fn next_step(received: &[u8]) -> Step {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(received) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if received.len() > MAX_HEAD_BYTES => {
            return error(431, "Request Header Fields Too Large");
        }
        Ok(httparse::Status::Partial) => return Step::NeedMore,
        Err(httparse::Error::TooManyHeaders) => {
            return error(431, "Request Header Fields Too Large");
        }
        Err(_) => return error(400, "Bad Request"),
    };
    if head_len > MAX_HEAD_BYTES {
        return error(431, "Request Header Fields Too Large");
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .filter(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value)
            .collect::<Vec<_>>()
    };
    if !header("transfer-encoding").is_empty() {
        return error(501, "Not Implemented");
    }
    let body_len = match header("content-length").as_slice() {
        [] => 0,
        [value] => match core::str::from_utf8(value)
            .ok()
            .filter(|text| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
            .and_then(|text| text.parse::<usize>().ok())
        {
            Some(len) if len > MAX_BODY_BYTES => return error(413, "Content Too Large"),
            Some(len) => len,
            None => return error(400, "Bad Request"),
        },
        _ => return error(400, "Bad Request"),
    };
    if received.len() < head_len + body_len {
        return Step::NeedMore;
    }
    let connection = header("connection");
    let says = |token: &str| {
        connection.iter().any(|value| {
            value
                .split(|&byte| byte == b',')
                .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    let close = if request.version == Some(0) {
        !says("keep-alive")
    } else {
        says("close")
    };
    let method = request.method.unwrap_or_default();
    let head_only = method == "HEAD";
    let (status, reason, body, extra) = match (method, request.path.unwrap_or_default()) {
        ("GET" | "HEAD", "/") => (200, "OK", BODY, ""),
        ("GET" | "HEAD", _) => (404, "Not Found", "not found\n", ""),
        _ => (
            405,
            "Method Not Allowed",
            "method not allowed\n",
            "Allow: GET, HEAD\r\n",
        ),
    };
    Step::Respond(Reply {
        status,
        bytes: response(status, reason, body, extra, close, head_only),
        consumed: head_len + body_len,
        close,
    })
}

/// The reply to a request that cannot be served: the status, and close.
pub fn error_reply(status: u16, reason: &str) -> Reply {
    let body = format!("{}\n", reason.to_ascii_lowercase());
    Reply {
        status,
        bytes: response(status, reason, &body, "", true, false),
        consumed: 0,
        close: true,
    }
}

fn error(status: u16, reason: &str) -> Step {
    Step::Respond(error_reply(status, reason))
}

fn response(
    status: u16,
    reason: &str,
    body: &str,
    extra_headers: &str,
    close: bool,
    head_only: bool,
) -> Vec<u8> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    let mut bytes = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra_headers}{connection}\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        bytes.extend_from_slice(body.as_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn reply(request: &str) -> Reply {
        match next_step(request.as_bytes()) {
            Step::Respond(reply) => reply,
            Step::NeedMore => panic!("{request:?}: needs more"),
        }
    }

    fn text(reply: &Reply) -> String {
        String::from_utf8(reply.bytes.clone()).unwrap()
    }

    #[test]
    fn the_root_is_served_and_the_connection_kept_alive() {
        let request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let reply = reply(request);
        assert_eq!(
            text(&reply),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\nhello mirage world!\n"
        );
        assert_eq!((reply.consumed, reply.close), (request.len(), false));
    }

    #[test]
    fn other_paths_are_not_found_and_other_methods_not_allowed() {
        assert_eq!(reply("GET /x HTTP/1.1\r\n\r\n").status, 404);
        let post = reply("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!(post.status, 405);
        assert!(text(&post).contains("Allow: GET, HEAD\r\n"));
        assert_eq!(post.consumed, 41);
    }

    #[test]
    fn head_gets_the_length_without_the_body() {
        let reply = reply("HEAD / HTTP/1.1\r\n\r\n");
        assert!(text(&reply).ends_with("Content-Length: 20\r\n\r\n"));
    }

    #[test]
    fn connection_close_and_http_1_0_close_unless_kept_alive() {
        assert!(reply("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").close);
        assert!(reply("GET / HTTP/1.1\r\nConnection: te, close\r\n\r\n").close);
        assert!(reply("GET / HTTP/1.0\r\n\r\n").close);
        assert!(!reply("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").close);
        assert!(text(&reply("GET / HTTP/1.0\r\n\r\n")).contains("Connection: close\r\n"));
    }

    #[test]
    fn incomplete_requests_need_more() {
        assert_eq!(next_step(b""), Step::NeedMore);
        assert_eq!(next_step(b"GET / HTTP/1.1\r\nHost: x\r\n"), Step::NeedMore);
        assert_eq!(
            next_step(b"PUT / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"),
            Step::NeedMore
        );
    }

    #[test]
    fn pipelined_requests_are_answered_one_at_a_time() {
        let two = "GET /a HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        let first = reply(two);
        assert_eq!(first.status, 404);
        assert_eq!(reply(&two[first.consumed..]).status, 200);
    }

    #[test]
    fn malformed_requests_are_refused_and_closed() {
        for bad in [
            "GARBAGE\r\n\r\n",
            "GET / HTTP/9.9\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "\x00\x01\x02\r\n\r\n",
        ] {
            let reply = reply(bad);
            assert_eq!((reply.status, reply.close), (400, true), "{bad:?}");
            assert!(text(&reply).starts_with("HTTP/1.1 400 Bad Request\r\n"));
        }
    }

    #[test]
    fn oversized_requests_are_refused() {
        let long_head = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(reply(&long_head).status, 431);
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(reply(&many).status, 431);
        let big_body = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(reply(&big_body).status, 413);
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(reply(chunked).status, 501);
    }
}
