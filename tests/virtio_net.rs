//! The virtio-net card through the `test-net` image: under QEMU user
//! networking, the transitional device (QEMU's default) and the
//! modern-only one, on BIOS and UEFI; on a network that stops taking frames
//! (QEMU's socket backend, connected to this test, which does not read
//! until the guest waits), transmit waits for room and loses nothing; on
//! that backend, thousands of frames from the test all arrive, in order,
//! through the receive ring; and the error without a card.

mod common;

use common::{Boot, RUNNER, TIMEOUT_SECONDS, boot};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;

/// The runner options that give the guest one card on QEMU's user network.
fn card(device: &str) -> Vec<String> {
    ["-netdev", "user,id=n0", "-device", device]
        .iter()
        .flat_map(|arg| ["--qemu-arg".to_owned(), (*arg).to_owned()])
        .collect()
}

fn boot_with_card(device: &str, extra: &[&str]) -> Boot {
    let args = card(device);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    boot("test-net", &args)
}

fn message<'a>(boot: &'a Boot, source: &str, prefix: &str) -> &'a str {
    boot.console
        .lines()
        .filter_map(unikit::console_log::parse_line)
        .find(|line| line.source == source && line.message.starts_with(prefix))
        .map(|line| line.message)
        .unwrap_or_else(|| panic!("no {source} line starting {prefix:?}:\n{}", boot.console))
}

/// The counters of the `stats:` line, by name.
fn counter(boot: &Boot, name: &str) -> u64 {
    let stats = message(boot, "test_net", "stats: ");
    let mut words = stats["stats: ".len()..].split(' ');
    while let Some(word) = words.next() {
        let value = words.next().expect("a value after each name");
        if word == name {
            return value.parse().expect("a number");
        }
    }
    panic!("no counter {name} in {stats:?}")
}

fn assert_card_works(boot: &Boot, kind: &str) {
    boot.assert_status(0);
    let found = message(boot, "net", "virtio-net at ");
    assert!(
        found.starts_with(&format!(
            "virtio-net at 00:03.0 ({kind}), MAC 52:54:00:12:34:56, IRQ 11 "
        )),
        "{found}"
    );
    // QEMU's MADT overrides the PCI line as level, active-high.
    assert!(found.ends_with("(GSI 11, level, active-high)"), "{found}");
    assert_eq!(
        message(boot, "test_net", "ARP reply: "),
        "ARP reply: 10.0.2.2 is at 52:55:0a:00:02:02"
    );
    assert!(message(boot, "test_net", "burst: ").starts_with("burst: 192 frames, waited"));
    // The ARP request and the whole burst sent; only the oversized frame
    // dropped.
    assert_eq!(counter(boot, "tx_packets"), 193);
    assert_eq!(counter(boot, "tx_bytes"), 42 + 192 * 60);
    assert_eq!(counter(boot, "tx_dropped"), 1);
    assert!(counter(boot, "rx_packets") >= 1);
    assert!(counter(boot, "rx_bytes") >= 60);
    assert_eq!(counter(boot, "rx_dropped"), 0);
    message(boot, "test_net", "net ok");
}

#[test]
fn transitional_card_answers_arp_and_sends_a_burst_on_bios() {
    let boot = boot_with_card("virtio-net-pci,netdev=n0", &[]);
    assert_card_works(&boot, "transitional");
}

#[test]
fn modern_only_card_answers_arp_and_sends_a_burst_on_bios() {
    let boot = boot_with_card("virtio-net-pci,netdev=n0,disable-legacy=on", &[]);
    assert_card_works(&boot, "modern");
}

#[test]
fn modern_only_card_works_on_uefi() {
    let boot = boot_with_card("virtio-net-pci,netdev=n0,disable-legacy=on", &["--uefi"]);
    assert_card_works(&boot, "modern");
}

#[test]
fn runner_net_user_gives_the_guest_a_working_card() {
    let boot = boot("test-net", &["--net", "user"]);
    assert_card_works(&boot, "transitional");
}

/// The frames of QEMU's socket backend: each is preceded by its length,
/// 4 bytes big-endian.
fn socket_frames(stream: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut rest = stream;
    while let Some((length, tail)) = rest.split_first_chunk::<4>() {
        let length = u32::from_be_bytes(*length) as usize;
        assert!(tail.len() >= length, "truncated frame at the end");
        frames.push(&tail[..length]);
        rest = &tail[length..];
    }
    frames
}

/// `test-net` booted on QEMU's socket backend connected to this test, with
/// runtime arguments `args`: the runner, reading the console until a line
/// contains `until`, and the network connection.
struct SocketBoot {
    runner: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    console: String,
    network: std::net::TcpStream,
}

