//! Starting QEMU for an image, and reading the unikernel's status back.
//!
//! The machine: QEMU's default PC, `-cpu max` under TCG (or `-cpu host`
//! under KVM), no default devices but a VGA card (the bootloader's BIOS
//! stage hangs without VBE), the serial port on stdio, no display, no
//! reboot (a triple fault stops QEMU instead of looping), and the
//! `isa-debug-exit` device through which the unikernel reports its status
//! (see `unikit_drivers::qemu_exit`). The disk is opened with `snapshot=on`
//! so several QEMUs can boot the same image at once and none writes to it.
//! A direct boot (`--direct`) gives QEMU no disk: `-kernel` is unikit's PVH
//! loader and `-initrd` the unikernel's kernel ELF.
//!
//! QEMU never outlives the runner: it is started with the parent-death
//! signal set (killed if the runner dies, however it dies), and SIGINT,
//! SIGTERM and SIGHUP sent to the runner stop QEMU and let the runner clean
//! up (the runtime-argument file, a TAP device it created) before it exits
//! with 128 plus the signal's number.

use crate::cli::RunOptions;
use crate::host::Tools;
use crate::images::{DIRECT_BOOT_LOADER, Image};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};
use unikit_drivers::qemu_exit;

/// Runner exit status: usage error (unknown unikernel, bad option).
pub const STATUS_USAGE: u8 = 2;
/// Runner exit status: the guest was killed at `--timeout`.
pub const STATUS_TIMEOUT: u8 = 124;
/// Runner exit status: QEMU stopped without a status from the unikernel
/// (QEMU failed, or the guest reset or powered off).
pub const STATUS_NO_GUEST_STATUS: u8 = 125;
/// Runner exit status: QEMU is missing and could not be installed.
pub const STATUS_NO_QEMU: u8 = 127;

/// The runtime arguments, written NUL-separated to a temporary file that
/// QEMU hands the guest as the fw_cfg item `opt/unikit/args`; removed when
/// dropped.
pub struct ArgsFile(PathBuf);

/// The fw_cfg name the kernel reads runtime arguments from.
pub const ARGS_FW_CFG_NAME: &str = "opt/unikit/args";

