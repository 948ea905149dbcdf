//! The devices of a host process: a unikernel run as a Linux program, on
//! real time ([`crate::RealTime`]) or simulated time ([`crate::Simulated`]).
//!
//! * Time and the monotonic clock are the runtime's own (so on simulated
//!   time a one-second sleep takes no real time at all).
//! * The wall clock is the host's on real time, and on simulated time a
//!   fixed epoch ([`SIMULATED_WALL_EPOCH_UNIX_NS`]) plus simulated time, so
//!   runs are reproducible.
//! * The console writes to stdout (or to a capture buffer, for tests);
//!   input comes from stdin through a reader thread on real time, or from a
//!   script of lines typed at chosen simulated times.
//! * Random numbers: ChaCha20 seeded from the OS on real time, from the
//!   simulation's seed on simulated time.
//! * Logging: [`install_logger`] prints `log` records in the console line
//!   format with the runtime's clock, to stdout or the capture buffer.

use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::convert::Infallible;
use core::fmt::Write as _;
use core::time::Duration;
use std::collections::VecDeque;
use std::io::{BufRead, Write as _};
use std::sync::Mutex;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};

use super::log_line::LogLine;
use super::{Args, Console, Mclock, Pclock, Time};
use crate::{Error, Instant, InterruptSignal, time};

/// The wall-clock time at which every simulation starts:
/// 2026-01-01T00:00:00Z.
pub const SIMULATED_WALL_EPOCH_UNIX_NS: u64 = 1_767_225_600_000_000_000;

std::thread_local! {
    /// Where console output and log lines go on this thread: stdout when
    /// `None`, the buffer while capturing.
    static CAPTURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's console output and log lines captured, and
/// returns its result with everything printed.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, String) {
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(String::new()));
    let result = f();
    let printed = CAPTURE.with(|capture| capture.borrow_mut().take().unwrap_or_default());
    (result, printed)
}

fn emit(text: &str) {
    let captured = CAPTURE.with(|capture| match capture.borrow_mut().as_mut() {
        Some(buffer) => {
            buffer.push_str(text);
            true
        }
        None => false,
    });
    if !captured {
        let mut stdout = std::io::stdout().lock();
        // A closed stdout loses the text, as it would on a serial line.
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }
}

struct HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let nanos = crate::executor::try_with_core(|core| core.now())
                .unwrap_or(Instant::ZERO)
                .as_nanos();
            let mut line = String::new();
            let _ = write!(
                line,
                "{}",
                LogLine::new(nanos, record.level(), record.target(), *record.args())
            );
            emit(&line);
        }
    }

    fn flush(&self) {}
}

static LOGGER: HostLogger = HostLogger;

/// Installs the console-format logger (once per process) at `level`.
pub fn install_logger(level: log::LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// The runtime's sleep.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostTime;
impl Time for HostTime {}

/// The runtime's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostMclock;
impl Mclock for HostMclock {}

/// The wall clock: the host's, or the simulation's.
#[derive(Clone, Copy, Debug)]
pub enum HostPclock {
    /// `SystemTime::now()`.
    Real,
    /// [`SIMULATED_WALL_EPOCH_UNIX_NS`] plus simulated time.
    Simulated,
}

impl Pclock for HostPclock {
    fn now_unix_ns(&self) -> u64 {
        match self {
            HostPclock::Real => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos() as u64),
            HostPclock::Simulated => SIMULATED_WALL_EPOCH_UNIX_NS + time::now().as_nanos(),
        }
    }
}

/// Console input on real time: lines from a reader thread, signalled
/// through an interrupt signal as a device interrupt would be.
static STDIN_LINE: InterruptSignal = InterruptSignal::new();
static STDIN_LINES: Mutex<VecDeque<Option<String>>> = Mutex::new(VecDeque::new());
static STDIN_READER: std::sync::Once = std::sync::Once::new();

