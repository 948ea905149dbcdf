//! Two stacks (or a stack and a hand-driven link end) over an in-memory
//! link, on simulated time: every run is deterministic given the seeds.

use std::time::Duration;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr,
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
    IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};
use unikit_net::host::{Faults, LinkEnd, MemoryLink};
use unikit_net::{
    Config, Error as NetError, IpEndpoint, Ipv4Address, Ipv4Cidr, Ipv4Config, Stack, TcpListener,
    TcpStream,
};
use unikit_runtime::devices::Args;
use unikit_runtime::devices::host::HostArgs;
use unikit_runtime::devices::net::Net;
use unikit_runtime::{Error, Simulated, async_, both, run, sleep, spawn, time, with_timeout};

const PORT: u16 = 7;

fn address(last: u8) -> Ipv4Address {
    Ipv4Address::new(10, 0, 0, last)
}

fn endpoint(last: u8, port: u16) -> IpEndpoint {
    IpEndpoint::new(address(last).into(), port)
}

fn static_config(last: u8) -> Config {
    Config {
        ipv4: Ipv4Config::Static {
            address: Ipv4Cidr::new(address(last), 24),
            gateway: None,
            dns: vec![],
        },
        ..Config::default()
    }
}

/// A server stack at 10.0.0.1 and a client stack at 10.0.0.2.
fn two_stacks(
    faults: Faults,
    server: Config,
) -> (Stack<LinkEnd>, Stack<LinkEnd>, LinkEnd, LinkEnd) {
    let (a, b) = MemoryLink::pair(faults);
    (
        Stack::new(a.clone(), server, 11),
        Stack::new(b.clone(), static_config(2), 22),
        a,
        b,
    )
}

/// Accepts connections forever, echoing each until end of stream, then
/// closing it.
fn serve_echo(listener: TcpListener) {
    async_(async move {
        loop {
            let stream = listener.accept().await?;
            async_(echo(stream));
        }
    });
}

async fn echo(mut stream: TcpStream) -> Result<(), Error> {
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(stream.close().await?);
        }
        stream.write_all(&buffer[..read]).await?;
    }
}

/// `len` pseudo-random bytes.
fn pattern(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        })
        .collect()
}

/// Sends `data` through an echo connection (writing and reading
/// concurrently), shuts down, and returns what came back up to EOF.
async fn echo_through(stream: &mut TcpStream, data: &[u8]) -> Result<Vec<u8>, Error> {
    let (mut reader, mut writer) = stream.split();
    let write = async {
        for chunk in data.chunks(1000) {
            writer.write_all(chunk).await?;
        }
        Ok::<_, Error>(())
    };
    let read = async {
        let mut received = Vec::with_capacity(data.len());
        let mut buffer = vec![0u8; 8192];
        while received.len() < data.len() {
            let read = reader.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            received.extend_from_slice(&buffer[..read]);
        }
        Ok::<_, Error>(received)
    };
    let ((), received) = both(write, read).await?;
    stream.shutdown().await?;
    let mut rest = [0u8; 16];
    assert_eq!(stream.read(&mut rest).await?, 0, "EOF after the echo");
    Ok(received)
}

/// Moves 10 MB through an echo server over a link with `faults`; returns
/// the stacks' counters and the faults the link injected, after letting the
/// link drain.
fn ten_megabytes(
    faults: Faults,
) -> (
    unikit_net::StackStats,
    unikit_net::host::FaultCounts,
    Duration,
) {
    run(Simulated::new(5), async move {
        let (server, client, _, client_end) = two_stacks(faults, static_config(1));
        serve_echo(server.listen(PORT)?);
        let data = pattern(10 * 1024 * 1024, 42);
        let start = time::now();
        let mut stream = client.connect(endpoint(1, PORT)).await?;
        let received = echo_through(&mut stream, &data).await?;
        let elapsed = time::now() - start;
        assert_eq!(received.len(), data.len());
        assert!(received == data, "the echo differs from what was sent");
        stream.close().await?;
        sleep(Duration::from_secs(1)).await?;
        Ok((server.stats(), client_end.faults_injected(), elapsed))
    })
    .unwrap()
}

