//! The virtio-net card under QEMU user networking, through the `test-net`
//! image: the transitional device (QEMU's default) and the modern-only one,
//! on BIOS and UEFI, and the error without a card.

mod common;

use common::{Boot, boot};

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
