//! The JSON of `dirsync status --json` and `GET /api/pairs`:
//! `{"pairs":[{"name","mode","state","error","last_sync","last_success",
//! "lag_ms","queue","conflicts","bytes","files"}]}`, times RFC 3339 (UTC)
//! or null. Shared by the control socket and the HTTP API.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::api::PairStatus;

pub use crate::utc::rfc3339;

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
