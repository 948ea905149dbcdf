//! The 8254 programmable interval timer: a reference clock (channel 2) and
//! the last-resort one-shot alarm (channel 0, IRQ0).
//!
//! As a reference clock, channel 2 (the one channel whose gate software
//! controls, through bit 0 of port 0x61) counts down from 0xffff at
//! 1.193182 MHz in mode 0, and its current count is read with a latch
//! command, so a caller can read it together with another clock at any
//! moment ([`start_countdown`], [`read_countdown`]). The count wraps after
//! about 54.9 ms; the channel's output (bit 5 of port 0x61) rises when it
//! first reaches zero and stays up, which tells a wrapped count apart
//! ([`countdown_wrapped`]).

use x86_64::instructions::port::Port;

/// The PIT's input clock in Hz.
pub const FREQUENCY_HZ: u64 = 1_193_182;

const CHANNEL0_DATA: u16 = 0x40;
const CHANNEL2_DATA: u16 = 0x42;
const COMMAND: u16 = 0x43;
const SPEAKER_CONTROL: u16 = 0x61;
/// Port 0x61: gate of channel 2.
const GATE2: u8 = 1 << 0;
/// Port 0x61: speaker data enable (kept off: the countdown must be silent).
const SPEAKER_ON: u8 = 1 << 1;
/// Port 0x61: output of channel 2.
const OUT2: u8 = 1 << 5;
/// Command: channel 2, low then high byte, mode 0, binary.
const CHANNEL2_MODE0: u8 = 0b1011_0000;
/// Command: latch channel 2's count.
const CHANNEL2_LATCH: u8 = 0b1000_0000;
/// Command: channel 0, low then high byte, mode 0, binary.
const CHANNEL0_MODE0: u8 = 0b0011_0000;

/// Starts channel 2 counting down from 0xffff (restarting it if running).
/// The caller must own channel 2: no other code programs it.
pub fn start_countdown() {
    let mut control: Port<u8> = Port::new(SPEAKER_CONTROL);
    let mut command: Port<u8> = Port::new(COMMAND);
    let mut data: Port<u8> = Port::new(CHANNEL2_DATA);
    // SAFETY: ports 0x42, 0x43 and 0x61 belong to the PIT and the speaker
    // control on every PC; the caller owns channel 2, and the speaker stays
    // off. Lowering the gate, programming, then raising it restarts the count.
    unsafe {
        let saved = control.read() & !SPEAKER_ON;
        control.write(saved & !GATE2);
        command.write(CHANNEL2_MODE0);
        data.write(0xff);
        data.write(0xff);
        control.write(saved | GATE2);
    }
}

/// Channel 2's current count.
pub fn read_countdown() -> u16 {
    let mut command: Port<u8> = Port::new(COMMAND);
    let mut data: Port<u8> = Port::new(CHANNEL2_DATA);
    // SAFETY: latching and reading channel 2's count has no side effect
    // beyond the read itself.
    unsafe {
        command.write(CHANNEL2_LATCH);
        let low = data.read();
        let high = data.read();
        u16::from_le_bytes([low, high])
    }
}

/// Whether channel 2's count has reached zero since [`start_countdown`]
/// (so a later count has wrapped).
pub fn countdown_wrapped() -> bool {
    let mut control: Port<u8> = Port::new(SPEAKER_CONTROL);
    // SAFETY: reading port 0x61 has no side effects.
    unsafe { control.read() & OUT2 != 0 }
}

/// Starts channel 0 counting down `ticks`; when it reaches zero its output
/// rises and raises IRQ0 once (mode 0). Reprogramming restarts the count.
/// The 16-bit counter times at most about 54.9 ms.
pub fn start_one_shot(ticks: u16) {
    let mut command: Port<u8> = Port::new(COMMAND);
    let mut data: Port<u8> = Port::new(CHANNEL0_DATA);
    let [low, high] = ticks.to_le_bytes();
    // SAFETY: ports 0x40 and 0x43 program the PIT's channel 0, which only
    // the kernel's alarm uses.
    unsafe {
        command.write(CHANNEL0_MODE0);
        data.write(low);
        data.write(high);
    }
}

/// PIT ticks for `nanos`, clamped to 1..=u16::MAX.
pub fn ticks_for_nanos(nanos: u64) -> u16 {
    let ticks = (u128::from(nanos) * u128::from(FREQUENCY_HZ)).div_ceil(1_000_000_000);
    ticks.clamp(1, u128::from(u16::MAX)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_ticks_round_up_and_clamp() {
        assert_eq!(ticks_for_nanos(1_000_000), 1194);
        assert_eq!(ticks_for_nanos(0), 1);
        assert_eq!(ticks_for_nanos(54_900_000), 65_506);
        assert_eq!(ticks_for_nanos(55_000_000), u16::MAX);
    }
}
