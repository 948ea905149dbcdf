//! The 8254 programmable interval timer: a reference clock (channel 2) and
//! the last-resort one-shot alarm (channel 0, IRQ0).
//!
//! Channel 2 is the one channel whose gate software controls (bit 0 of port
//! 0x61) and whose output it can read back (bit 5 of port 0x61), without an
//! interrupt. Programmed in mode 0 ("interrupt on terminal count") it counts
//! down from a chosen value at 1.193182 MHz and raises its output when it
//! reaches zero: a busy-wait of known length, which is what calibrating
//! another clock needs.

use x86_64::instructions::port::Port;

/// The PIT's input clock in Hz.
pub const FREQUENCY_HZ: u64 = 1_193_182;

const CHANNEL0_DATA: u16 = 0x40;
const CHANNEL2_DATA: u16 = 0x42;
const COMMAND: u16 = 0x43;
const SPEAKER_CONTROL: u16 = 0x61;
/// Port 0x61: gate of channel 2.
const GATE2: u8 = 1 << 0;
/// Port 0x61: speaker data enable (kept off: the wait must be silent).
const SPEAKER_ON: u8 = 1 << 1;
/// Port 0x61: output of channel 2.
const OUT2: u8 = 1 << 5;
/// Command: channel 2, low then high byte, mode 0, binary.
const CHANNEL2_MODE0: u8 = 0b1011_0000;
/// Command: channel 0, low then high byte, mode 0, binary.
const CHANNEL0_MODE0: u8 = 0b0011_0000;

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

/// The number of PIT ticks in `micros` microseconds, clamped to the 16-bit
/// counter (at most about 54.9 ms).
pub fn ticks_for_micros(micros: u32) -> u16 {
    let ticks = (u64::from(micros) * FREQUENCY_HZ).div_ceil(1_000_000);
    ticks.clamp(1, u64::from(u16::MAX)) as u16
}

/// Busy-waits `ticks` PIT ticks on channel 2 and returns what `probe` read
/// right after the countdown started and right after it ended, so a caller
/// can measure another clock over exactly that interval.
///
/// The caller must own the PIT (no other code programs channel 2) and should
/// run with interrupts disabled so that the two probes bracket the wait
/// tightly.
pub fn measure<T>(ticks: u16, mut probe: impl FnMut() -> T) -> (T, T) {
    let mut control: Port<u8> = Port::new(SPEAKER_CONTROL);
    let mut command: Port<u8> = Port::new(COMMAND);
    let mut data: Port<u8> = Port::new(CHANNEL2_DATA);
    let [low, high] = ticks.to_le_bytes();
    // SAFETY: ports 0x42, 0x43 and 0x61 belong to the PIT and the speaker
    // control on every PC; the caller guarantees nobody else programs
    // channel 2, and the speaker stays off.
    unsafe {
        let saved = control.read();
        control.write((saved & !SPEAKER_ON) & !GATE2);
        command.write(CHANNEL2_MODE0);
        data.write(low);
        data.write(high);
        control.write((saved & !SPEAKER_ON) | GATE2);
        let start = probe();
        while control.read() & OUT2 == 0 {
            core::hint::spin_loop();
        }
        let end = probe();
        control.write(saved);
        (start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_for_ten_milliseconds_match_the_pit_rate() {
        assert_eq!(ticks_for_micros(10_000), 11_932);
    }

    #[test]
    fn one_shot_ticks_round_up_and_clamp() {
        assert_eq!(ticks_for_nanos(1_000_000), 1194);
        assert_eq!(ticks_for_nanos(0), 1);
        assert_eq!(ticks_for_nanos(54_900_000), 65_506);
        assert_eq!(ticks_for_nanos(55_000_000), u16::MAX);
    }

    #[test]
    fn ticks_are_clamped_to_the_sixteen_bit_counter() {
        assert_eq!(ticks_for_micros(1_000_000), u16::MAX);
        assert_eq!(ticks_for_micros(0), 1);
    }
}
