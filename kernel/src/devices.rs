//! The device traits of `unikit_runtime::devices`, implemented on the
//! kernel's drivers. [`Devices`] bundles them with the same field names as
//! the host's bundle, so binding a unikernel reads the same on both.

use crate::net::{self, KernelNet};
use crate::{args, console, events, random, serial_input, wall_clock};
use alloc::rc::Rc;
use alloc::string::String;
use core::cell::{Cell, RefCell};
use core::convert::Infallible;
use rand_core::{TryCryptoRng, TryRng};
use unikit_runtime::Error;
use unikit_runtime::devices::{Args, Console, Mclock, Pclock, Time, take_line};

/// Sleeping on the runtime's timer queue, driven by the one-shot alarm.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelTime;
impl Time for KernelTime {}

/// The TSC clock, nanoseconds since kernel entry.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelMclock;
impl Mclock for KernelMclock {}

/// The RTC at boot plus the TSC clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelPclock;

impl Pclock for KernelPclock {
    fn now_unix_ns(&self) -> u64 {
        wall_clock::now_unix_ns()
    }
}

/// The serial console: writes go to COM1, lines are read from the bytes
/// the IRQ4 handler received. Input the handler had to drop because the
/// ring was full is reported once per loss with a warning. With the runtime argument `console-echo=on`
/// (which the runner passes when its stdin is a terminal) typed bytes are
/// echoed, since QEMU's terminal does not echo them itself.
#[derive(Clone, Debug, Default)]
pub struct KernelConsole {
    pending: Rc<RefCell<String>>,
    dropped_reported: Rc<Cell<u64>>,
}

impl Console for KernelConsole {
    fn write(&self, text: &str) {
        console::write_str(text);
    }

    async fn read_line(&self) -> Result<Option<String>, Error> {
        let echo = args::get("console-echo") == Some("on");
        loop {
            if let Some(line) = take_line(&mut self.pending.borrow_mut()) {
                return Ok(Some(line));
            }
            let mut buffer = [0u8; 64];
            let received = serial_input::read(&mut buffer);
            if received == 0 {
                events::SERIAL_INPUT.wait().await?;
                continue;
            }
            let dropped = serial_input::dropped();
            if dropped > self.dropped_reported.replace(dropped) {
                log::warn!(target: "kernel", "serial input: {dropped} bytes dropped so far (receive ring full)");
            }
            let text = String::from_utf8_lossy(&buffer[..received]);
            if echo {
                console::write_str(&text.replace('\r', "\r\n"));
            }
            self.pending.borrow_mut().push_str(&text);
        }
    }
}

/// The kernel's ChaCha20 CSPRNG (see [`crate::random`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelRandom;

impl TryRng for KernelRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        random::fill_bytes(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        random::fill_bytes(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        random::fill_bytes(dst);
        Ok(())
    }
}

impl TryCryptoRng for KernelRandom {}

/// The runtime arguments read from fw_cfg at boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelArgs;

impl Args for KernelArgs {
    fn get(&self, key: &str) -> Option<&str> {
        args::get(key)
    }
}

/// Every device of a kernel image. The network card is not probed at
/// boot: [`Devices::net`] looks for it on first use.
#[derive(Clone, Debug, Default)]
pub struct Devices {
    /// Sleeping.
    pub time: KernelTime,
    /// The monotonic clock.
    pub mclock: KernelMclock,
    /// The wall clock.
    pub pclock: KernelPclock,
    /// The serial console.
    pub console: KernelConsole,
    /// Random numbers.
    pub random: KernelRandom,
    /// Runtime arguments.
    pub args: KernelArgs,
}

impl Devices {
    /// The network card: the first virtio-net card on PCI, started on the
    /// first call (later calls return the same card). With none, an error
    /// telling the user to boot with `--net user`.
    pub fn net(&self) -> Result<KernelNet, Error> {
        net::open()
    }
}
