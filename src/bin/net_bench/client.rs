//! The host-side clients: the first-reply probe, TCP echo throughput and
//! round trips, and an HTTP/1.1 load generator.
//!
//! All of them are plain `std::net` with threads, the same code against
//! both systems, talking to the host ports QEMU forwards to the guest.
//! QEMU's user networking accepts a connection on the host before the
//! guest has answered it, so "connected" means nothing: only bytes that
//! came back from the guest count as a reply.
//!
//! The HTTP client sends `GET /` requests with HTTP/1.1 keep-alive and
//! reads each response whole (status line, headers, `Content-Length`
//! body) before the next. When the server closes the connection after a
//! response (`Connection: close`, or an HTTP/1.0 response without
//! keep-alive) the client opens a new one, and counts how often it did.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// The body both HTTP servers serve at `/`.
pub const HELLO: &[u8] = b"hello mirage world!\n";

/// The address QEMU forwards `port` from.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A connection to `port` that sends small writes at once and gives up
/// reading after `timeout`.
fn open(port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(local(port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    Ok(stream)
}

/// How often the probe opens a new connection while none has answered.
const PROBE_EVERY: Duration = Duration::from_millis(50);
/// At most this many probe connections wait for their echo at once.
const PROBE_PENDING: usize = 16;

/// Waits until a TCP echo through `port` comes back whole, or `deadline`,
/// or `gave_up()` says the guest is gone. Returns when the echo arrived.
///
/// A connection made before the guest listens is reset or just stays
/// silent (QEMU keeps retrying the guest's SYN), so the probe opens a new
/// one every [`PROBE_EVERY`] and polls every open one for the echo.
pub fn first_echo(
    port: u16,
    deadline: Instant,
    mut gave_up: impl FnMut() -> bool,
) -> Option<Instant> {
    const PING: &[u8] = b"ping\n";
    let mut pending: Vec<(TcpStream, Vec<u8>)> = Vec::new();
    let mut next_probe = Instant::now();
    while Instant::now() < deadline && !gave_up() {
        if Instant::now() >= next_probe {
            next_probe += PROBE_EVERY;
            if let Ok(mut stream) = TcpStream::connect_timeout(&local(port), PROBE_EVERY) {
                let sent = stream.set_nodelay(true).is_ok()
                    && stream.write_all(PING).is_ok()
                    && stream.set_nonblocking(true).is_ok();
                if sent {
                    if pending.len() == PROBE_PENDING {
                        pending.remove(0);
                    }
                    pending.push((stream, Vec::new()));
                }
            }
        }
        let mut buffer = [0; 64];
        let mut answered = false;
        pending.retain_mut(|(stream, received)| match stream.read(&mut buffer) {
            Ok(0) => false,
            Ok(count) => {
                received.extend_from_slice(&buffer[..count]);
                answered |= received.as_slice() == PING;
                true
            }
            Err(error) => error.kind() == ErrorKind::WouldBlock,
        });
        if answered {
            return Some(Instant::now());
        }
        thread::sleep(Duration::from_millis(2));
    }
    None
}

/// The byte at offset `index` of the echo stream: a pattern that does not
/// repeat every power of two, so a lost or repeated block shows.
fn pattern(index: usize) -> u8 {
    (index % PERIOD) as u8
}

/// The pattern's period: a prime.
const PERIOD: usize = 251;

/// Sends `total` bytes through the echo server on `port` while reading
/// them back on another thread; returns the time from the first byte sent
/// to the last byte received, or what went wrong (a wrong byte included).
pub fn echo_throughput(port: u16, total: usize, timeout: Duration) -> Result<Duration, String> {
    let stream = open(port, timeout).map_err(|error| format!("connect: {error}"))?;
    let mut writer = stream.try_clone().map_err(|error| error.to_string())?;
    let started = Instant::now();
    let sender = thread::spawn(move || -> io::Result<()> {
        // A whole number of pattern periods: every chunk starts at a
        // multiple of the period, so every chunk is a prefix of this one.
        let chunk: Vec<u8> = (0..PERIOD * 261).map(pattern).collect();
        let mut sent = 0;
        while sent < total {
            let count = (total - sent).min(chunk.len());
            writer.write_all(&chunk[..count])?;
            sent += count;
        }
        Ok(())
    });
    let mut reader = stream;
    let mut buffer = vec![0; 64 * 1024];
    let mut received = 0;
    while received < total {
        let count = match reader.read(&mut buffer) {
            Ok(0) => {
                return Err(format!(
                    "the server closed after {received} of {total} bytes"
                ));
            }
            Ok(count) => count,
            Err(error) => return Err(format!("after {received} of {total} bytes: {error}")),
        };
        if let Some(wrong) = (0..count).find(|&i| buffer[i] != pattern(received + i)) {
            return Err(format!("byte {} came back wrong", received + wrong));
        }
        received += count;
    }
    let elapsed = started.elapsed();
    sender
        .join()
        .expect("the sender")
        .map_err(|error| format!("send: {error}"))?;
    let _ = reader.shutdown(Shutdown::Both);
    Ok(elapsed)
}

/// The round-trip times of `count` echoes of a 64-byte message on one
/// connection (after a few unmeasured ones), in the order measured.
pub fn echo_round_trips(
    port: u16,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Duration>, String> {
    const WARM_UP: usize = 20;
    let mut stream = open(port, timeout).map_err(|error| format!("connect: {error}"))?;
    let mut times = Vec::with_capacity(count);
    let mut reply = [0; 64];
    for trip in 0..WARM_UP + count {
        let message = [b'a' + (trip % 26) as u8; 64];
        let started = Instant::now();
        stream
            .write_all(&message)
            .and_then(|()| stream.read_exact(&mut reply))
            .map_err(|error| format!("round trip {trip}: {error}"))?;
        let elapsed = started.elapsed();
        if reply != message {
            return Err(format!("round trip {trip} came back changed"));
        }
        if trip >= WARM_UP {
            times.push(elapsed);
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    Ok(times)
}

/// The `percent`th percentile of `values` by the nearest-rank method (the
/// smallest value with at least `percent`% of the values at or below it).
pub fn percentile<T: Ord + Copy>(values: &[T], percent: u32) -> T {
    assert!(!values.is_empty() && (1..=100).contains(&percent));
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = (values.len() * percent as usize).div_ceil(100);
    sorted[rank - 1]
}

/// One HTTP response, as far as the client cares.
#[derive(Debug, PartialEq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// Whether the server closes the connection after it.
    pub closes: bool,
}

/// Parses the response at the start of `buffer`: `Ok(Some((response,
/// length)))` once it is whole, `Ok(None)` while more bytes are needed,
/// an error for what is not an HTTP/1.x response with a length.
pub fn parse_response(buffer: &[u8]) -> Result<Option<(Response, usize)>, String> {
    let Some(head_end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| "a non-UTF-8 head")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts
        .next()
        .and_then(|code| code.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| format!("not an HTTP/1.x status line: {status_line:?}"))?;
    let mut length = None;
    let mut connection = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("a header without a colon: {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("connection") {
            connection = Some(value.to_ascii_lowercase());
        }
    }
    let length = length.ok_or("a response without Content-Length")?;
    let body_start = head_end + 4;
    if buffer.len() < body_start + length {
        return Ok(None);
    }
    let closes = match connection.as_deref() {
        Some("close") => true,
        Some("keep-alive") => false,
        _ => version == "HTTP/1.0",
    };
    let response = Response {
        status,
        body: buffer[body_start..body_start + length].to_vec(),
        closes,
    };
    Ok(Some((response, body_start + length)))
}

/// What an HTTP load run did.
#[derive(Debug, Default)]
pub struct Load {
    /// Whole `200` responses with the expected body that arrived within
    /// the run's duration.
    pub requests: u64,
    /// Connections opened (the first of each client included), when the
    /// client tells.
    pub connections: Option<u64>,
    /// Failed requests: connection errors, early closes, wrong answers.
    pub errors: u64,
    /// The first error, to show.
    pub first_error: Option<String>,
    /// The run's duration (responses that arrive after it are not
    /// counted).
    pub elapsed: Duration,
}

impl Load {
    /// Responses per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// `clients` threads each requesting `GET /` from `port` back to back for
/// `duration`, each on a keep-alive connection it reopens when the server
/// closes it.
pub fn http_load(port: u16, clients: usize, duration: Duration) -> Load {
    let started = Instant::now();
    let deadline = started + duration;
    let loads: Vec<Load> = thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| scope.spawn(move || http_client(port, deadline)))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("an HTTP client"))
            .collect()
    });
    let mut total = Load {
        elapsed: duration,
        ..Load::default()
    };
    for load in loads {
        total.requests += load.requests;
        total.connections = Some(total.connections.unwrap_or(0) + load.connections.unwrap_or(0));
        total.errors += load.errors;
        total.first_error = total.first_error.or(load.first_error);
    }
    total
}

