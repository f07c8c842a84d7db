//! When a pair runs (`schedule = "every 15m" | "hourly" | "daily 02:30"`)
//! and how fast (`bwlimit = "1M"` or time windows), in local time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::transfer::bwlimit::parse_rate;

/// A pair's `schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// `every N{s,m,h}`: N after the start of the previous run.
    Every(Duration),
    /// `hourly`: at minute 0 of every hour.
    Hourly,
    /// `daily HH:MM`: once a day at that local time.
    Daily(u8, u8),
}

/// `HH:MM` (00:00 to 23:59) as minutes since midnight.
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl Schedule {
    /// Parses `every N{s,m,h}`, `hourly` or `daily HH:MM`.
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let bad = || {
            format!(
                "bad schedule {s:?}: expected \"every N\" with s, m or h (e.g. \"every 15m\"), \
                 \"hourly\" or \"daily HH:MM\""
            )
        };
        let s = s.trim();
        if s == "hourly" {
            return Ok(Schedule::Hourly);
        }
        if let Some(t) = s.strip_prefix("daily ") {
            let m = parse_hhmm(t.trim()).ok_or_else(bad)?;
            return Ok(Schedule::Daily((m / 60) as u8, (m % 60) as u8));
        }
        let n = s.strip_prefix("every ").ok_or_else(bad)?.trim();
        let unit = match n.chars().last() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            _ => return Err(bad()),
        };
        let count: u64 = n[..n.len() - 1].parse().map_err(|_| bad())?;
        // At most a year; zero would spin.
        if count == 0 || count.saturating_mul(unit) > 366 * 86400 {
            return Err(bad());
        }
        Ok(Schedule::Every(Duration::from_secs(count * unit)))
    }

    /// When the run after one that started at `last` is due.
    pub fn next_after(&self, last: SystemTime) -> SystemTime {
        match *self {
            Schedule::Every(d) => last + d,
            Schedule::Hourly => {
                let secs = unix_secs(last);
                UNIX_EPOCH + Duration::from_secs((secs / 3600 + 1) * 3600)
            }
            Schedule::Daily(h, m) => {
                let secs = unix_secs(last) as i64;
                let (day_start, _) = local_day(secs);
                let mut t = day_start + i64::from(h) * 3600 + i64::from(m) * 60;
                if t <= secs {
                    // Tomorrow, same local time (mktime handles DST).
                    t = local_day(day_start + 86400 + 7200).0
                        + i64::from(h) * 3600
                        + i64::from(m) * 60;
                }
                UNIX_EPOCH + Duration::from_secs(t.max(0) as u64)
            }
        }
    }

    /// How it is shown in `dirsync status`.
    pub fn describe(&self) -> String {
        match *self {
            Schedule::Every(d) => {
                let s = d.as_secs();
                if s % 3600 == 0 {
                    format!("every {}h", s / 3600)
                } else if s % 60 == 0 {
                    format!("every {}m", s / 60)
                } else {
                    format!("every {s}s")
                }
            }
            Schedule::Hourly => "hourly".into(),
            Schedule::Daily(h, m) => format!("daily {h:02}:{m:02}"),
        }
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The local midnight of the day holding `secs`, and the minutes since it.
fn local_day(secs: i64) -> (i64, u32) {
    // SAFETY: tm is plain data; all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t: libc::time_t = secs;
    // SAFETY: both pointers are to live locals; localtime_r only writes tm.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return (
            secs - secs.rem_euclid(86400),
            (secs.rem_euclid(86400) / 60) as u32,
        );
    }
    let minutes = (tm.tm_hour * 60 + tm.tm_min) as u32;
    tm.tm_hour = 0;
    tm.tm_min = 0;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    // SAFETY: tm is initialised (by localtime_r, then edited in range).
    let midnight = unsafe { libc::mktime(&mut tm) };
    if midnight == -1 {
        return (secs - secs.rem_euclid(86400), minutes);
    }
    (midnight, minutes)
}

