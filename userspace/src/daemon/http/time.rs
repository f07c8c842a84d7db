//! Unix seconds for the metrics (RFC 3339 is [`crate::utc`]).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (negative before it), with the
/// fraction.
pub fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}
