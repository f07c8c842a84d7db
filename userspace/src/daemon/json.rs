//! The JSON of `dirsync status --json` and `GET /api/pairs`:
//! `{"pairs":[{"name","mode","state","error","last_sync","last_success",
//! "lag_ms","queue","conflicts","bytes","files"}]}`, times RFC 3339 (UTC)
//! or null. Shared by the control socket and the HTTP API.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::api::PairStatus;

/// `t` as RFC 3339 in UTC with milliseconds: `2026-12-07T22:39:58.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn time(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// One pair's object (the pinned fields, then `errors` and `schedule`).
pub fn pair(p: &PairStatus) -> Value {
    json!({
        "name": p.name,
        "mode": p.mode.as_str(),
        "state": p.state.as_str(),
        "error": p.error,
        "last_sync": time(p.last_sync),
        "last_success": time(p.last_success),
        "lag_ms": p.lag_ms,
        "queue": p.queue,
        "conflicts": p.conflicts,
        "bytes": p.bytes,
        "files": p.files,
        "errors": p.errors,
        "schedule": p.schedule,
    })
}

/// `{"pairs":[...]}`.
pub fn pairs(ps: &[PairStatus]) -> Value {
    json!({ "pairs": ps.iter().map(pair).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_250); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.250Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_683_198);
        assert_eq!(rfc3339(t), "2026-12-07T22:39:58.000Z");
    }
}