impl ArgsFile {
    /// Writes `args` to a new temporary file.
    pub fn write(args: &[String]) -> std::io::Result<ArgsFile> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "unikit-args-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, args.join("\0"))?;
        Ok(ArgsFile(path))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ArgsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The QEMU command line that boots `image` as `options` say, with the
/// runtime arguments in `args` (if any).
pub fn command(
    tools: &Tools,
    image: &Image,
    options: &RunOptions,
    args: Option<&ArgsFile>,
) -> Command {
    let mut command = Command::new(&tools.qemu);
    let (accel, cpu) = if options.kvm {
        ("kvm", "host")
    } else {
        ("tcg", "max")
    };
    command
        .args(["-accel", accel, "-cpu", cpu])
        .args(["-m", &options.mem_mib.to_string()])
        .args([
            "-nodefaults",
            "-vga",
            "std",
            "-no-reboot",
            "-display",
            "none",
        ])
        .args(["-serial", "stdio"])
        .args([
            "-device",
            &format!("isa-debug-exit,iobase={:#x},iosize=0x04", qemu_exit::PORT),
        ]);
    if options.direct {
        command
            .args(["-kernel", DIRECT_BOOT_LOADER])
            .arg("-initrd")
            .arg(image.kernel);
    } else {
        command.arg("-drive").arg(format!(
            "format=raw,snapshot=on,file={}",
            image.disk(options.uefi).display()
        ));
    }
    if let Some(ovmf) = &tools.ovmf {
        command.arg("-bios").arg(ovmf);
    }
    if let Some(args) = args {
        // QEMU's option syntax doubles a comma inside a value.
        let path = args.path().display().to_string().replace(',', ",,");
        command
            .arg("-fw_cfg")
            .arg(format!("name={ARGS_FW_CFG_NAME},file={path}"));
    }
    if options.gdb {
        command.args(["-s", "-S"]);
    }
    command.args(options.network.qemu_args());
    command.args(&options.qemu_args);
    // SAFETY: the closure runs in the forked child before exec and only
    // calls prctl, which is async-signal-safe and changes nothing but the
    // child's own parent-death signal.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// The signal that asked the runner to stop (0 while none has).
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn record_stop_signal(signal: libc::c_int) {
    STOP_SIGNAL.store(signal, Ordering::Relaxed);
}

/// Makes SIGINT, SIGTERM and SIGHUP ask [`wait`] to stop QEMU and return
/// [`Outcome::Interrupted`], instead of ending the runner at once (which
/// would leave its temporary file and TAP device behind).
pub fn catch_stop_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; it stays valid for the whole process.
        unsafe {
            libc::signal(
                signal,
                record_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// How a QEMU run ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The unikernel reported this status.
    Exited(u8),
    /// QEMU ended on its own, with this process status (`None`: a signal).
    NoGuestStatus(Option<i32>),
    /// `--timeout` elapsed and QEMU was killed.
    TimedOut,
    /// The runner got this stop signal (SIGINT, SIGTERM, SIGHUP) and
    /// stopped QEMU.
    Interrupted(i32),
}

impl Outcome {
    /// The status the runner exits with.
    pub fn runner_status(&self) -> u8 {
        match self {
            Outcome::Exited(status) => *status,
            Outcome::NoGuestStatus(_) => STATUS_NO_GUEST_STATUS,
            Outcome::TimedOut => STATUS_TIMEOUT,
            Outcome::Interrupted(signal) => 128u8.saturating_add(*signal as u8),
        }
    }

    /// Decodes QEMU's process status.
    pub fn from_qemu(status: ExitStatus) -> Outcome {
        match status.code() {
            Some(code) => match qemu_exit::decode_qemu_status(code) {
                Some(guest) => Outcome::Exited(guest),
                None => Outcome::NoGuestStatus(Some(code)),
            },
            None => Outcome::NoGuestStatus(None),
        }
    }
}

/// Waits for QEMU, killing it when `timeout` elapses or a stop signal
/// arrives (see [`catch_stop_signals`]).
pub fn wait(mut child: Child, timeout: Option<Duration>) -> std::io::Result<Outcome> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    loop {
        let signal = STOP_SIGNAL.load(Ordering::Relaxed);
        if signal != 0 {
            // QEMU may have ended already (a terminal's Ctrl-C reaches it
            // too); killing an exited child that is not yet reaped is
            // harmless.
            let _ = child.kill();
            child.wait()?;
            return Ok(Outcome::Interrupted(signal));
        }
        if let Some(status) = child.try_wait()? {
            return Ok(Outcome::from_qemu(status));
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            child.kill()?;
            child.wait()?;
            return Ok(Outcome::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Network;
    use std::os::unix::process::ExitStatusExt;

    fn status(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn guest_statuses_come_back_through_qemu() {
        for guest in [0u8, 1, 3, 4, 5, 6] {
            let qemu = qemu_exit::qemu_status_for(guest);
            assert_eq!(Outcome::from_qemu(status(qemu)), Outcome::Exited(guest));
        }
    }

    #[test]
    fn qemu_failing_on_its_own_is_not_a_guest_status() {
        let outcome = Outcome::from_qemu(status(1));
        assert_eq!(outcome, Outcome::NoGuestStatus(Some(1)));
        assert_eq!(outcome.runner_status(), STATUS_NO_GUEST_STATUS);
        assert_eq!(
            Outcome::from_qemu(ExitStatus::from_raw(9)),
            Outcome::NoGuestStatus(None)
        );
    }

    fn noop_image() -> Image {
        Image {
            name: "noop",
            kernel: "/k.elf",
            bios: "/b.img",
            uefi: "/u.img",
        }
    }

    #[test]
    fn a_direct_boot_gives_qemu_the_loader_and_the_kernel_elf_and_no_disk() {
        let tools = Tools {
            qemu: "qemu".into(),
            ovmf: None,
        };
        let image = noop_image();
        let options = RunOptions {
            unikernel: "noop".into(),
            direct: true,
            mem_mib: 16,
            ..RunOptions::default()
        };
        let command = command(&tools, &image, &options, None);
        let args: Vec<_> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        let line = args.join(" ");
        assert!(
            line.contains(&format!("-kernel {DIRECT_BOOT_LOADER} -initrd /k.elf")),
            "{line}"
        );
        assert!(!line.contains("-drive"), "{line}");
    }

    #[test]
    fn the_command_line_carries_every_option() {
        let tools = Tools {
            qemu: "qemu".into(),
            ovmf: Some("/fw/OVMF.fd".into()),
        };
        let image = noop_image();
        let options = RunOptions {
            unikernel: "noop".into(),
            uefi: true,
            direct: false,
            kvm: false,
            mem_mib: 40,
            gdb: true,
            timeout: None,
            qemu_args: vec!["-smp".into(), "1".into()],
            network: Network::parse("user").unwrap(),
            runtime_args: vec!["hello=Bonjour".into()],
        };
        let args = ArgsFile::write(&options.runtime_args).unwrap();
        assert_eq!(
            std::fs::read_to_string(args.path()).unwrap(),
            "hello=Bonjour"
        );
        let command = command(&tools, &image, &options, Some(&args));
        let args: Vec<_> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        let line = args.join(" ");
        assert!(line.starts_with("-accel tcg -cpu max -m 40 "), "{line}");
        assert!(
            line.contains("-device isa-debug-exit,iobase=0xf4,iosize=0x04"),
            "{line}"
        );
        assert!(
            line.contains("-drive format=raw,snapshot=on,file=/u.img"),
            "{line}"
        );
        assert!(
            line.contains("-bios /fw/OVMF.fd -fw_cfg name=opt/unikit/args,file=/"),
            "{line}"
        );
        assert!(line.contains(" -s -S "), "{line}");
        assert!(
            line.contains(" -netdev user,id=net0,hostfwd=tcp:127.0.0.1:8080-:8080,"),
            "{line}"
        );
        assert!(
            line.ends_with("-device virtio-net-pci,netdev=net0 -smp 1"),
            "{line}"
        );
    }
}