#[test]
fn ten_megabytes_echo_byte_for_byte_on_a_perfect_link() {
    let faults = Faults {
        latency: Duration::from_micros(100),
        ..Faults::none()
    };
    let (stats, injected, elapsed) = ten_megabytes(faults);
    assert_eq!(injected, Default::default());
    assert_eq!(stats.rx_malformed, 0);
    assert_eq!(stats.device.rx_dropped + stats.device.tx_dropped, 0);
    println!(
        "10 MiB echoed in {elapsed:?} of simulated time ({} frames received by the server)",
        stats.device.rx_packets
    );
}

#[test]
fn ten_megabytes_echo_survives_loss_duplication_and_corruption() {
    let faults = Faults {
        loss: 0.05,
        duplication: 0.05,
        corruption: 0.05,
        latency: Duration::from_micros(100),
        seed: 7,
    };
    let (stats, injected, elapsed) = ten_megabytes(faults);
    assert!(
        injected.lost > 0 && injected.duplicated > 0 && injected.corrupted > 0,
        "{injected:?}"
    );
    // Every corrupted frame the client sent reached the server and failed a
    // checksum there (a duplicate of a corrupted frame fails twice).
    assert!(
        stats.rx_malformed >= injected.corrupted && stats.rx_malformed <= 2 * injected.corrupted,
        "{} malformed frames counted for {} corrupted",
        stats.rx_malformed,
        injected.corrupted
    );
    println!("10 MiB echoed through faults {injected:?} in {elapsed:?} of simulated time");
}

#[test]
fn udp_datagrams_are_echoed_to_their_sender() {
    let replies = run(Simulated::new(1), async {
        let (server, client, _, _) = two_stacks(Faults::none(), static_config(1));
        let socket = server.bind_udp(PORT)?;
        async_(async move {
            let mut buffer = [0u8; 1500];
            loop {
                let (len, from) = socket.recv_from(&mut buffer).await?;
                socket.send_to(&buffer[..len], from).await?;
            }
        });
        let socket = client.bind_udp(0)?;
        let mut replies = Vec::new();
        for message in [&b"one"[..], b"two", &[7u8; 1472]] {
            socket.send_to(message, endpoint(1, PORT)).await?;
            let mut buffer = [0u8; 1500];
            let (len, from) = socket.recv_from(&mut buffer).await?;
            assert_eq!(from, endpoint(1, PORT));
            replies.push(buffer[..len].to_vec());
        }
        let too_long = socket.send_to(&[0u8; 1473], endpoint(1, PORT)).await;
        assert!(
            matches!(too_long, Err(NetError::InvalidArgument(_))),
            "{too_long:?}"
        );
        Ok(replies)
    })
    .unwrap();
    assert_eq!(
        replies,
        vec![b"one".to_vec(), b"two".to_vec(), vec![7u8; 1472]]
    );
}

fn frame(
    destination: EthernetAddress,
    source: EthernetAddress,
    ethertype: EthernetProtocol,
    payload: impl FnOnce(&mut [u8]),
    payload_len: usize,
) -> Vec<u8> {
    let mut bytes = vec![0u8; 14 + payload_len];
    let mut ethernet = EthernetFrame::new_unchecked(&mut bytes[..]);
    EthernetRepr {
        src_addr: source,
        dst_addr: destination,
        ethertype,
    }
    .emit(&mut ethernet);
    payload(ethernet.payload_mut());
    bytes
}

