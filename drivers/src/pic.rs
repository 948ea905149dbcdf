//! The legacy 8259 PIC pair, which the kernel does not use.
//!
//! With the APIC in charge the 8259s must still be remapped away from the
//! CPU exception vectors (their power-on vectors 8-15 collide with double
//! fault and friends, and a spurious IRQ7 would arrive as one) and then
//! masked entirely.

use x86_64::instructions::port::Port;

const MASTER_COMMAND: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_COMMAND: u16 = 0xa0;
const SLAVE_DATA: u16 = 0xa1;
/// ICW1: initialise, ICW4 follows.
const ICW1_INIT: u8 = 0x11;
/// ICW4: 8086 mode.
const ICW4_8086: u8 = 0x01;

/// Remaps the PICs to vectors `base..base + 16` and masks every line.
pub fn remap_and_mask(base: u8) {
    let mut master_command: Port<u8> = Port::new(MASTER_COMMAND);
    let mut master_data: Port<u8> = Port::new(MASTER_DATA);
    let mut slave_command: Port<u8> = Port::new(SLAVE_COMMAND);
    let mut slave_data: Port<u8> = Port::new(SLAVE_DATA);
    // SAFETY: these are the 8259 ports on every PC; the initialisation
    // sequence (ICW1-ICW4) and the masks affect only the PICs, which no
    // other code uses.
    unsafe {
        master_command.write(ICW1_INIT);
        slave_command.write(ICW1_INIT);
        master_data.write(base);
        slave_data.write(base + 8);
        master_data.write(4); // the slave hangs off IRQ2
        slave_data.write(2); // its cascade identity
        master_data.write(ICW4_8086);
        slave_data.write(ICW4_8086);
        master_data.write(0xff);
        slave_data.write(0xff);
    }
}
