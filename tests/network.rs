//! The network unikernels under QEMU with user networking, talked to by
//! host clients that are not part of this project: Python's `socket`
//! module and `curl` (installed through apt-get when missing, as QEMU is).
//!
//! Each test boots its unikernel with its own forwarded host port, waits
//! for the unikernel to say it is listening, runs the client, then stops
//! QEMU and checks what the unikernel logged.

mod common;

use common::{RUNNER, TIMEOUT_SECONDS};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use unikit::console_log;
use unikit::host::ensure_program;

/// How long a unikernel may take to boot and configure its network on a
/// loaded machine before the test gives up (a bound on a hang, not a
/// timing assertion).
const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// A unikernel serving on a forwarded host port, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    console: Arc<Mutex<String>>,
    lines: Receiver<String>,
}

impl Server {
    /// Boots `name` with `--net user`, forwarding a free host port to the
    /// unikernel's `guest_port` over `protocol`, and waits for the log
    /// line containing `ready`.
    fn start(name: &str, protocol: &str, guest_port: u16, ready: &str, args: &[&str]) -> Server {
        let port = free_port();
        let forward = format!("{protocol}:{port}:{guest_port}");
        Server::boot(
            name,
            &["--net", "user", "--forward", &forward],
            port,
            ready,
            args,
        )
    }

    /// Boots `name` with the runner options `network`, and waits for the
    /// log line containing `ready`.
    fn boot(name: &str, network: &[&str], port: u16, ready: &str, args: &[&str]) -> Server {
        let mut command = Command::new(RUNNER);
        command
            .args([name, "--timeout", TIMEOUT_SECONDS])
            .args(network)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if !args.is_empty() {
            command.arg("--").args(args);
        }
        let mut child = command.spawn().expect("the runner starts");
        let stdout = child.stdout.take().expect("piped");
        let console = Arc::new(Mutex::new(String::new()));
        let (sender, lines) = mpsc::channel();
        let kept = Arc::clone(&console);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                kept.lock().unwrap().push_str(&format!("{line}\n"));
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let server = Server {
            child,
            port,
            console,
            lines,
        };
        server.wait_for(ready);
        server
    }

    /// Waits until the unikernel logs a line containing `text`.
    fn wait_for(&self, text: &str) {
        loop {
            match self.lines.recv_timeout(STARTUP_LIMIT) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "no line with {text:?} within {STARTUP_LIMIT:?}; console:\n{}",
                    self.console()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "the runner exited before a line with {text:?}; console:\n{}",
                    self.console()
                ),
            }
        }
    }

    fn console(&self) -> String {
        self.console.lock().unwrap().clone()
    }

    /// The unikernel's log messages so far.
    fn messages(&self) -> Vec<String> {
        let console = self.console();
        console_log::parse_all(&console)
            .iter()
            .map(|line| line.message.to_owned())
            .collect()
    }
}

impl Drop for Server {
    /// Stops the runner as a user's Ctrl-C would (SIGTERM), so it stops
    /// QEMU and deletes a TAP device it created.
    fn drop(&mut self) {
        common::terminate(&self.child);
        let _ = self.child.wait();
    }
}

/// A host port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn program(name: &str, package: &str) -> PathBuf {
    ensure_program(name, &[package]).unwrap_or_else(|instruction| panic!("{instruction}"))
}

/// Runs a Python 3 client; panics with its output unless it exits 0.
fn python(script: &str, args: &[String]) -> String {
    let output = Command::new(program("python3", "python3"))
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    checked("python3", output)
}

fn curl(args: &[&str]) -> Output {
    Command::new(program("curl", "curl"))
        .args(["--silent", "--show-error", "--max-time", "60"])
        .args(args)
        .output()
        .expect("curl runs")
}

