//! The runner's command line.
//!
//! ```text
//! cargo run -- <unikernel> [--uefi | --direct] [--kvm] [--mem <MiB>] [--gdb]
//!                          [--timeout <seconds>] [--qemu-arg <arg>]...
//!                          [--net user|tap[:NAME]|none] [--forward <forward>]...
//!                          [-- key=value...]
//! cargo run -- --list
//! ```
//!
//! Everything after a second `--` is a runtime argument for the unikernel.
//!
//! Parsing is strict: an unknown option, a missing or malformed value, or
//! a second unikernel name is an error that says what was expected, and the
//! runner exits 2.

use crate::network::{Forward, Network};
use std::fmt;
use std::time::Duration;

/// Guest memory when `--mem` is not given, in MiB.
pub const DEFAULT_MEM_MIB: u32 = 64;

/// The usage text printed by `--help` and after a usage error.
pub const USAGE: &str = "\
usage: cargo run -- <unikernel> [options] [-- key=value...]
       cargo run -- --list
options:
  --uefi              boot the UEFI image under OVMF (default: the BIOS image)
  --direct            boot the kernel ELF without a disk image or bootloader: QEMU loads
                      unikit's PVH loader (-kernel), which loads the kernel (-initrd)
  --kvm               use KVM instead of TCG (may hang in the bootloader on some hosts)
  --mem <MiB>         guest memory in MiB (default 64; the disk images' bootloader needs
                      at least 32)
  --gdb               start QEMU's gdb stub on localhost:1234 and wait for gdb to continue
  --timeout <seconds> kill the guest if it has not exited after this long (status 124)
  --qemu-arg <arg>    pass one more argument to QEMU (repeatable)
  --net <network>     give the guest a virtio-net NIC: `user` (QEMU user networking,
                      guest 10.0.2.15 by DHCP), `tap[:NAME]` (a TAP device, default
                      unikit0, created with host address 10.0.3.1/24 when root) or `none`
  --forward <fwd>     with --net user: forward [tcp:|udp:]HOSTPORT[:GUESTPORT] from the
                      host's 127.0.0.1 (repeatable; default tcp and udp 8080; implies --net user)
  --list              list the unikernels and test images
  -h, --help          print this help
runtime arguments (after `--`) reach the unikernel without rebuilding it;
the kernel reads log=<error|warn|info|debug|trace> and
alarm=<tsc-deadline|lapic|pit|tick-1khz>, the unikernel reads its own keys";

/// What the user asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Boot a unikernel.
    Run(RunOptions),
    /// List the images.
    List,
    /// Print the usage.
    Help,
}

/// How to boot a unikernel.
#[derive(Debug, Default, PartialEq)]
pub struct RunOptions {
    /// The unikernel's name.
    pub unikernel: String,
    /// Boot the UEFI image instead of the BIOS one.
    pub uefi: bool,
    /// Boot the kernel ELF through the PVH loader instead of a disk image.
    pub direct: bool,
    /// Use KVM instead of TCG.
    pub kvm: bool,
    /// Guest memory in MiB.
    pub mem_mib: u32,
    /// Wait for gdb on :1234.
    pub gdb: bool,
    /// Kill the guest after this long.
    pub timeout: Option<Duration>,
    /// Extra QEMU arguments, appended last.
    pub qemu_args: Vec<String>,
    /// The guest's network.
    pub network: Network,
    /// `key=value` runtime arguments for the unikernel.
    pub runtime_args: Vec<String>,
}

/// A usage error: what was wrong and what was expected.
#[derive(Debug, PartialEq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, UsageError> {
    let mut args = args.into_iter();
    let mut unikernel = None;
    let mut options = RunOptions {
        mem_mib: DEFAULT_MEM_MIB,
        ..RunOptions::default()
    };
    let mut network = None;
    let mut forwards = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--" => {
                options.runtime_args = args
                    .by_ref()
                    .map(runtime_argument)
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => return Ok(Command::Help),
            "--list" => return Ok(Command::List),
            "--uefi" => options.uefi = true,
            "--direct" => options.direct = true,
            "--kvm" => options.kvm = true,
            "--gdb" => options.gdb = true,
            "--mem" => {
                let value = value_of("--mem", "a size in MiB", &mut args)?;
                options.mem_mib =
                    value.parse().ok().filter(|&mib| mib > 0).ok_or_else(|| {
                        expected("--mem", "a positive whole number of MiB", &value)
                    })?;
            }
            "--timeout" => {
                let value = value_of("--timeout", "a number of seconds", &mut args)?;
                let seconds: f64 = value
                    .parse()
                    .ok()
                    .filter(|&s: &f64| s.is_finite() && s > 0.0)
                    .ok_or_else(|| expected("--timeout", "a positive number of seconds", &value))?;
                options.timeout = Some(Duration::from_secs_f64(seconds));
            }
            "--qemu-arg" => {
                let value = value_of("--qemu-arg", "one QEMU argument", &mut args)?;
                options.qemu_args.push(value);
            }
            "--net" => {
                let value = value_of("--net", "user, tap, tap:NAME or none", &mut args)?;
                network = Some(Network::parse(&value).map_err(UsageError)?);
            }
            "--forward" => {
                let value = value_of("--forward", "[tcp:|udp:]HOSTPORT[:GUESTPORT]", &mut args)?;
                forwards.push(Forward::parse(&value).map_err(UsageError)?);
            }
            option if option.starts_with('-') => {
                return Err(UsageError(format!(
                    "unknown option `{option}`; expected one of --uefi --direct --kvm --mem --gdb --timeout --qemu-arg --net --forward --list --help"
                )));
            }
            name => {
                if let Some(first) = &unikernel {
                    return Err(UsageError(format!(
                        "unexpected argument `{name}`: the unikernel is already `{first}`, and only one boots at a time"
                    )));
                }
                unikernel = Some(name.to_owned());
            }
        }
    }
    options.network = match (network, forwards.is_empty()) {
        (None, true) => Network::None,
        (None | Some(Network::User { .. }), false) => Network::User { forwards },
        (Some(network), true) => network,
        (Some(_), false) => {
            return Err(UsageError(
                "`--forward` needs `--net user`: other networks reach the guest directly".into(),
            ));
        }
    };
    if options.uefi && options.direct {
        return Err(UsageError(
            "`--uefi` and `--direct` exclude each other: a direct boot uses no firmware disk boot"
                .into(),
        ));
    }
    options.unikernel = unikernel.ok_or_else(|| {
        UsageError(
            "missing the unikernel to boot; expected its name, e.g. `cargo run -- noop`".into(),
        )
    })?;
    Ok(Command::Run(options))
}