#[test]
fn icmp_echo_requests_are_answered_by_the_interface() {
    let reply = run(Simulated::new(1), async {
        let (a, raw) = MemoryLink::pair(Faults::none());
        let _stack = Stack::new(a.clone(), static_config(1), 1);
        let stack_mac = EthernetAddress(a.mac());
        let raw_mac = EthernetAddress(raw.mac());
        let checksums = ChecksumCapabilities::default();
        let data = b"ping from a raw link end";
        let request = Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data,
        };
        let ip = Ipv4Repr {
            src_addr: address(2),
            dst_addr: address(1),
            next_header: IpProtocol::Icmp,
            payload_len: request.buffer_len(),
            hop_limit: 64,
        };
        let ping = frame(
            stack_mac,
            raw_mac,
            EthernetProtocol::Ipv4,
            |payload| {
                let mut packet = Ipv4Packet::new_unchecked(payload);
                ip.emit(&mut packet, &checksums);
                request.emit(
                    &mut Icmpv4Packet::new_unchecked(packet.payload_mut()),
                    &checksums,
                );
            },
            ip.buffer_len() + request.buffer_len(),
        );
        raw.send(&ping).await;
        loop {
            let received = raw.receive().await;
            let ethernet = EthernetFrame::new_checked(&received[..]).unwrap();
            match ethernet.ethertype() {
                EthernetProtocol::Arp => {
                    // The stack asks who has 10.0.0.2 to reply: answer it.
                    let arp = ArpRepr::parse(&ArpPacket::new_checked(ethernet.payload()).unwrap())
                        .unwrap();
                    let ArpRepr::EthernetIpv4 {
                        operation: ArpOperation::Request,
                        source_hardware_addr,
                        source_protocol_addr,
                        target_protocol_addr,
                        ..
                    } = arp
                    else {
                        continue;
                    };
                    assert_eq!(target_protocol_addr, address(2));
                    let answer = ArpRepr::EthernetIpv4 {
                        operation: ArpOperation::Reply,
                        source_hardware_addr: raw_mac,
                        source_protocol_addr: address(2),
                        target_hardware_addr: source_hardware_addr,
                        target_protocol_addr: source_protocol_addr,
                    };
                    let reply = frame(
                        source_hardware_addr,
                        raw_mac,
                        EthernetProtocol::Arp,
                        |payload| {
                            answer.emit(&mut ArpPacket::new_unchecked(payload));
                        },
                        answer.buffer_len(),
                    );
                    raw.send(&reply).await;
                    // smoltcp does not queue a packet while it resolves
                    // the neighbour: the first request went unanswered.
                    raw.send(&ping).await;
                }
                EthernetProtocol::Ipv4 => {
                    let packet = Ipv4Packet::new_checked(ethernet.payload()).unwrap();
                    assert!(packet.verify_checksum());
                    let ip = Ipv4Repr::parse(&packet, &checksums).unwrap();
                    assert_eq!((ip.src_addr, ip.dst_addr), (address(1), address(2)));
                    let icmp = Icmpv4Packet::new_checked(packet.payload()).unwrap();
                    let Icmpv4Repr::EchoReply {
                        ident,
                        seq_no,
                        data,
                    } = Icmpv4Repr::parse(&icmp, &checksums).unwrap()
                    else {
                        panic!("not an echo reply");
                    };
                    return Ok((ident, seq_no, data.to_vec()));
                }
                other => panic!("unexpected {other} frame"),
            }
        }
    })
    .unwrap();
    assert_eq!(reply, (0x1234, 1, b"ping from a raw link end".to_vec()));
}

#[test]
fn a_hundred_concurrent_connections_are_all_accepted_and_served() {
    let echoed = run(Simulated::new(3), async {
        let (server, client, _, _) = two_stacks(
            Faults {
                latency: Duration::from_micros(200),
                ..Faults::none()
            },
            static_config(1),
        );
        serve_echo(server.listen(PORT)?);
        let clients = (0..100u32).map(|i| {
            let client = client.clone();
            spawn(async move {
                let mut stream = client.connect(endpoint(1, PORT)).await?;
                let message = format!("hello from client {i}");
                let echoed = echo_through(&mut stream, message.as_bytes()).await?;
                stream.close().await?;
                Ok(String::from_utf8(echoed).unwrap() == message)
            })
        });
        let results = unikit_runtime::all(clients).await?;
        sleep(Duration::from_secs(30)).await?;
        assert_eq!(server.stats().tcp_refused, 0);
        // Only the listening socket remains once every connection closed.
        assert_eq!(server.stats().tcp_sockets, 1);
        assert_eq!(client.stats().tcp_sockets, 0);
        Ok(results)
    })
    .unwrap();
    assert_eq!(echoed, vec![true; 100]);
}