fn checked(what: &str, output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Sends `size` pseudo-random bytes on one connection while a thread
/// reads the echo, and checks it byte for byte.
const TCP_ECHO_CLIENT: &str = r#"
import random, socket, sys, threading
port, size = int(sys.argv[1]), int(sys.argv[2])
data = random.Random(7).randbytes(size)
s = socket.create_connection(("127.0.0.1", port), timeout=120)
received = bytearray()
def read():
    while len(received) < size:
        chunk = s.recv(65536)
        if not chunk:
            break
        received.extend(chunk)
reader = threading.Thread(target=read)
reader.start()
s.sendall(data)
reader.join()
s.shutdown(socket.SHUT_WR)
assert s.recv(1) == b"", "no end of stream after the echo"
s.close()
assert len(received) == size, f"echoed {len(received)} of {size} bytes"
assert bytes(received) == data, "the echo differs from what was sent"
print(f"echoed {size} bytes")
"#;

/// Opens `count` connections at once, then sends a distinct line on each
/// and reads each echo back.
const CONCURRENT_CLIENT: &str = r#"
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
sockets = [socket.create_connection(("127.0.0.1", port), timeout=120) for _ in range(count)]
for i, s in enumerate(sockets):
    s.sendall(f"connection {i}\n".encode())
for i, s in enumerate(sockets):
    expected = f"connection {i}\n".encode()
    received = b""
    while len(received) < len(expected):
        chunk = s.recv(100)
        assert chunk, f"connection {i} closed early"
        received += chunk
    assert received == expected, (i, received)
for s in sockets:
    s.close()
print(f"{count} connections echoed")
"#;

#[test]
fn network_echoes_a_megabyte_byte_for_byte() {
    let server = Server::start("network", "tcp", 8080, "listening on", &[]);
    let size = 1 << 20;
    let printed = python(
        TCP_ECHO_CLIENT,
        &[server.port.to_string(), size.to_string()],
    );
    assert_eq!(printed.trim(), format!("echoed {size} bytes"));
    server.wait_for("Closing connection!");
    let messages = server.messages();
    // Slirp connects to the guest from the gateway's address.
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("new tcp connection from IP 10.0.2.2 on port ")),
        "{messages:#?}"
    );
    let read_bytes: usize = messages
        .iter()
        .filter_map(|m| m.strip_prefix("read: "))
        .map(|rest| {
            rest.split_once(" bytes: ")
                .expect("read: <n> bytes: <data>")
                .0
        })
        .map(|n| n.parse::<usize>().expect("a byte count"))
        .sum();
    assert_eq!(read_bytes, size, "the reads logged add up to what was sent");
}

#[test]
fn network_logs_what_it_reads_and_the_close() {
    let server = Server::start("network", "tcp", 7, "listening on", &["port=7"]);
    let printed = python(
        r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=120)
s.sendall(b"hello unikernel\n")
assert s.recv(100) == b"hello unikernel\n"
s.close()
print("ok")
"#,
        &[server.port.to_string()],
    );
    assert_eq!(printed.trim(), "ok");
    server.wait_for("Closing connection!");
    let messages = server.messages();
    let from = messages
        .iter()
        .position(|m| m.starts_with("new tcp connection from IP 10.0.2.2"))
        .expect("the connection is logged");
    assert_eq!(
        messages[from + 1..],
        [
            "read: 16 bytes: \"hello unikernel\\n\"".to_owned(),
            "Closing connection!".to_owned()
        ]
    );
    // A clean start (DHCP, card, listener) has nothing to warn about.
    let console = server.console();
    let warnings: Vec<&str> = console_log::parse_all(&console)
        .into_iter()
        .filter(|line| line.level == "WARN" || line.level == "ERROR")
        .map(|line| line.message)
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn network_serves_a_hundred_concurrent_connections() {
    let server = Server::start("network", "tcp", 8080, "listening on", &[]);
    let printed = python(CONCURRENT_CLIENT, &[server.port.to_string(), "100".into()]);
    assert_eq!(printed.trim(), "100 connections echoed");
    let closed = || {
        server
            .messages()
            .iter()
            .filter(|m| *m == "Closing connection!")
            .count()
    };
    while closed() < 100 {
        server.wait_for("Closing connection!");
    }
}

