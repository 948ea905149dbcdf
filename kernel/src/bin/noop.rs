#![no_std]
#![no_main]

use bootloader_api::{entry_point, BootInfo};

entry_point!(main);

fn main(_boot: &'static mut BootInfo) -> ! {
    loop {}
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
