//! MirageOS's speaking clock: every second, the monotonic clock's elapsed
//! nanoseconds and the wall-clock time, `count` times (runtime argument
//! `count`, default 5).

use alloc::format;
use alloc::string::String;
use unikit_runtime::Error;
use unikit_runtime::devices::{Args, Mclock, Pclock, Time};

/// Ticks when no `count=` argument is given.
pub const DEFAULT_COUNT: u32 = 5;

/// `YYYY-MM-DD HH:MM:SS.mmm UTC` for Unix nanoseconds.
pub fn format_utc(unix_ns: u64) -> String {
    let seconds = unix_ns / 1_000_000_000;
    let millis = unix_ns % 1_000_000_000 / 1_000_000;
    let days = (seconds / 86_400) as i64;
    let of_day = seconds % 86_400;
    // The civil date of a day number (proleptic Gregorian, years from March).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

/// The unikernel.
pub async fn start(
    time: impl Time,
    mclock: impl Mclock,
    pclock: impl Pclock,
    args: impl Args,
) -> Result<(), Error> {
    let count: u32 = args.get_parsed("count", DEFAULT_COUNT, "a whole number of ticks")?;
    for _ in 0..count {
        time.sleep_ns(1_000_000_000).await?;
        log::info!(
            "elapsed {} ns, wall clock {}",
            mclock.elapsed_ns(),
            format_utc(pclock.now_unix_ns())
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(
            format_utc(1_709_208_000_123_000_000),
            "2024-02-29 12:00:00.123 UTC"
        );
        assert_eq!(
            format_utc(1_795_320_000_000_000_000),
            "2026-11-22 04:00:00.000 UTC"
        );
        assert_eq!(
            format_utc(951_868_799_999_999_999),
            "2000-02-29 23:59:59.999 UTC"
        );
    }
}
