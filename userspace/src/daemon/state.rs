//! Per-pair counters kept across restarts: one JSON file
//! (`STATE_DIR/daemon-state.json`, written to a temporary name and
//! renamed, so a crash leaves the old or the new one). The state
//! directory is `[daemon] state`, else `$STATE_DIRECTORY` (systemd's
//! `StateDirectory=`), else `$XDG_STATE_HOME/dirsync` or
//! `~/.local/state/dirsync`, or `/var/lib/dirsync` for root.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::track::Counters;

/// The largest state file read (a bigger one is ignored).
const MAX_STATE: u64 = 16 << 20;

/// The default state directory (see the module docs).
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may list several, separated by ':'.
        let first = d
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/dirsync");
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("dirsync");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".local/state/dirsync")
}

fn ms(t: Option<SystemTime>) -> Value {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(Value::Null, |d| json!(d.as_millis() as u64))
}

fn from_ms(v: &Value) -> Option<SystemTime> {
    v.as_u64().map(|m| UNIX_EPOCH + Duration::from_millis(m))
}

/// Loads the saved counters by pair name (empty when none or unreadable).
pub fn load(dir: &Path) -> HashMap<String, Counters> {
    let mut out = HashMap::new();
    let Ok(f) = std::fs::File::open(dir.join("daemon-state.json")) else {
        return out;
    };
    let mut text = String::new();
    if f.take(MAX_STATE + 1).read_to_string(&mut text).is_err() || text.len() as u64 > MAX_STATE {
        return out;
    }
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return out;
    };
    let Some(pairs) = v.get("pairs").and_then(Value::as_object) else {
        return out;
    };
    for (name, p) in pairs {
        let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
        out.insert(
            name.clone(),
            Counters {
                last_sync: p.get("last_sync").and_then(from_ms),
                last_success: p.get("last_success").and_then(from_ms),
                bytes: n("bytes"),
                files: n("files"),
                errors: n("errors"),
                conflicts: n("conflicts"),
            },
        );
    }
    out
}

/// Saves `pairs` (created 0700 when missing).
pub fn save(dir: &Path, pairs: &[(String, Counters)]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut map = serde_json::Map::new();
    for (name, c) in pairs {
        map.insert(
            name.clone(),
            json!({
                "last_sync": ms(c.last_sync),
                "last_success": ms(c.last_success),
                "bytes": c.bytes,
                "files": c.files,
                "errors": c.errors,
                "conflicts": c.conflicts,
            }),
        );
    }
    let text = serde_json::to_string(&json!({ "pairs": map }))?;
    let tmp = dir.join(format!(".daemon-state.json.{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join("daemon-state.json"))
}
