//! Calendar time in UTC, written by hand (no date crate needed for UTC):
//! RFC 3339 for the daemon's JSON, logs and page, and the compact
//! `YYYYMMDD-HHMMSS` stamp of two-way conflict copies.

use std::time::{SystemTime, UNIX_EPOCH};

/// The latest second RFC 3339's four-digit year can write
/// (9999-12-31T23:59:59Z).
const MAX_SECS: u64 = 253_402_300_799;

/// A time broken down in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// Year (1970 to 9999).
    pub year: u64,
    /// Month, 1 to 12.
    pub month: u64,
    /// Day of the month, 1 to 31.
    pub day: u64,
    /// Hour, 0 to 23.
    pub hour: u64,
    /// Minute, 0 to 59.
    pub minute: u64,
    /// Second, 0 to 59.
    pub second: u64,
    /// Milliseconds, 0 to 999.
    pub millis: u32,
}

impl Utc {
    /// `t` in UTC. Times before 1970 are taken as the epoch and times
    /// after 9999 as its last millisecond (a file's mtime can be anything;
    /// what is written from it must stay a valid timestamp).
    pub fn of(t: SystemTime) -> Utc {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let (secs, millis) = if d.as_secs() > MAX_SECS {
            (MAX_SECS, 999)
        } else {
            (d.as_secs(), d.subsec_millis())
        };
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        Utc {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            millis,
        }
    }
}

/// `t` as RFC 3339 in UTC with milliseconds, e.g.
/// `2026-12-07T22:39:58.000Z` (see [`Utc::of`] for the range).
pub fn rfc3339(t: SystemTime) -> String {
    let u = Utc::of(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        u.year, u.month, u.day, u.hour, u.minute, u.second, u.millis
    )
}

/// `t` as the compact UTC stamp `YYYYMMDD-HHMMSS`.
pub fn stamp(t: SystemTime) -> String {
    let u = Utc::of(t);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

/// The proleptic Gregorian date of `days` after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn known_dates() {
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        // `date -u -d @951782400`: the leap day of a century leap year.
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59.000Z");
        assert_eq!(at(1_796_683_198), "2026-12-07T22:39:58.000Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00.000Z");
        assert_eq!(at(u64::MAX / 4), "9999-12-31T23:59:59.999Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_250);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.250Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn stamps() {
        let at = |s| stamp(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "19700101-000000");
        assert_eq!(at(1_796_638_500), "20261207-101500");
        assert_eq!(at(951_782_400), "20000229-000000");
    }

    #[test]
    fn every_day_for_four_centuries_matches_a_day_count() {
        // Walk forward day by day from 1970 and check each date is the
        // successor of the previous one (month lengths, leap rules).
        let mut prev = (1970, 1, 1);
        for day in 1..146_097u64 {
            let (y, m, d) = civil_from_days(day);
            let leap = (prev.0 % 4 == 0 && prev.0 % 100 != 0) || prev.0 % 400 == 0;
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ][prev.1 as usize - 1];
            let want = if prev.2 < len {
                (prev.0, prev.1, prev.2 + 1)
            } else if prev.1 < 12 {
                (prev.0, prev.1 + 1, 1)
            } else {
                (prev.0 + 1, 1, 1)
            };
            assert_eq!((y, m, d), want, "day {day}");
            prev = want;
        }
    }
}