#[test]
fn a_flood_beyond_the_pool_is_refused_and_counted_while_connections_keep_working() {
    run(Simulated::new(4), async {
        let server_config = Config {
            max_tcp_sockets: 6,
            tcp_backlog: 2,
            ..static_config(1)
        };
        let (server, client, _, _) = two_stacks(Faults::none(), server_config);
        serve_echo(server.listen(PORT)?);
        // Four connections in use and the listening socket: one left in the pool of six.
        let mut kept = Vec::new();
        for _ in 0..4 {
            kept.push(client.connect(endpoint(1, PORT)).await?);
        }
        sleep(Duration::from_millis(10)).await?;
        assert_eq!(server.stats().tcp_sockets, 5);
        let flood = (0..20).map(|_| {
            let client = client.clone();
            async move { Ok(client.connect(endpoint(1, PORT)).await) }
        });
        let outcomes: Vec<Result<TcpStream, NetError>> = unikit_runtime::all(flood).await?;
        let accepted = outcomes.iter().filter(|o| o.is_ok()).count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(NetError::ConnectionRefused)))
            .count();
        assert_eq!(accepted + refused, 20, "{outcomes:?}");
        assert_eq!(
            accepted, 2,
            "the listening socket and the one the pool has left take two of the flood"
        );
        assert_eq!(server.stats().tcp_refused, refused as u64);
        for (i, stream) in kept.iter_mut().enumerate() {
            let message = format!("still working {i}");
            assert_eq!(
                echo_through(stream, message.as_bytes()).await?,
                message.as_bytes()
            );
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let outcome = run(Simulated::new(1), async {
        let (server, client, _, _) = two_stacks(Faults::none(), static_config(1));
        let outcome = client.connect(endpoint(1, 9)).await.map(drop);
        Ok((
            outcome,
            server.stats().tcp_refused,
            client.stats().tcp_sockets,
        ))
    })
    .unwrap();
    assert_eq!(outcome, (Err(NetError::ConnectionRefused), 1, 0));
}

#[test]
fn connecting_to_a_silent_host_times_out() {
    let outcome = run(Simulated::new(1), async {
        let (_, b) = MemoryLink::pair(Faults::none());
        let client = Stack::new(b, static_config(2), 2);
        let start = time::now();
        let outcome = client.connect(endpoint(1, PORT)).await.map(drop);
        Ok((outcome, time::now() - start))
    })
    .unwrap();
    assert_eq!(
        outcome,
        (
            Err(NetError::TimedOut),
            Config::default().tcp_connect_timeout
        )
    );
}

#[test]
fn shutdown_gives_the_peer_eof_and_the_other_half_keeps_working() {
    let transcript = run(Simulated::new(2), async {
        let (server, client, _, _) = two_stacks(Faults::none(), static_config(1));
        let listener = server.listen(PORT)?;
        let server_side = spawn(async move {
            let mut stream = listener.accept().await?;
            let mut request = Vec::new();
            let mut buffer = [0u8; 64];
            loop {
                let read = stream.read(&mut buffer).await?;
                if read == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..read]);
            }
            // The client shut down its half; ours still sends.
            stream.write_all(b"reply after your EOF").await?;
            stream.shutdown().await?;
            stream.flush().await?;
            sleep(Duration::from_millis(10)).await?;
            // Both FINs acknowledged: flushing, shutting down again and
            // closing a finished connection all succeed.
            stream.flush().await?;
            stream.shutdown().await?;
            stream.close().await?;
            Ok(request)
        });
        let mut stream = client.connect(endpoint(1, PORT)).await?;
        stream.write_all(b"request").await?;
        stream.shutdown().await?;
        assert_eq!(stream.write(b"more").await, Err(NetError::ConnectionClosed));
        let mut reply = Vec::new();
        let mut buffer = [0u8; 64];
        loop {
            let read = stream.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            reply.extend_from_slice(&buffer[..read]);
        }
        let request = server_side.await?;
        Ok((request, reply))
    })
    .unwrap();
    assert_eq!(
        transcript,
        (b"request".to_vec(), b"reply after your EOF".to_vec())
    );
}

