//! The tutorial unikernels as host programs:
//!
//! ```text
//! cargo run -p unikit-tutorial -- <unikernel> [--simulated <seed>]
//!     [--type <seconds>=<line>]... [--log <level>] [--tap <name>]
//!     [-- key=value...]
//! ```
//!
//! On real time (the default) the unikernel sleeps for real and reads the
//! console from stdin. With `--simulated <seed>` it runs on simulated time:
//! the clock jumps from one timer to the next, random numbers come from the
//! seed, and console input is the `--type` lines, each typed at its
//! simulated time; the same seed prints the same output, timestamps
//! included. The network unikernels (`network`, `udp_echo`, `http`) run on
//! real time over a TAP device (`--tap NAME`, root only; configure the host
//! side with `ip`, give the unikernel a static address with `-- ipv4=`).
//! The exit status is 0 when the unikernel returns `Ok`, 1 when
//! it fails, 2 for a usage error.

use std::process::ExitCode;
use std::time::Duration;
use unikit_net::host::Tap;
use unikit_runtime::devices::host::{Devices, HostArgs, install_logger};
use unikit_runtime::{RealTime, Runtime, Simulated};
use unikit_tutorial::host::{NAMES, NETWORK_NAMES, bind, bind_network};

const USAGE: &str = "usage: unikit-tutorial <unikernel> [--simulated <seed>] [--type <seconds>=<line>]... [--log <level>] [--tap <name>] [-- key=value...]";

/// The MAC address of the host program's TAP device: locally administered
/// (bit 1 of the first byte), so it never clashes with a vendor's.
const TAP_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x75, 0x6b, 0x01];

struct Options {
    name: String,
    seed: Option<u64>,
    script: Vec<(Duration, String)>,
    level: log::LevelFilter,
    tap: Option<String>,
    args: Vec<String>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        name: String::new(),
        seed: None,
        script: Vec::new(),
        level: log::LevelFilter::Info,
        tap: None,
        args: Vec::new(),
    };
    while let Some(arg) = argv.next() {
        let mut value = |what: &str| argv.next().ok_or(format!("`{arg}` needs {what}"));
        match arg.as_str() {
            "--simulated" => {
                let seed = value("a seed")?;
                options.seed =
                    Some(seed.parse().map_err(|_| {
                        format!("`--simulated` expects a whole number, got `{seed}`")
                    })?);
            }
            "--type" => {
                let typed = value("<seconds>=<line>")?;
                let (at, line) = typed
                    .split_once('=')
                    .and_then(|(at, line)| {
                        Some((at.parse::<f64>().ok().filter(|s| *s >= 0.0)?, line))
                    })
                    .ok_or(format!("`--type` expects <seconds>=<line>, got `{typed}`"))?;
                options
                    .script
                    .push((Duration::from_secs_f64(at), line.to_owned()));
            }
            "--log" => {
                let level = value("a level")?;
                options.level = level.parse().map_err(|_| {
                    format!("`--log` expects one of error, warn, info, debug, trace, got `{level}`")
                })?;
            }
            "--tap" => options.tap = Some(value("a TAP interface name")?),
            "--" => options.args.extend(argv.by_ref()),
            name if !name.starts_with('-') && options.name.is_empty() => {
                options.name = name.to_owned()
            }
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    if options.name.is_empty() {
        return Err("missing the unikernel to run".to_owned());
    }
    let network = NETWORK_NAMES.contains(&options.name.as_str());
    if network && (options.tap.is_none() || options.seed.is_some()) {
        return Err(format!(
            "`{}` needs a network: `--tap <name>` on real time (root; not with --simulated)",
            options.name
        ));
    }
    if !network && options.tap.is_some() {
        return Err(format!("`{}` uses no network; drop `--tap`", options.name));
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("unikit-tutorial: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let args = match HostArgs::parse(&options.args) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("unikit-tutorial: {error}");
            return ExitCode::from(2);
        }
    };
    install_logger(options.level);
    let devices = match options.seed {
        Some(seed) => Devices::simulated(seed, args, options.script),
        None => Devices::real_time(args),
    };
    let bound = match &options.tap {
        Some(name) => match Tap::open(name, TAP_MAC) {
            Ok(tap) => bind_network(&options.name, devices, tap),
            Err(error) => {
                eprintln!("unikit-tutorial: {error}");
                return ExitCode::from(1);
            }
        },
        None => bind(&options.name, devices),
    };
    let Some(unikernel) = bound else {
        eprintln!(
            "unikit-tutorial: no unikernel called `{}`\nunikernels: {} {}",
            options.name,
            NAMES.join(" "),
            NETWORK_NAMES.join(" ")
        );
        return ExitCode::from(2);
    };
    let outcome = match options.seed {
        Some(seed) => Runtime::new(Simulated::new(seed)).run(unikernel),
        None => Runtime::new(RealTime::default()).run(unikernel),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!(target: "host", "{} failed: {error}", options.name);
            ExitCode::from(1)
        }
    }
}
