//! Test image: reads lines typed on the serial console (received on IRQ4)
//! and logs each as `line <n>: <text>`, until `quit`. It halts between
//! interrupts, so it also shows that receiving costs no polling.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use unikit_kernel::{events, serial_input};

unikit_kernel::unikernel!("test-serial-input", |_| start());

async fn start() -> Result<(), &'static str> {
    log::info!("ready");
    let mut line = String::new();
    let mut count = 0;
    let mut buffer = [0u8; 64];
    loop {
        let received = serial_input::read(&mut buffer);
        if received == 0 {
            events::wait_for_interrupt();
            events::SERIAL_INPUT.take();
            continue;
        }
        for &byte in &buffer[..received] {
            match byte {
                b'\r' | b'\n' if line.is_empty() => {}
                b'\r' | b'\n' => {
                    count += 1;
                    log::info!("line {count}: {line}");
                    if line == "quit" {
                        return Ok(());
                    }
                    line.clear();
                }
                _ => line.push(char::from(byte)),
            }
        }
    }
}