fn start_stdin_reader() {
    STDIN_READER.call_once(|| {
        std::thread::spawn(|| {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                STDIN_LINES
                    .lock()
                    .expect("not poisoned")
                    .push_back(Some(line));
                STDIN_LINE.raise();
            }
            STDIN_LINES.lock().expect("not poisoned").push_back(None);
            STDIN_LINE.raise();
        });
    });
}

/// Where console input comes from.
#[derive(Clone, Debug)]
enum Input {
    Stdin,
    /// Lines to "type" at given simulated times, in order.
    Script(Rc<RefCell<VecDeque<(Duration, String)>>>),
}

/// The host console.
#[derive(Clone, Debug)]
pub struct HostConsole {
    input: Input,
}

impl Console for HostConsole {
    fn write(&self, text: &str) {
        emit(text);
    }

    async fn read_line(&self) -> Result<Option<String>, Error> {
        match &self.input {
            Input::Stdin => {
                start_stdin_reader();
                loop {
                    if let Some(line) = STDIN_LINES.lock().expect("not poisoned").pop_front() {
                        return Ok(line);
                    }
                    STDIN_LINE.wait().await?;
                }
            }
            Input::Script(script) => {
                let next = script.borrow_mut().pop_front();
                match next {
                    None => Ok(None),
                    Some((at, line)) => {
                        time::sleep_until(Instant::ZERO + at).await?;
                        Ok(Some(line))
                    }
                }
            }
        }
    }
}

/// A ChaCha20 generator shared by every clone of the device.
#[derive(Clone, Debug)]
pub struct HostRandom(Rc<RefCell<ChaCha20Rng>>);

impl HostRandom {
    fn seeded(seed: u64) -> Self {
        HostRandom(Rc::new(RefCell::new(ChaCha20Rng::seed_from_u64(seed))))
    }
}

impl TryRng for HostRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.borrow_mut().next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.borrow_mut().next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.borrow_mut().fill_bytes(dst);
        Ok(())
    }
}

impl TryCryptoRng for HostRandom {}

/// Runtime arguments given to the host program.
#[derive(Clone, Debug, Default)]
pub struct HostArgs(Rc<Vec<(String, String)>>);

impl HostArgs {
    /// Arguments from `key=value` strings (an argument without `=` is an
    /// error naming it).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<HostArgs, Error> {
        args.iter()
            .map(|arg| match arg.as_ref().split_once('=') {
                Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
                _ => Err(Error::msg(alloc::format!(
                    "runtime argument `{}` is not of the form key=value",
                    arg.as_ref()
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|pairs| HostArgs(Rc::new(pairs)))
    }
}

impl Args for HostArgs {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// Every device of a host process.
#[derive(Clone, Debug)]
pub struct Devices {
    /// Sleeping.
    pub time: HostTime,
    /// The monotonic clock.
    pub mclock: HostMclock,
    /// The wall clock.
    pub pclock: HostPclock,
    /// The console.
    pub console: HostConsole,
    /// Random numbers.
    pub random: HostRandom,
    /// Runtime arguments.
    pub args: HostArgs,
}

impl Devices {
    /// Devices for simulated time: random numbers from `seed`, console
    /// input typed as `script` says (each line at its simulated time).
    pub fn simulated(seed: u64, args: HostArgs, script: Vec<(Duration, String)>) -> Devices {
        Devices {
            time: HostTime,
            mclock: HostMclock,
            pclock: HostPclock::Simulated,
            console: HostConsole {
                input: Input::Script(Rc::new(RefCell::new(script.into()))),
            },
            random: HostRandom::seeded(seed),
            args,
        }
    }

    /// Devices for real time: the host's wall clock and stdin, random
    /// numbers seeded from the OS.
    pub fn real_time(args: HostArgs) -> Devices {
        Devices {
            time: HostTime,
            mclock: HostMclock,
            pclock: HostPclock::Real,
            console: HostConsole {
                input: Input::Stdin,
            },
            random: HostRandom::seeded(os_seed()),
            args,
        }
    }
}

/// 64 bits from `/dev/urandom`, or from the hasher's per-process keys if
/// it cannot be read.
fn os_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut bytes));
    match from_os {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::process::id())
        }
    }
}
