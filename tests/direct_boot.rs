//! Direct boot (`--direct`): QEMU loads unikit's PVH loader, which loads
//! the unikernel's kernel ELF without a disk image or bootloader. The same
//! kernels must behave exactly as they do from the BIOS disk image: the
//! in-guest checks (memory mapping, guard page, interrupt controllers,
//! PCI), the fault reports, the tutorials' timing; and in far less memory,
//! since no bootloader stage needs room.

mod common;

use common::{Boot, boot};

fn banner(boot: &Boot) -> String {
    boot.log_lines()
        .iter()
        .find(|line| line.source == "kernel" && line.level == "INFO")
        .map(|line| line.message.to_owned())
        .unwrap_or_else(|| panic!("no banner:\n{}", boot.console))
}

#[test]
fn noop_boots_directly_in_4_mib_and_exits_0() {
    let boot = boot("noop", &["--direct", "--mem", "4"]);
    boot.assert_status(0);
    boot.assert_every_line_is_a_log_line();
    assert!(
        banner(&boot).starts_with("unikit: starting noop (TSC "),
        "{}",
        boot.console
    );
    assert!(boot.runner_messages.is_empty(), "{}", boot.runner_messages);
}

#[test]
fn every_in_guest_kernel_check_passes_on_a_direct_boot() {
    let boot = boot("test-kernel", &["--direct"]);
    boot.assert_status(0);
    boot.assert_every_line_is_a_log_line();
    boot.assert_every_kernel_check_passed();
}

#[test]
fn the_stack_guard_page_catches_an_overflow_on_a_direct_boot() {
    let boot = boot("test-stack-overflow", &["--direct"]);
    boot.assert_status(5);
    let report = boot.report();
    assert!(
        report.starts_with(
            "double fault: kernel stack overflow (the 128 KiB boot stack is exhausted"
        ),
        "{report}"
    );
}

#[test]
fn a_page_fault_is_reported_with_its_address_on_a_direct_boot() {
    let boot = boot("test-page-fault", &["--direct"]);
    boot.assert_status(4);
    let report = boot.report();
    assert!(
        report.starts_with(
            "CPU exception: page fault: write to unmapped address 0x7eadbeef0000 at instruction 0x"
        ),
        "{report}"
    );
}

#[test]
fn heads1_keeps_its_timing_on_a_direct_boot() {
    let boot = boot("heads1", &["--direct"]);
    boot.assert_status(0);
    let lines = boot.log_lines();
    let start = lines
        .iter()
        .find(|line| line.message.starts_with("unikit: starting heads1"))
        .expect("the banner")
        .micros;
    let at = |text: &str| {
        lines
            .iter()
            .find(|line| line.message == text)
            .unwrap_or_else(|| panic!("no {text:?}:\n{}", boot.console))
            .micros
            - start
    };
    let (heads, tails, finished) = (at("Heads"), at("Tails"), at("Finished"));
    assert!(
        (1_000_000..1_300_000).contains(&heads),
        "Heads at {heads} us"
    );
    assert!(
        (2_000_000..2_300_000).contains(&tails),
        "Tails at {tails} us"
    );
    assert!(finished >= tails, "Finished at {finished} us");
}

#[test]
fn a_direct_boot_of_something_that_is_not_a_kernel_says_so_and_exits_1() {
    let not_a_kernel =
        std::env::temp_dir().join(format!("unikit-not-a-kernel-{}", std::process::id()));
    std::fs::write(&not_a_kernel, "hello\n").unwrap();
    // QEMU takes the last -initrd: this one replaces the kernel ELF.
    let boot = boot(
        "noop",
        &[
            "--direct",
            "--qemu-arg",
            "-initrd",
            "--qemu-arg",
            not_a_kernel.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_file(&not_a_kernel);
    boot.assert_status(1);
    assert_eq!(
        boot.console,
        "unikit direct boot: the initrd is not an ELF file (boot a unikit kernel ELF)\n"
    );
}
