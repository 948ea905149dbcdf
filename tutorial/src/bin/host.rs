//! The tutorial unikernels as host programs:
//!
//! ```text
//! cargo run -p unikit-tutorial -- <unikernel> [--simulated <seed>]
//!     [--type <seconds>=<line>]... [--log <level>] [-- key=value...]
//! ```
//!
//! On real time (the default) the unikernel sleeps for real and reads the
//! console from stdin. With `--simulated <seed>` it runs on simulated time:
//! the clock jumps from one timer to the next, random numbers come from the
//! seed, and console input is the `--type` lines, each typed at its
//! simulated time; the same seed prints the same output, timestamps
//! included. The exit status is 0 when the unikernel returns `Ok`, 1 when
//! it fails, 2 for a usage error.

use std::process::ExitCode;
use std::time::Duration;
use unikit_runtime::devices::host::{Devices, HostArgs, install_logger};
use unikit_runtime::{RealTime, Runtime, Simulated};
use unikit_tutorial::host::{NAMES, bind};

const USAGE: &str = "usage: unikit-tutorial <unikernel> [--simulated <seed>] [--type <seconds>=<line>]... [--log <level>] [-- key=value...]";

struct Options {
    name: String,
    seed: Option<u64>,
    script: Vec<(Duration, String)>,
    level: log::LevelFilter,
    args: Vec<String>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        name: String::new(),
        seed: None,
        script: Vec::new(),
        level: log::LevelFilter::Info,
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
    let Some(unikernel) = bind(&options.name, devices) else {
        eprintln!(
            "unikit-tutorial: no unikernel called `{}`\nunikernels: {}",
            options.name,
            NAMES.join(" ")
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