/// Connects a client, lets `abandon` do away with the server's side of
/// the connection (it gets the listener and returns it if it keeps it),
/// then reads on the client: the read's outcome and the server's sockets
/// in use afterwards.
fn read_after_the_server_abandons(
    abandon: impl AsyncFnOnce(TcpListener) -> Result<Option<TcpListener>, Error> + 'static,
) -> (Result<usize, NetError>, usize) {
    run(Simulated::new(2), async {
        let (server, client, _, _) = two_stacks(Faults::none(), static_config(1));
        let listener = server.listen(PORT)?;
        let mut stream = client.connect(endpoint(1, PORT)).await?;
        let _kept = abandon(listener).await?;
        let mut buffer = [0u8; 8];
        let read = stream.read(&mut buffer).await;
        sleep(Duration::from_millis(10)).await?;
        Ok((read, server.stats().tcp_sockets))
    })
    .unwrap()
}

#[test]
fn dropping_a_stream_resets_the_connection_and_frees_its_socket() {
    let (read, sockets) = read_after_the_server_abandons(async |listener| {
        drop(listener.accept().await?);
        Ok(Some(listener))
    });
    assert_eq!(read, Err(NetError::ConnectionReset));
    assert_eq!(sockets, 1, "only the listening socket remains");
}

#[test]
fn a_canceled_read_reads_nothing_and_the_stream_stays_usable() {
    let (canceled, timed_out, late) = run(Simulated::new(2), async {
        let (server, client, _, _) = two_stacks(Faults::none(), static_config(1));
        let listener = server.listen(PORT)?;
        let stream = client.connect(endpoint(1, PORT)).await?;
        let mut accepted = listener.accept().await?;
        // A task blocked in read, canceled: it gets the stream back.
        let reading = spawn(async move {
            let mut stream = stream;
            let mut buffer = [0u8; 8];
            let outcome = stream.read(&mut buffer).await;
            Ok((outcome, stream))
        });
        sleep(Duration::from_millis(5)).await?;
        reading.cancel();
        let (canceled, mut stream) = reading.await?;
        // A read given up by a timeout.
        let mut buffer = [0u8; 8];
        let timed_out = with_timeout(Duration::from_millis(50), async {
            Ok(stream.read(&mut buffer).await?)
        })
        .await;
        accepted.write_all(b"late").await?;
        let read = stream.read(&mut buffer).await?;
        Ok((canceled, timed_out, buffer[..read].to_vec()))
    })
    .unwrap();
    assert_eq!(canceled, Err(NetError::Canceled));
    assert_eq!(timed_out, Err(Error::Timeout));
    assert_eq!(late, b"late");
}

#[test]
fn listening_twice_on_a_port_is_refused() {
    run(Simulated::new(1), async {
        let (server, _, _, _) = two_stacks(Faults::none(), static_config(1));
        let _listener = server.listen(PORT)?;
        assert!(matches!(server.listen(PORT), Err(NetError::AddressInUse)));
        let _socket = server.bind_udp(PORT)?;
        assert!(matches!(server.bind_udp(PORT), Err(NetError::AddressInUse)));
        Ok(())
    })
    .unwrap();
}

fn config_from(args: &[&str]) -> Result<Config, NetError> {
    Config::from_args(&HostArgs::parse(args).unwrap())
}

#[test]
fn config_from_args_reads_a_static_address_gateway_and_dns() {
    assert_eq!(config_from(&[]).unwrap().ipv4, Ipv4Config::Dhcp);
    assert_eq!(
        config_from(&["tcp-buffer=65536"]).unwrap().tcp_buffer_size,
        65536
    );
    let config = config_from(&[
        "ipv4=10.0.0.2/24",
        "ipv4-gateway=10.0.0.1",
        "dns=1.1.1.1,8.8.8.8",
    ])
    .unwrap();
    assert_eq!(
        config.ipv4,
        Ipv4Config::Static {
            address: Ipv4Cidr::new(address(2), 24),
            gateway: Some(address(1)),
            dns: vec![Ipv4Address::new(1, 1, 1, 1), Ipv4Address::new(8, 8, 8, 8)],
        }
    );
}

