//! The CMOS real-time clock: the wall-clock time at boot.
//!
//! The RTC keeps the date in CMOS registers behind ports 0x70 (index) and
//! 0x71 (data), in BCD or binary and in 12- or 24-hour form as status
//! register B says. A read can straddle the once-a-second update, so the
//! driver waits for "update in progress" to clear and reads until two
//! consecutive readings agree. QEMU's RTC runs on UTC by default.

use x86_64::instructions::port::Port;

const INDEX_PORT: u16 = 0x70;
const DATA_PORT: u16 = 0x71;
const SECONDS: u8 = 0x00;
const MINUTES: u8 = 0x02;
const HOURS: u8 = 0x04;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const CENTURY: u8 = 0x32;
const STATUS_A: u8 = 0x0a;
const STATUS_B: u8 = 0x0b;
const UPDATE_IN_PROGRESS: u8 = 1 << 7;
const BINARY_MODE: u8 = 1 << 2;
const TWENTY_FOUR_HOUR: u8 = 1 << 1;
const PM: u8 = 1 << 7;

/// A calendar date and time, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Full year, e.g. 2026.
    pub year: u32,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    /// 0-23.
    pub hour: u32,
    /// 0-59.
    pub minute: u32,
    /// 0-59.
    pub second: u32,
}

/// The raw registers of one reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawReading {
    /// Seconds, minutes, hours, day, month, year, century, status B.
    pub registers: [u8; 8],
}

fn read_register(register: u8) -> u8 {
    let mut index: Port<u8> = Port::new(INDEX_PORT);
    let mut data: Port<u8> = Port::new(DATA_PORT);
    // SAFETY: 0x70/0x71 are the CMOS index and data ports; selecting a
    // register (NMI left enabled: bit 7 clear) and reading it has no effect
    // on anything else.
    unsafe {
        index.write(register);
        data.read()
    }
}

fn reading() -> RawReading {
    while read_register(STATUS_A) & UPDATE_IN_PROGRESS != 0 {
        core::hint::spin_loop();
    }
    RawReading {
        registers: [
            read_register(SECONDS),
            read_register(MINUTES),
            read_register(HOURS),
            read_register(DAY),
            read_register(MONTH),
            read_register(YEAR),
            read_register(CENTURY),
            read_register(STATUS_B),
        ],
    }
}

/// Reads the RTC (two agreeing readings).
pub fn read() -> DateTime {
    let mut last = reading();
    loop {
        let next = reading();
        if next == last {
            return decode(next);
        }
        last = next;
    }
}

fn from_bcd(value: u8) -> u32 {
    u32::from(value & 0x0f) + u32::from(value >> 4) * 10
}

/// Decodes a reading's BCD/binary and 12/24-hour forms.
pub fn decode(raw: RawReading) -> DateTime {
    let [second, minute, hour, day, month, year, century, status_b] = raw.registers;
    let binary = status_b & BINARY_MODE != 0;
    let number = |value: u8| {
        if binary {
            u32::from(value)
        } else {
            from_bcd(value)
        }
    };
    let pm = hour & PM != 0;
    let mut hour = number(hour & !PM);
    if status_b & TWENTY_FOUR_HOUR == 0 {
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let century = match number(century) {
        19..=99 => number(century),
        _ => 20,
    };
    DateTime {
        year: century * 100 + number(year),
        month: number(month),
        day: number(day),
        hour,
        minute: number(minute),
        second: number(second),
    }
}

impl DateTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix_seconds(&self) -> u64 {
        // Days from the civil date (proleptic Gregorian), counting years
        // from March so the leap day is the last day of the year.
        let year = i64::from(self.year) - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month = i64::from(self.month);
        let day_of_year =
            (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + day_of_era - 719_468;
        (days * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    #[test]
    fn bcd_twenty_four_hour_reading_decodes() {
        let raw = RawReading {
            registers: [0x59, 0x34, 0x23, 0x22, 0x11, 0x26, 0x20, TWENTY_FOUR_HOUR],
        };
        assert_eq!(decode(raw), date(2026, 11, 22, 23, 34, 59));
    }

    #[test]
    fn binary_twelve_hour_reading_decodes_pm_and_midnight() {
        let pm = RawReading {
            registers: [5, 6, PM | 7, 29, 2, 24, 20, BINARY_MODE],
        };
        assert_eq!(decode(pm), date(2024, 2, 29, 19, 6, 5));
        let midnight = RawReading {
            registers: [0, 0, 12, 1, 1, 25, 20, BINARY_MODE],
        };
        assert_eq!(decode(midnight).hour, 0);
    }

    #[test]
    fn unix_seconds_match_known_dates() {
        assert_eq!(date(1970, 1, 1, 0, 0, 0).unix_seconds(), 0);
        assert_eq!(date(2000, 3, 1, 0, 0, 0).unix_seconds(), 951_868_800);
        assert_eq!(date(2024, 2, 29, 12, 0, 0).unix_seconds(), 1_709_208_000);
        assert_eq!(date(2026, 11, 22, 4, 0, 0).unix_seconds(), 1_795_320_000);
    }
}
