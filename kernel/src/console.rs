//! The serial console: COM1, a 16550 UART at I/O port 0x3f8.
//!
//! Every byte the kernel prints goes through [`write_str`], which holds the
//! UART's lock with interrupts disabled: on one core that is enough for an
//! interrupt handler never to find the lock taken by the code it interrupted.
//!
//! The fatal paths (panic, CPU exception) cannot rely on that: they may have
//! interrupted the console's own lock holder, which will never run again.
//! [`write_fatal`] therefore tries the lock once and, if it is held, writes
//! through a second handle to the same (already initialised) UART; at worst a
//! line in progress is interleaved with the report, which is better than a
//! silent hang.

use core::fmt;
use spin::mutex::SpinMutex;
use uart_16550::backend::PioBackend;
use uart_16550::spec::registers::IER;
use uart_16550::{Config, Uart16550};
use x86_64::instructions::interrupts;

/// COM1's base I/O port.
const COM1: u16 = 0x3f8;

static UART: SpinMutex<Option<Uart16550<PioBackend>>> = SpinMutex::new(None);

/// Initialises COM1 (115200 baud, 8N1, FIFOs on). Called once at boot,
/// before the first line is printed.
pub fn init() {
    // SAFETY: 0x3f8..0x400 is COM1 on every PC and QEMU machine; the kernel
    // owns it for its whole lifetime and only this module touches it.
    let mut uart = unsafe { Uart16550::new_port(COM1) }.expect("COM1 is a valid port range");
    // A missing UART only means nothing is printed; the unikernel still runs.
    if uart.init(Config::default()).is_ok() {
        interrupts::without_interrupts(|| *UART.lock() = Some(uart));
    }
}

/// Writes `text` to the console, translating nothing: lines end in `\n`.
pub fn write_str(text: &str) {
    interrupts::without_interrupts(|| {
        if let Some(uart) = UART.lock().as_mut() {
            uart.send_bytes_exact(text.as_bytes());
        }
    });
}

/// Writes formatted text to the console; see [`write_str`].
pub fn write_fmt(args: fmt::Arguments) {
    interrupts::without_interrupts(|| {
        if let Some(uart) = UART.lock().as_mut() {
            // Writing to the UART cannot fail; a formatting error of the
            // caller's Display impl truncates the text, as `print!` does.
            let _ = fmt::Write::write_fmt(&mut UartWriter(uart), args);
        }
    });
}

/// Enables the UART's "received data available" interrupt.
pub fn enable_receive_interrupt() {
    interrupts::without_interrupts(|| {
        if let Some(uart) = UART.lock().as_mut() {
            uart.enable_interrupts(IER::DATA_READY);
        }
    });
}

/// Hands every byte waiting in the UART's receive FIFO to `sink`. Called
/// from the IRQ4 handler; the lock is never held with interrupts enabled.
pub fn drain_received(mut sink: impl FnMut(u8)) {
    interrupts::without_interrupts(|| {
        if let Some(uart) = UART.lock().as_mut() {
            while let Ok(byte) = uart.try_receive_byte() {
                sink(byte);
            }
        }
    });
}

/// Writes formatted text from a fatal path (panic handler, CPU exception
/// handler) with interrupts already disabled: never waits for the lock.
pub fn write_fatal(args: fmt::Arguments) {
    if let Some(mut guard) = UART.try_lock() {
        if let Some(uart) = guard.as_mut() {
            let _ = fmt::Write::write_fmt(&mut UartWriter(uart), args);
        }
        return;
    }
    // SAFETY: COM1 was initialised by `init` (the lock is held, so the UART
    // exists); the code holding the lock was interrupted by this fatal path
    // and will never resume, so a second handle cannot race with it.
    if let Ok(mut uart) = unsafe { Uart16550::new_port(COM1) } {
        let _ = fmt::Write::write_fmt(&mut UartWriter(&mut uart), args);
    }
}

struct UartWriter<'a>(&'a mut Uart16550<PioBackend>);

impl fmt::Write for UartWriter<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.send_bytes_exact(text.as_bytes());
        Ok(())
    }
}