#[test]
fn config_from_args_errors_name_the_key_and_what_was_expected() {
    let message = |args: &[&str]| match config_from(args) {
        Err(NetError::InvalidArgument(message)) => message,
        other => panic!("{args:?} gave {other:?}"),
    };
    assert_eq!(
        message(&["ipv4=10.0.0.300/24"]),
        "ipv4=10.0.0.300/24: expected an IPv4 address with a prefix length, like 10.0.0.2/24"
    );
    assert!(message(&["ipv4=10.0.0.2"]).starts_with("ipv4=10.0.0.2: expected"));
    assert!(message(&["ipv4=10.0.0.2/33"]).starts_with("ipv4=10.0.0.2/33: expected"));
    assert_eq!(
        message(&["ipv4=10.0.0.2/24", "ipv4-gateway=gateway"]),
        "ipv4-gateway=gateway: expected an IPv4 address, like 10.0.0.1"
    );
    assert!(message(&["ipv4=10.0.0.2/24", "dns=1.1.1.1,x"]).starts_with("dns=x: expected"));
    assert!(message(&["dns=1.1.1.1"]).starts_with("dns needs a static address"));
    for bad in ["tcp-buffer=100", "tcp-buffer=big", "tcp-buffer=8388608"] {
        assert!(
            message(&[bad]).ends_with(": expected a size in bytes from 4096 to 4194304"),
            "{bad}"
        );
    }
    let args = HostArgs::parse(&["ipv4=nonsense"]).unwrap();
    assert_eq!(args.get("ipv4"), Some("nonsense"));
}

#[test]
fn wait_config_up_returns_the_static_address_at_once() {
    let (up, at) = run(Simulated::new(1), async {
        let (a, _) = MemoryLink::pair(Faults::none());
        let stack = Stack::new(a, static_config(9), 1);
        let up = stack.wait_config_up().await?;
        Ok((up, time::now()))
    })
    .unwrap();
    assert_eq!(up, Ipv4Cidr::new(address(9), 24));
    assert_eq!(at, unikit_runtime::Instant::ZERO);
}

/// A scripted DHCP server at 10.0.0.1 on a raw link end: offers and acks
/// 10.0.0.50/24 with gateway and DNS server 10.0.0.1.
async fn serve_dhcp(raw: LinkEnd) -> Result<(), Error> {
    let checksums = ChecksumCapabilities::default();
    let server_mac = EthernetAddress(raw.mac());
    loop {
        let received = raw.receive().await;
        let ethernet = EthernetFrame::new_checked(&received[..]).unwrap();
        if ethernet.ethertype() != EthernetProtocol::Ipv4 {
            continue;
        }
        let ip = Ipv4Packet::new_checked(ethernet.payload()).unwrap();
        if ip.next_header() != IpProtocol::Udp {
            continue;
        }
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        if udp.dst_port() != 67 {
            continue;
        }
        let packet = DhcpPacket::new_checked(udp.payload()).unwrap();
        let request = DhcpRepr::parse(&packet).unwrap();
        let message_type = match request.message_type {
            DhcpMessageType::Discover => DhcpMessageType::Offer,
            DhcpMessageType::Request => DhcpMessageType::Ack,
            _ => continue,
        };
        let dns = [DhcpOption {
            kind: 6,
            data: &[10, 0, 0, 1],
        }];
        let reply = DhcpRepr {
            message_type,
            transaction_id: request.transaction_id,
            secs: 0,
            client_hardware_address: request.client_hardware_address,
            client_ip: Ipv4Address::UNSPECIFIED,
            your_ip: address(50),
            server_ip: address(1),
            router: Some(address(1)),
            subnet_mask: Some(Ipv4Address::new(255, 255, 255, 0)),
            relay_agent_ip: Ipv4Address::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(address(1)),
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: Some(3600),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &dns,
        };
        let udp_repr = UdpRepr {
            src_port: 67,
            dst_port: 68,
        };
        let ip_repr = Ipv4Repr {
            src_addr: address(1),
            dst_addr: Ipv4Address::BROADCAST,
            next_header: IpProtocol::Udp,
            payload_len: 8 + reply.buffer_len(),
            hop_limit: 64,
        };
        let frame = frame(
            request.client_hardware_address,
            server_mac,
            EthernetProtocol::Ipv4,
            |payload| {
                let mut packet = Ipv4Packet::new_unchecked(payload);
                ip_repr.emit(&mut packet, &checksums);
                udp_repr.emit(
                    &mut UdpPacket::new_unchecked(packet.payload_mut()),
                    &ip_repr.src_addr.into(),
                    &ip_repr.dst_addr.into(),
                    reply.buffer_len(),
                    |dhcp| reply.emit(&mut DhcpPacket::new_unchecked(dhcp)).unwrap(),
                    &checksums,
                );
            },
            ip_repr.buffer_len() + ip_repr.payload_len,
        );
        raw.send(&frame).await;
    }
}