#[test]
fn udp_echo_sends_each_datagram_back() {
    let server = Server::start("udp_echo", "udp", 8080, "echoing UDP on", &[]);
    let printed = python(
        r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
port = int(sys.argv[1])
for size in [1, 100, 1472]:
    data = bytes(i % 251 for i in range(size))
    for attempt in range(30):
        s.sendto(data, ("127.0.0.1", port))
        try:
            reply = s.recv(2048)
            break
        except socket.timeout:
            continue
    else:
        raise SystemExit(f"no echo of {size} bytes")
    assert reply == data, size
print("ok")
"#,
        &[server.port.to_string()],
    );
    assert_eq!(printed.trim(), "ok");
    let messages = server.messages();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("udp: 1472 bytes from 10.0.2.2:")),
        "{messages:#?}"
    );
}

#[test]
fn http_serves_hello_with_keep_alive_and_404_elsewhere() {
    let server = Server::start("http", "tcp", 8080, "serving HTTP on", &[]);
    let base = format!("http://127.0.0.1:{}", server.port);
    let output = curl(&[
        "--verbose",
        &format!("{base}/"),
        &format!("{base}/"),
        "--write-out",
        "%{http_code}\n",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        checked("curl", output),
        "hello mirage world!\n200\nhello mirage world!\n200\n"
    );
    assert!(
        stderr.contains("Re-using existing connection")
            || stderr.contains("Reusing existing connection"),
        "the second request did not reuse the connection:\n{stderr}"
    );
    let missing = curl(&[&format!("{base}/missing"), "--write-out", "%{http_code}"]);
    assert_eq!(checked("curl", missing), "not found\n404");
}

#[test]
fn http_answers_a_malformed_request_with_400_and_keeps_serving() {
    let server = Server::start("http", "tcp", 8080, "serving HTTP on", &[]);
    let printed = python(
        r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=120)
s.sendall(b"GARBAGE\x00\x01 NOT HTTP\r\n\r\n")
reply = b""
while True:
    chunk = s.recv(1000)
    if not chunk:
        break
    reply += chunk
print(reply.split(b"\r\n")[0].decode())
"#,
        &[server.port.to_string()],
    );
    assert_eq!(printed.trim(), "HTTP/1.1 400 Bad Request");
    let output = curl(&[&format!("http://127.0.0.1:{}/", server.port)]);
    assert_eq!(checked("curl", output), "hello mirage world!\n");
}

#[test]
fn http_times_out_a_stalled_request_but_serves_a_slow_one() {
    let server = Server::start(
        "http",
        "tcp",
        8080,
        "serving HTTP on",
        &["request-timeout=3"],
    );
    let printed = python(
        r#"
import socket, sys, time
port = int(sys.argv[1])
slow = socket.create_connection(("127.0.0.1", port), timeout=120)
for byte in b"GET / HTTP/1.1\r\nHost: x\r\n\r\n":
    slow.sendall(bytes([byte]))
    time.sleep(0.02)
print(slow.recv(1000).split(b"\r\n")[0].decode())
stalled = socket.create_connection(("127.0.0.1", port), timeout=120)
stalled.sendall(b"GET / HTTP/1.1\r\n")
reply = b""
while True:
    chunk = stalled.recv(1000)
    if not chunk:
        break
    reply += chunk
print(reply.split(b"\r\n")[0].decode())
"#,
        &[server.port.to_string()],
    );
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        ["HTTP/1.1 200 OK", "HTTP/1.1 408 Request Timeout"]
    );
    server.wait_for("request timed out");
}

/// Pings `address` with raw ICMP echo requests until one is answered.
const PING_CLIENT: &str = r#"
import os, socket, struct, sys
address = sys.argv[1]
def checksum(data):
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xffff)
    return ~(total + (total >> 16)) & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(1)
ident, payload = os.getpid() & 0xffff, b"unikit ping data"
for seq in range(1, 31):
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    packet = struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq) + payload
    s.sendto(packet, (address, 0))
    try:
        while True:
            reply, source = s.recvfrom(2048)
            icmp = reply[(reply[0] & 0x0f) * 4:]
            kind, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
            if source[0] == address and kind == 0 and (rid, rseq) == (ident, seq):
                assert icmp[8:] == payload, "the echo reply carries other data"
                print(f"reply from {address}")
                raise SystemExit(0)
    except socket.timeout:
        continue
