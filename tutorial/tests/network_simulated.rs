//! The network unikernels on simulated time: each runs on one end of an
//! in-memory Ethernet link, a client stack on the other end talks to it,
//! and the unikernel's console is checked line by line, timestamps
//! included (they are a function of the seed).

use std::future::Future;
use std::time::Duration;
use unikit_net::host::{Faults, LinkEnd, MemoryLink};
use unikit_net::{Config, IpEndpoint, Ipv4Address, Ipv4Cidr, Ipv4Config, Stack};
use unikit_runtime::devices::host::{Devices, HostArgs, capture, install_logger};
use unikit_runtime::{Error, Runtime, Simulated, async_, sleep};
use unikit_tutorial::host::bind_network;

const SERVER: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

/// Runs the network unikernel `name` (with runtime arguments `args` and a
/// static address) and `client` over a perfect link, and returns what
/// `client` returned and the console.
fn run_with_client<F, T>(
    name: &str,
    args: &[&str],
    client: impl FnOnce(Stack<LinkEnd>) -> F + 'static,
) -> (Result<T, Error>, String)
where
    F: Future<Output = Result<T, Error>> + 'static,
    T: 'static,
{
    install_logger(log::LevelFilter::Info);
    let mut all_args = vec!["ipv4=10.0.0.2/24"];
    all_args.extend_from_slice(args);
    let devices = Devices::simulated(3, HostArgs::parse(&all_args).unwrap(), Vec::new());
    let (server_end, client_end) = MemoryLink::pair(Faults::none());
    let unikernel = bind_network(name, devices, server_end).unwrap();
    let client_config = Config {
        ipv4: Ipv4Config::Static {
            address: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 1), 24),
            gateway: None,
            dns: Vec::new(),
        },
        ..Config::default()
    };
    capture(|| {
        Runtime::new(Simulated::new(3)).run(async move {
            async_(unikernel);
            let stack = Stack::new(client_end, client_config, 4);
            let result = client(stack).await;
            // Let the unikernel log what the client's last step caused.
            sleep(Duration::from_secs(1)).await?;
            result
        })
    })
}

/// The console's messages without their timestamps, level and source.
fn messages(console: &str) -> Vec<String> {
    console
        .lines()
        .map(|line| line.split_once("] ").unwrap().1)
        .map(|rest| rest.split_once("] ").map_or(rest, |(_, message)| message))
        .map(str::to_owned)
        .collect()
}

#[test]
fn network_logs_the_connection_each_read_and_the_close_and_echoes() {
    let (echoed, console) = run_with_client("network", &[], |stack| async move {
        let mut stream = stack.connect(IpEndpoint::new(SERVER.into(), 8080)).await?;
        let local_port = stream.local_endpoint().port;
        let mut echoed = Vec::new();
        for text in [&b"hello\n"[..], b"world!\n"] {
            stream.write_all(text).await?;
            let mut buffer = [0u8; 64];
            let target = echoed.len() + text.len();
            while echoed.len() < target {
                let read = stream.read(&mut buffer).await?;
                echoed.extend_from_slice(&buffer[..read]);
            }
        }
        stream.close().await?;
        Ok((echoed, local_port))
    });
    let (echoed, port) = echoed.unwrap_or_else(|error| panic!("{error}: {console}"));
    assert_eq!(echoed, b"hello\nworld!\n");
    assert_eq!(
        messages(&console),
        [
            "listening on 10.0.0.2:8080".to_owned(),
            format!("new tcp connection from IP 10.0.0.1 on port {port}"),
            "read: 6 bytes: \"hello\\n\"".to_owned(),
            "read: 7 bytes: \"world!\\n\"".to_owned(),
            "Closing connection!".to_owned(),
        ],
        "{console}"
    );
}

#[test]
fn network_listens_on_the_port_argument() {
    let (reply, console) = run_with_client("network", &["port=7"], |stack| async move {
        let mut stream = stack.connect(IpEndpoint::new(SERVER.into(), 7)).await?;
        stream.write_all(b"x").await?;
        let mut byte = [0u8; 1];
        stream.read(&mut byte).await?;
        Ok(byte)
    });
    assert_eq!(reply.unwrap(), *b"x", "{console}");
    assert!(console.contains("listening on 10.0.0.2:7"), "{console}");
}