/// The same load from `wrk` (`clients` connections over at most two
/// threads): its `GET /` responses per second, of which non-2xx ones and
/// socket errors count as failed.
pub fn wrk_load(wrk: &Path, port: u16, clients: usize, duration: Duration) -> Result<Load, String> {
    let output = Command::new(wrk)
        .arg(format!("-t{}", clients.min(2)))
        .arg(format!("-c{clients}"))
        .arg(format!("-d{}s", duration.as_secs()))
        .arg(format!("--timeout={}s", REQUEST_TIMEOUT.as_secs()))
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .map_err(|error| format!("wrk: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse_wrk(&text)
}

/// Reads wrk's report: `N requests in T s`, and the optional `Socket
/// errors: connect a, read b, write c, timeout d` and `Non-2xx or 3xx
/// responses: n` lines.
pub fn parse_wrk(report: &str) -> Result<Load, String> {
    let missing = || format!("no `N requests in Ts` line in wrk's report:\n{report}");
    let (count, seconds) = report
        .lines()
        .find_map(|line| {
            let (count, rest) = line.trim().split_once(" requests in ")?;
            let seconds = rest.split(',').next()?.strip_suffix('s')?;
            Some((count.parse::<u64>().ok()?, seconds.parse::<f64>().ok()?))
        })
        .ok_or_else(missing)?;
    let number_after = |prefix: &str| -> u64 {
        report
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix)?.trim().parse().ok())
            .unwrap_or(0)
    };
    let bad_status = number_after("Non-2xx or 3xx responses:");
    let socket_errors: u64 = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("Socket errors:"))
        .map_or(0, |errors| {
            errors
                .split(',')
                .filter_map(|error| error.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        });
    let errors = bad_status + socket_errors;
    Ok(Load {
        requests: count.saturating_sub(bad_status),
        connections: None,
        errors,
        first_error: (errors > 0)
            .then(|| format!("{bad_status} non-2xx responses, {socket_errors} socket errors")),
        elapsed: Duration::from_secs_f64(seconds),
    })
}

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn http_client(port: u16, deadline: Instant) -> Load {
    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n";
    let mut load = Load::default();
    let mut connection: Option<TcpStream> = None;
    let mut buffer = Vec::with_capacity(4096);
    let fail = |load: &mut Load, error: String| {
        load.errors += 1;
        load.first_error.get_or_insert(error);
    };
    while Instant::now() < deadline {
        let stream = match connection.as_mut() {
            Some(stream) => stream,
            None => {
                *load.connections.get_or_insert(0) += 1;
                match open(port, REQUEST_TIMEOUT) {
                    Ok(stream) => connection.insert(stream),
                    Err(error) => {
                        fail(&mut load, format!("connect: {error}"));
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                }
            }
        };
        buffer.clear();
        match request(stream, REQUEST, &mut buffer) {
            Ok(response) if response.status == 200 && response.body == HELLO => {
                if Instant::now() <= deadline {
                    load.requests += 1;
                }
                if response.closes {
                    connection = None;
                }
            }
            Ok(response) => {
                fail(
                    &mut load,
                    format!("status {} body {:?}", response.status, response.body),
                );
                connection = None;
            }
            Err(error) => {
                fail(&mut load, error);
                connection = None;
            }
        }
    }
    load
}

/// Sends `request` and reads its response into `buffer`.
fn request(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<Response, String> {
    stream
        .write_all(request)
        .map_err(|error| format!("send: {error}"))?;
    let mut chunk = [0; 4096];
    loop {
        if let Some((response, _)) = parse_response(buffer)? {
            return Ok(response);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(format!("closed after {} bytes of a response", buffer.len())),
            Ok(count) => buffer.extend_from_slice(&chunk[..count]),
            Err(error) => return Err(format!("receive: {error}")),
        }
    }
}

/// One `GET /` on a new connection: whether it answered `200` with
/// [`HELLO`].
pub fn http_get_ok(port: u16, timeout: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&local(port), timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let mut buffer = Vec::new();
    request(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        &mut buffer,
    )
    .is_ok_and(|response| response.status == 200 && response.body == HELLO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_reports_give_the_good_responses_and_the_failures() {
        let clean = "Running 5s test @ http://127.0.0.1:18480/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   128.95ms  409.41ms   3.37s    94.41%
    Req/Sec   142.24     78.55   303.00     63.33%
  1283 requests in 5.01s, 278.15KB read
Requests/sec:    255.88
Transfer/sec:     55.47KB
";
        let load = parse_wrk(clean).unwrap();
        assert_eq!(
            (load.requests, load.errors, load.first_error),
            (1283, 0, None)
        );
        assert_eq!(load.elapsed, Duration::from_secs_f64(5.01));
        let failing = "  900 requests in 10.00s, 1.2MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 100
Requests/sec:     90.00
";
        let load = parse_wrk(failing).unwrap();
        assert_eq!((load.requests, load.errors), (800, 106));
        assert!(parse_wrk("Running 5s test\n").is_err());
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<u32> = (1..=1000).rev().collect();
        assert_eq!(percentile(&values, 50), 500);
        assert_eq!(percentile(&values, 99), 990);
        assert_eq!(percentile(&values, 100), 1000);
        assert_eq!(percentile(&[7, 3], 50), 3);
        assert_eq!(percentile(&[7, 3], 99), 7);
        assert_eq!(percentile(&[42], 1), 42);
    }

    #[test]
    fn a_keep_alive_response_is_read_whole_and_no_further() {
        let bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 20\r\n\r\nhello mirage world!\nHTTP/1.1";
        let (response, length) = parse_response(bytes).unwrap().unwrap();
        assert_eq!(
            response,
            Response {
                status: 200,
                body: HELLO.to_vec(),
                closes: false
            }
        );
        assert_eq!(length, bytes.len() - "HTTP/1.1".len());
    }

    #[test]
    fn closing_responses_are_told_apart() {
        let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
        assert!(parse_response(close).unwrap().unwrap().0.closes);
        let http10 = b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let (response, _) = parse_response(http10).unwrap().unwrap();
        assert_eq!((response.status, response.closes), (404, true));
        let kept = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
        assert!(!parse_response(kept).unwrap().unwrap().0.closes);
    }

    #[test]
    fn a_partial_response_waits_for_more_bytes() {
        let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nhello mirage world!\n";
        for cut in 0..whole.len() {
            assert_eq!(parse_response(&whole[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse_response(whole).unwrap().is_some());
    }

    #[test]
    fn what_is_not_a_response_with_a_length_is_an_error() {
        assert!(parse_response(b"SSH-2.0-x\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }
}