fn runtime_argument(argument: String) -> Result<String, UsageError> {
    match argument.split_once('=') {
        Some((key, _)) if !key.is_empty() && !argument.contains('\0') => Ok(argument),
        _ => Err(UsageError(format!(
            "runtime argument `{argument}` is not of the form key=value (e.g. hello=Bonjour)"
        ))),
    }
}

fn value_of(
    option: &str,
    what: &str,
    args: &mut impl Iterator<Item = String>,
) -> Result<String, UsageError> {
    args.next()
        .ok_or_else(|| UsageError(format!("`{option}` needs a value: {what}")))
}

fn expected(option: &str, what: &str, got: &str) -> UsageError {
    UsageError(format!("`{option}` expects {what}, got `{got}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command, UsageError> {
        parse(line.split_whitespace().map(String::from))
    }

    fn run(line: &str) -> RunOptions {
        match parse_str(line) {
            Ok(Command::Run(options)) => options,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn a_bare_name_boots_bios_under_tcg_with_the_default_memory() {
        let options = run("noop");
        assert_eq!(options.unikernel, "noop");
        assert!(!options.uefi && !options.direct && !options.kvm && !options.gdb);
        assert_eq!(options.mem_mib, DEFAULT_MEM_MIB);
        assert_eq!(options.timeout, None);
    }

    #[test]
    fn every_option_is_parsed_in_any_order() {
        let options =
            run("--uefi --mem 48 heads1 --kvm --gdb --timeout 2.5 --qemu-arg -smp --qemu-arg 1");
        assert_eq!(options.unikernel, "heads1");
        assert!(options.uefi && options.kvm && options.gdb);
        assert_eq!(options.mem_mib, 48);
        assert_eq!(options.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(options.qemu_args, ["-smp", "1"]);
        assert!(run("heads1 --direct").direct);
    }

    #[test]
    fn everything_after_a_double_dash_is_a_runtime_argument() {
        let options = run("hello_key --mem 40 -- hello=Bonjour --uefi=1 empty=");
        assert_eq!(options.mem_mib, 40);
        assert!(!options.uefi);
        assert_eq!(
            options.runtime_args,
            ["hello=Bonjour", "--uefi=1", "empty="]
        );
    }

    #[test]
    fn a_runtime_argument_without_a_key_is_a_usage_error() {
        assert_eq!(
            parse_str("hello_key -- hello=Bonjour verbose")
                .unwrap_err()
                .0,
            "runtime argument `verbose` is not of the form key=value (e.g. hello=Bonjour)"
        );
        assert!(parse_str("hello_key -- =x").is_err());
    }

    #[test]
    fn list_and_help_win_over_everything_else() {
        assert_eq!(parse_str("noop --list"), Ok(Command::List));
        assert_eq!(parse_str("--help noop"), Ok(Command::Help));
        assert_eq!(parse_str("-h"), Ok(Command::Help));
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let error = |line| parse_str(line).unwrap_err().0;
        assert_eq!(
            error("noop --mem lots"),
            "`--mem` expects a positive whole number of MiB, got `lots`"
        );
        assert_eq!(
            error("noop --mem 0"),
            "`--mem` expects a positive whole number of MiB, got `0`"
        );
        assert_eq!(
            error("noop --timeout -1"),
            "`--timeout` expects a positive number of seconds, got `-1`"
        );
        assert_eq!(error("noop --mem"), "`--mem` needs a value: a size in MiB");
        assert!(error("noop --fast").starts_with("unknown option `--fast`; expected one of"));
        assert!(error("noop heads1").contains("only one boots at a time"));
        assert!(error("--uefi").starts_with("missing the unikernel to boot"));
        assert!(error("heads1 --uefi --direct").contains("exclude each other"));
        assert!(error("noop --net wifi").starts_with("`--net` expects user, tap"));
        assert!(error("noop --forward 8080:x").starts_with("`--forward` expects"));
        assert_eq!(
            error("noop --net tap --forward 80"),
            "`--forward` needs `--net user`: other networks reach the guest directly"
        );
    }

    #[test]
    fn forwards_imply_user_networking() {
        assert_eq!(run("noop").network, Network::None);
        assert_eq!(
            run("network --net user").network,
            Network::User { forwards: vec![] }
        );
        let forwards = vec![
            Forward::parse("18080:8080").unwrap(),
            Forward::parse("udp:1900").unwrap(),
        ];
        assert_eq!(
            run("network --forward 18080:8080 --forward udp:1900").network,
            Network::User {
                forwards: forwards.clone()
            }
        );
        assert_eq!(
            run("network --forward 18080:8080 --net user --forward udp:1900").network,
            Network::User { forwards }
        );
        assert_eq!(
            run("network --net tap:tap3").network,
            Network::Tap {
                name: "tap3".into()
            }
        );
    }
}
