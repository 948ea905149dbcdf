//! The virtio-net card through the `test-net` image: under QEMU user
//! networking, the transitional device (QEMU's default) and the
//! modern-only one, on BIOS and UEFI; on a network that stops taking frames
//! (QEMU's socket backend, connected to this test, which does not read
//! until the guest waits), transmit waits for room and loses nothing; and
//! the error without a card.

mod common;

use common::{Boot, RUNNER, TIMEOUT_SECONDS, boot};
use std::io::{BufRead, BufReader, Read};
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

#[test]
fn transmit_waits_while_the_network_is_blocked_and_loses_nothing() {
    const BURST: u64 = 10_000;
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
        .args(["--", "arp=off", "frame=1514", &format!("burst={BURST}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the runner starts");
    let (mut network, _) = listener.accept().expect("QEMU connects");
    // Unread, the connection fills (the guest sends 15 MB, far more than
    // the sockets buffer) and QEMU stops taking frames from the card.
    let mut lines = BufReader::new(runner.stdout.take().expect("piped")).lines();
    let mut console = String::new();
    for line in lines.by_ref() {
        let line = line.expect("console output is text");
        console.push_str(&line);
        console.push('\n');
        if line.contains("transmit queue full after") {
            break;
        }
    }
    let reader = thread::spawn(move || {
        let mut stream = Vec::new();
        network.read_to_end(&mut stream).expect("QEMU's connection");
        stream
    });
    for line in lines {
        console.push_str(&line.expect("console output is text"));
        console.push('\n');
    }
    let status = runner.wait().expect("the runner exits");
    let stream = reader.join().expect("the reader");
    let boot = Boot {
        status: status.code(),
        console,
        runner_messages: String::new(),
    };
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
fn without_a_card_the_device_says_to_boot_with_net_user() {
    let boot = boot("test-net", &[]);
    boot.assert_status(1);
    assert_eq!(
        boot.report(),
        "test-net failed: no network card: boot with `--net user` (or `--net tap`) to give \
         the unikernel a virtio-net NIC"
    );
}