/// The local time of day of `t`, in minutes since midnight.
pub fn local_minute(t: SystemTime) -> u32 {
    local_day(unix_secs(t) as i64).1
}

/// One `{ from = "08:00", to = "18:00", rate = "200K" }` of `bwlimit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Start, minutes since local midnight.
    pub from: u32,
    /// End (exclusive); before `from`: the window spans midnight.
    pub to: u32,
    /// Bytes per second (0: no limit).
    pub rate: u64,
}

/// A pair's `bwlimit`: none, one rate, or rates by time of day (no
/// limit outside every window). Applies to remote pairs (the wire).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Bwlimit {
    /// No limit.
    #[default]
    None,
    /// Always this many bytes per second.
    Rate(u64),
    /// The first window holding the time of day gives the rate.
    Windows(Vec<Window>),
}

impl Bwlimit {
    /// The rate in force at local minute `minute` (`None`: no limit).
    pub fn rate_at(&self, minute: u32) -> Option<u64> {
        let r = match self {
            Bwlimit::None => return None,
            Bwlimit::Rate(r) => *r,
            Bwlimit::Windows(ws) => {
                ws.iter()
                    .find(|w| {
                        if w.from <= w.to {
                            (w.from..w.to).contains(&minute)
                        } else {
                            minute >= w.from || minute < w.to
                        }
                    })?
                    .rate
            }
        };
        (r > 0).then_some(r)
    }

    /// How it is shown in `dirsync status` (empty: no limit).
    pub fn describe(&self) -> String {
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        match self {
            Bwlimit::None => String::new(),
            Bwlimit::Rate(r) => format!("bwlimit {r} B/s"),
            Bwlimit::Windows(ws) => {
                let parts: Vec<String> = ws
                    .iter()
                    .map(|w| format!("{}-{} {} B/s", hm(w.from), hm(w.to), w.rate))
                    .collect();
                format!("bwlimit {}", parts.join(", "))
            }
        }
    }
}

/// Parses one rate of `bwlimit` (as `--bwlimit`; 0: no limit).
pub fn rate(s: &str) -> Result<u64, String> {
    parse_rate(s)
        .map(|r| r.unwrap_or(0))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse() {
        assert_eq!(
            Schedule::parse("every 2s"),
            Ok(Schedule::Every(Duration::from_secs(2)))
        );
        assert_eq!(
            Schedule::parse("every 15m"),
            Ok(Schedule::Every(Duration::from_secs(900)))
        );
        assert_eq!(Schedule::parse("hourly"), Ok(Schedule::Hourly));
        assert_eq!(Schedule::parse("daily 02:30"), Ok(Schedule::Daily(2, 30)));
        for bad in [
            "every",
            "every 0s",
            "every 5",
            "every 5d",
            "daily 24:00",
            "daily 2:3",
            "weekly",
            "every -1s",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_runs() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            Schedule::Every(Duration::from_secs(2)).next_after(t),
            t + Duration::from_secs(2)
        );
        let h = Schedule::Hourly.next_after(t);
        assert_eq!(unix_secs(h) % 3600, 0);
        assert!(h > t && h <= t + Duration::from_secs(3600));
        let d = Schedule::Daily(2, 30).next_after(t);
        assert!(d > t && d <= t + Duration::from_secs(86400 + 3600));
        assert_eq!(local_minute(d), 150);
    }

    #[test]
    fn windows() {
        let b = Bwlimit::Windows(vec![
            Window {
                from: 8 * 60,
                to: 18 * 60,
                rate: 1000,
            },
            Window {
                from: 22 * 60,
                to: 6 * 60,
                rate: 50,
            },
        ]);
        assert_eq!(b.rate_at(9 * 60), Some(1000));
        assert_eq!(b.rate_at(18 * 60), None);
        assert_eq!(b.rate_at(23 * 60), Some(50));
        assert_eq!(b.rate_at(60), Some(50));
        assert_eq!(Bwlimit::Rate(5).rate_at(0), Some(5));
        assert_eq!(Bwlimit::None.rate_at(0), None);
    }
}