#[test]
fn dhcp_configures_address_gateway_and_dns_from_a_lease() {
    let (up, gateway, dns) = run(Simulated::new(1), async {
        let (a, raw) = MemoryLink::pair(Faults::none());
        async_(serve_dhcp(raw));
        let stack = Stack::new(a, Config::default(), 1);
        assert_eq!(stack.ipv4_address(), None);
        let up = stack.wait_config_up().await?;
        Ok((up, stack.ipv4_gateway(), stack.dns_servers()))
    })
    .unwrap();
    assert_eq!(up, Ipv4Cidr::new(address(50), 24));
    assert_eq!(gateway, Some(address(1)));
    assert_eq!(dns, vec![address(1)]);
}

#[test]
fn connections_the_server_closes_first_do_not_exhaust_the_pool_in_time_wait() {
    let replies = run(Simulated::new(6), async {
        let server_config = Config {
            max_tcp_sockets: 4,
            tcp_backlog: 1,
            ..static_config(1)
        };
        let (server, client, _, _) = two_stacks(Faults::none(), server_config);
        let listener = server.listen(PORT)?;
        async_(async move {
            loop {
                let stream = listener.accept().await?;
                async_(async move { Ok(stream.close().await?) });
            }
        });
        let mut replies = 0;
        for _ in 0..20 {
            let mut stream = client.connect(endpoint(1, PORT)).await?;
            let mut buffer = [0u8; 8];
            assert_eq!(stream.read(&mut buffer).await?, 0);
            stream.close().await?;
            replies += 1;
        }
        assert_eq!(server.stats().tcp_refused, 0);
        assert!(server.stats().tcp_sockets <= 4);
        Ok(replies)
    })
    .unwrap();
    assert_eq!(replies, 20);
}

#[test]
fn a_canceled_connect_gives_canceled_and_frees_its_socket() {
    let (outcome, sockets) = run(Simulated::new(1), async {
        let (_, b) = MemoryLink::pair(Faults::none());
        let client = Stack::new(b, static_config(2), 2);
        let connecting = {
            let client = client.clone();
            spawn(async move { Ok(client.connect(endpoint(1, PORT)).await.map(drop)) })
        };
        sleep(Duration::from_secs(1)).await?;
        assert_eq!(client.stats().tcp_sockets, 1);
        connecting.cancel();
        let outcome = connecting.await?;
        sleep(Duration::from_millis(10)).await?;
        Ok((outcome, client.stats().tcp_sockets))
    })
    .unwrap();
    assert_eq!(outcome, Err(NetError::Canceled));
    assert_eq!(sockets, 0);
}

#[test]
fn dropping_a_listener_resets_connections_not_yet_accepted() {
    let (read, sockets) = read_after_the_server_abandons(async |listener| {
        drop(listener);
        Ok(None)
    });
    assert_eq!(read, Err(NetError::ConnectionReset));
    assert_eq!(sockets, 0);
}

#[test]
fn garbage_frames_are_dropped_and_counted_and_the_stack_keeps_serving() {
    let (malformed, echoed) = run(Simulated::new(8), async {
        let (server, client, server_end, client_end) = two_stacks(Faults::none(), static_config(1));
        serve_echo(server.listen(PORT)?);
        let noise = pattern(1000 * 1500, 99);
        for (i, chunk) in noise.chunks(1500).enumerate() {
            // Some frames too short for an Ethernet header, the others
            // addressed to the server as IPv4 with random contents.
            let len = if i % 10 == 0 {
                i % 14
            } else {
                14 + (chunk[0] as usize * 5)
            };
            let mut frame = chunk[..len.min(chunk.len())].to_vec();
            if frame.len() >= 14 {
                frame[..6].copy_from_slice(&server_end.mac());
                frame[12..14].copy_from_slice(&[0x08, 0x00]);
            }
            client_end.send(&frame).await;
        }
        let mut stream = client.connect(endpoint(1, PORT)).await?;
        let echoed = echo_through(&mut stream, b"still serving").await?;
        Ok((server.stats().rx_malformed, echoed))
    })
    .unwrap();
    assert_eq!(malformed, 1000);
    assert_eq!(echoed, b"still serving");
}