#[test]
fn network_rejects_a_bad_port_with_what_was_expected() {
    install_logger(log::LevelFilter::Info);
    let devices = Devices::simulated(3, HostArgs::parse(&["port=http"]).unwrap(), Vec::new());
    let (end, _other) = MemoryLink::pair(Faults::none());
    let unikernel = bind_network("network", devices, end).unwrap();
    let outcome = Runtime::new(Simulated::new(3)).run(unikernel);
    assert_eq!(
        outcome.unwrap_err().to_string(),
        "port=http: expected a TCP port number (1-65535)"
    );
}

#[test]
fn udp_echo_sends_datagrams_back_and_logs_them() {
    let (replies, console) = run_with_client("udp_echo", &[], |stack| async move {
        let socket = stack.bind_udp(5000)?;
        let server = IpEndpoint::new(SERVER.into(), 8080);
        let mut replies = Vec::new();
        for datagram in [&b"one"[..], b"two two"] {
            socket.send_to(datagram, server).await?;
            let mut buffer = [0u8; 64];
            let (len, from) = socket.recv_from(&mut buffer).await?;
            assert_eq!(from, server);
            replies.push(buffer[..len].to_vec());
        }
        Ok(replies)
    });
    assert_eq!(replies.unwrap(), [b"one".to_vec(), b"two two".to_vec()]);
    assert_eq!(
        messages(&console),
        [
            "echoing UDP on 10.0.0.2:8080",
            "udp: 3 bytes from 10.0.0.1:5000",
            "udp: 7 bytes from 10.0.0.1:5000",
        ],
        "{console}"
    );
}

/// Sends `request` on a fresh connection and returns everything the
/// server sends until it closes or `expect` bytes arrived.
async fn http_exchange(
    stack: &Stack<LinkEnd>,
    request: &[u8],
    expect: usize,
) -> Result<String, Error> {
    let mut stream = stack.connect(IpEndpoint::new(SERVER.into(), 8080)).await?;
    stream.write_all(request).await?;
    let mut reply = Vec::new();
    let mut buffer = [0u8; 512];
    while reply.len() < expect {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        reply.extend_from_slice(&buffer[..read]);
    }
    Ok(String::from_utf8(reply).unwrap())
}

#[test]
fn http_serves_pipelined_keep_alive_requests_and_refuses_garbage() {
    const OK: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\nhello mirage world!\n";
    const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n";
    let (replies, console) = run_with_client("http", &[], |stack| async move {
        let pipelined = http_exchange(
            &stack,
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /nothing HTTP/1.1\r\nHost: a\r\n\r\n",
            OK.len() + NOT_FOUND.len(),
        )
        .await?;
        let garbage = http_exchange(&stack, b"NOT HTTP AT ALL\r\n\r\n", usize::MAX).await?;
        let after = http_exchange(&stack, b"GET / HTTP/1.0\r\n\r\n", usize::MAX).await?;
        Ok((pipelined, garbage, after))
    });
    let (pipelined, garbage, after) = replies.unwrap();
    assert_eq!(pipelined, format!("{OK}{NOT_FOUND}"));
    assert!(
        garbage.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{garbage}"
    );
    assert!(garbage.contains("Connection: close\r\n"), "{garbage}");
    assert!(after.starts_with("HTTP/1.1 200 OK\r\n"), "{after}");
    assert!(
        after.ends_with("Connection: close\r\n\r\nhello mirage world!\n"),
        "{after}"
    );
    assert!(console.contains("refused with 400"), "{console}");
}

#[test]
fn http_times_out_a_request_that_stalls() {
    let (reply, console) = run_with_client("http", &["request-timeout=2"], |stack| async move {
        let started = unikit_runtime::time::now();
        let reply = http_exchange(&stack, b"GET / HTTP/1.1\r\n", usize::MAX).await?;
        Ok((
            reply,
            unikit_runtime::time::now().saturating_duration_since(started),
        ))
    });
    let (reply, waited) = reply.unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{reply}"
    );
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
    assert!(console.contains("request timed out"), "{console}");
}