raise SystemExit(f"no echo reply from {address}")
"#;

/// Whether this machine can create TAP devices: root and a usable
/// `/dev/net/tun`.
fn tap_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .is_ok()
        && unikit::host::find_in_path("ip").is_some()
}

#[test]
fn network_on_a_tap_device_answers_ping_and_tcp_at_its_static_address() {
    if !tap_usable() {
        eprintln!("skipped: /dev/net/tun is not usable here (needs root and the tun module)");
        return;
    }
    let device = format!("uktap{}", std::process::id() % 10_000);
    let server = Server::boot(
        "network",
        &["--net", &format!("tap:{device}")],
        8080,
        "listening on",
        &["ipv4=10.0.3.2/24", "ipv4-gateway=10.0.3.1"],
    );
    let printed = python(PING_CLIENT, &["10.0.3.2".into()]);
    assert_eq!(printed.trim(), "reply from 10.0.3.2");
    let printed = python(
        r#"
import socket
s = socket.create_connection(("10.0.3.2", 8080), timeout=60)
s.sendall(b"over tap\n")
assert s.recv(100) == b"over tap\n"
s.close()
print("ok")
"#,
        &[],
    );
    assert_eq!(printed.trim(), "ok");
    server.wait_for("Closing connection!");
    assert!(
        server
            .messages()
            .iter()
            .any(|m| m.starts_with("new tcp connection from IP 10.0.3.1 on port ")),
        "{}",
        server.console()
    );
}

/// `network` booted directly (`--direct`) with `mem_mib` of memory, its
/// port 8080 forwarded from a free host port.
fn direct_network(mem_mib: u32) -> Server {
    let port = free_port();
    let forward = format!("tcp:{port}:8080");
    let mem = mem_mib.to_string();
    let options = [
        "--direct",
        "--mem",
        &mem,
        "--net",
        "user",
        "--forward",
        &forward,
    ];
    Server::boot("network", &options, port, "listening on", &[])
}

#[test]
fn network_serves_from_a_direct_boot_in_16_mib() {
    let server = direct_network(16);
    let port = server.port;
    let size = 1 << 20;
    let printed = python(TCP_ECHO_CLIENT, &[port.to_string(), size.to_string()]);
    assert_eq!(printed.trim(), format!("echoed {size} bytes"));
    server.wait_for("Closing connection!");
}

/// Opens up to 150 connections and keeps them, each sending one byte;
/// then closes them all and checks that a new connection is echoed.
const FLOOD_CLIENT: &str = r#"
import socket, sys, time
port = int(sys.argv[1])
held, refused = [], 0
for i in range(150):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"x")
        held.append(s)
    except OSError:
        refused += 1
echoed = 0
for s in held:
    try:
        s.settimeout(10)
        if s.recv(1) == b"x":
            echoed += 1
        else:
            refused += 1
    except OSError:
        refused += 1
for s in held:
    s.close()
time.sleep(1)
s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.sendall(b"after the flood\n")
assert s.recv(100) == b"after the flood\n"
print(f"echoed {echoed} refused {refused} then served")
"#;

#[test]
fn a_connection_flood_in_an_8_mib_guest_is_refused_not_a_crash() {
    let server = direct_network(8);
    let port = server.port;
    let printed = python(FLOOD_CLIENT, &[port.to_string()]);
    let counts: Vec<usize> = printed
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let [echoed, refused] = counts[..] else {
        panic!("{printed}");
    };
    assert!(printed.trim().ends_with("then served"), "{printed}");
    // The 128-socket pool's buffers (8 MiB) cannot fit an 8 MiB guest: some
    // connections are served, the rest refused, and the server lives on.
    assert!(echoed >= 1 && refused >= 1, "{printed}");
    assert!(!server.console().contains("ERROR"), "{}", server.console());
}