#[test]
fn a_datagram_longer_than_the_buffer_is_reported_and_the_next_one_received() {
    let outcomes = run(Simulated::new(1), async {
        let (server, client, _, _) = two_stacks(Faults::none(), static_config(1));
        let receiver = server.bind_udp(PORT)?;
        let sender = client.bind_udp(0)?;
        sender.send_to(b"far too long", endpoint(1, PORT)).await?;
        sender.send_to(b"fits", endpoint(1, PORT)).await?;
        let mut small = [0u8; 4];
        let first = receiver.recv_from(&mut small).await.map(|(len, _)| len);
        let second = receiver.recv_from(&mut small).await.map(|(len, _)| len);
        Ok((first, second, small))
    })
    .unwrap();
    assert!(
        matches!(&outcomes.0, Err(NetError::InvalidArgument(m)) if m.contains("longer than the 4-byte buffer")),
        "{:?}",
        outcomes.0
    );
    assert_eq!((outcomes.1, &outcomes.2), (Ok(4), b"fits"));
}

#[test]
fn connecting_without_an_address_has_no_route() {
    let outcome = run(Simulated::new(1), async {
        let (a, _) = MemoryLink::pair(Faults::none());
        let stack = Stack::new(a, Config::default(), 1);
        Ok(stack.connect(endpoint(1, PORT)).await.map(drop))
    })
    .unwrap();
    assert_eq!(outcome, Err(NetError::NoRoute));
}

/// Echoes one message through any `embedded-io-async` stream.
async fn ping_pong(
    stream: &mut (impl embedded_io_async::Read + embedded_io_async::Write),
) -> Result<Vec<u8>, String> {
    stream
        .write_all(b"through embedded-io")
        .await
        .map_err(|e| format!("{e:?}"))?;
    stream.flush().await.map_err(|e| format!("{e:?}"))?;
    let mut reply = [0u8; 19];
    stream
        .read_exact(&mut reply)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(reply.to_vec())
}

#[test]
fn tcp_streams_work_through_embedded_io_async() {
    let reply = run(Simulated::new(1), async {
        let (server, client, _, _) = two_stacks(Faults::none(), static_config(1));
        serve_echo(server.listen(PORT)?);
        let mut stream = client.connect(endpoint(1, PORT)).await?;
        Ok(ping_pong(&mut stream).await)
    })
    .unwrap();
    assert_eq!(reply.unwrap(), b"through embedded-io");
}

#[test]
fn an_idle_connection_to_a_live_peer_stays_open() {
    let echoed = run(Simulated::new(1), async {
        let (server, client, _, _) = two_stacks(Faults::none(), static_config(1));
        serve_echo(server.listen(PORT)?);
        let mut stream = client.connect(endpoint(1, PORT)).await?;
        sleep(Duration::from_secs(3600)).await?;
        echo_through(&mut stream, b"an hour later").await
    })
    .unwrap();
    assert_eq!(echoed, b"an hour later");
}

#[test]
fn a_connection_to_a_vanished_peer_is_reset_after_the_timeout() {
    let (read, after, sockets) = run(Simulated::new(1), async {
        let (server, client, server_end, _) = two_stacks(Faults::none(), static_config(1));
        let listener = server.listen(PORT)?;
        let _client_side = client.connect(endpoint(1, PORT)).await?;
        let mut stream = listener.accept().await?;
        server_end.set_faults(Faults {
            loss: 1.0,
            ..Faults::none()
        });
        let cut = time::now();
        let mut buffer = [0u8; 8];
        let read = stream.read(&mut buffer).await;
        let after = time::now() - cut;
        drop(stream);
        sleep(Duration::from_secs(2)).await?;
        Ok((read, after, server.stats().tcp_sockets))
    })
    .unwrap();
    assert_eq!(read, Err(NetError::ConnectionReset));
    let timeout = Config::default().tcp_timeout.unwrap();
    assert!(after <= timeout, "reset {after:?} after the cut");
    assert!(after >= timeout * 3 / 4, "reset {after:?} after the cut");
    assert_eq!(sockets, 1, "the socket was freed");
}