impl SocketBoot {
    fn start(args: &[&str], until: &str) -> SocketBoot {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let port = listener.local_addr().expect("bound").port();
        let netdev = format!("socket,id=n0,connect=127.0.0.1:{port}");
        let mut runner = Command::new(RUNNER)
            .args(["test-net", "--timeout", TIMEOUT_SECONDS])
            .args(["--qemu-arg", "-netdev", "--qemu-arg", &netdev])
            .args([
                "--qemu-arg",
                "-device",
                "--qemu-arg",
                "virtio-net-pci,netdev=n0",
            ])
            .arg("--")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the runner starts");
        let (network, _) = listener.accept().expect("QEMU connects");
        let lines = BufReader::new(runner.stdout.take().expect("piped")).lines();
        let mut boot = SocketBoot {
            runner,
            lines,
            console: String::new(),
            network,
        };
        boot.read_console(Some(until));
        boot
    }

    /// Reads the console up to a line containing `until`, or to the end.
    fn read_console(&mut self, until: Option<&str>) {
        for line in self.lines.by_ref() {
            let line = line.expect("console output is text");
            self.console.push_str(&line);
            self.console.push('\n');
            if until.is_some_and(|until| line.contains(until)) {
                break;
            }
        }
    }

    fn finish(mut self) -> Boot {
        self.read_console(None);
        let status = self.runner.wait().expect("the runner exits");
        Boot {
            status: status.code(),
            console: self.console,
            runner_messages: String::new(),
        }
    }
}

#[test]
fn transmit_waits_while_the_network_is_blocked_and_loses_nothing() {
    const BURST: u64 = 10_000;
    let burst = format!("burst={BURST}");
    // Unread, the connection fills (the guest sends 15 MB, far more than
    // the sockets buffer) and QEMU stops taking frames from the card.
    let boot = SocketBoot::start(
        &["arp=off", "frame=1514", &burst],
        "transmit queue full after",
    );
    let mut network = boot.network.try_clone().expect("the connection");
    let reader = thread::spawn(move || {
        let mut stream = Vec::new();
        network.read_to_end(&mut stream).expect("QEMU's connection");
        stream
    });
    let boot = boot.finish();
    let stream = reader.join().expect("the reader");
    boot.assert_status(0);
    let waiting = message(&boot, "test_net", "transmit queue full after ");
    assert!(waiting.ends_with(" frames: waiting for room"), "{waiting}");
    assert_eq!(counter(&boot, "tx_packets"), BURST);
    assert_eq!(counter(&boot, "tx_bytes"), 1514 * BURST);
    assert_eq!(counter(&boot, "tx_dropped"), 1, "the oversized frame");
    // Every frame of the burst reached the network, once and in order.
    let numbers: Vec<u64> = socket_frames(&stream)
        .into_iter()
        .filter(|frame| frame.len() == 1514 && frame[12..14] == [0x88, 0xb5])
        .map(|frame| u64::from_be_bytes(frame[14..22].try_into().expect("8 bytes")))
        .collect();
    assert_eq!(numbers.len() as u64, BURST);
    assert!(
        numbers.iter().copied().eq(0..BURST),
        "frames out of order or repeated"
    );
}

#[test]
fn every_frame_sent_to_the_guest_arrives_in_order_through_the_receive_ring() {
    const FRAMES: u64 = 3_000;
    let receive = format!("receive={FRAMES}");
    // Sent once the driver is up (its `stats:` line): frames that arrive
    // before a driver gives the card buffers are lost, as on hardware.
    let mut boot = SocketBoot::start(&["arp=off", "burst=0", &receive], "stats: ");
    let mut stream = Vec::new();
    for number in 0..FRAMES {
        let mut frame = [0u8; 1514];
        frame[..6].fill(0xff);
        frame[6..12].copy_from_slice(&[0x52, 0x54, 0, 0xab, 0xcd, 0xef]);
        frame[12..14].copy_from_slice(&[0x88, 0xb5]);
        frame[14..22].copy_from_slice(&number.to_be_bytes());
        let length = 60 + (number as usize * 97) % (1514 - 60);
        stream.extend_from_slice(&(length as u32).to_be_bytes());
        stream.extend_from_slice(&frame[..length]);
    }
    boot.network
        .write_all(&stream)
        .expect("QEMU takes the frames");
    let boot = boot.finish();
    boot.assert_status(0);
    assert_eq!(
        message(&boot, "test_net", "received "),
        format!("received {FRAMES} frames in order")
    );
}

#[test]
fn without_a_card_the_device_says_to_boot_with_net_user() {
    let boot = boot("test-net", &[]);
    boot.assert_status(1);
    assert_eq!(
        boot.report(),
        "test-net failed: no network card: boot with `--net user` (or `--net tap`) to give \
         the unikernel a virtio-net NIC"
    );
}
