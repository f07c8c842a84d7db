//! Per-pair counters kept across restarts, in the state directory that
//! also holds the two-way pairs' archives, and like them in SQLite (WAL:
//! a committed save survives `kill -9`): `STATE_DIR/daemon.sqlite`, one
//! row per pair name. The JSON file of earlier versions
//! (`STATE_DIR/daemon-state.json`) is imported once, then left alone and
//! no longer written. The state directory is `[daemon] state`, else `$STATE_DIRECTORY` (systemd's
//! `StateDirectory=`), else `$XDG_STATE_HOME/dirsync` or
//! `~/.local/state/dirsync`, or `/var/lib/dirsync` for root.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

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

fn from_ms(v: &Value) -> Option<SystemTime> {
    v.as_u64().map(|m| UNIX_EPOCH + Duration::from_millis(m))
}

/// The counters of the old JSON file (empty when none or unreadable).
fn load_json(dir: &Path) -> HashMap<String, Counters> {
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

/// The database's name in the state directory.
pub const DB: &str = "daemon.sqlite";

fn db_err(e: rusqlite::Error) -> std::io::Error {
    std::io::Error::other(e)
}

/// Opens (creates: directory 0700, file 0600) the state database.
fn open(dir: &Path) -> std::io::Result<Connection> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = dir.join(DB);
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&path)?;
    let conn = Connection::open(&path).map_err(db_err)?;
    conn.busy_timeout(Duration::from_secs(2)).map_err(db_err)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=NORMAL;
         CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS pairs(name TEXT PRIMARY KEY,
             last_sync INT, last_success INT, bytes INT NOT NULL, files INT NOT NULL,
             errors INT NOT NULL, conflicts INT NOT NULL);",
    )
    .map_err(db_err)?;
    Ok(conn)
}

fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn time_to_db(t: Option<SystemTime>) -> Option<i64> {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| to_db(d.as_millis().min(u64::MAX as u128) as u64))
}

fn time_from_db(v: Option<i64>) -> Option<SystemTime> {
    let ms = u64::try_from(v?).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

fn write(conn: &mut Connection, pairs: &[(String, Counters)]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare(
            "INSERT OR REPLACE INTO pairs(name, last_sync, last_success, bytes, files, errors, conflicts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (name, c) in pairs {
            st.execute(params![
                name,
                time_to_db(c.last_sync),
                time_to_db(c.last_success),
                to_db(c.bytes),
                to_db(c.files),
                to_db(c.errors),
                to_db(c.conflicts),
            ])?;
        }
    }
    tx.commit()
}

fn read(conn: &mut Connection) -> rusqlite::Result<HashMap<String, Counters>> {
    let imported: Option<String> = conn
        .query_row("SELECT v FROM meta WHERE k = 'json_imported'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if imported.is_none() {
        let dir = conn
            .path()
            .and_then(|p| Path::new(p).parent())
            .map(Path::to_path_buf);
        let old: Vec<(String, Counters)> = dir
            .map(|d| load_json(&d))
            .unwrap_or_default()
            .into_iter()
            .collect();
        write(conn, &old)?;
        conn.execute(
            "INSERT OR REPLACE INTO meta(k, v) VALUES ('json_imported', '1')",
            [],
        )?;
    }
    let mut st = conn.prepare(
        "SELECT name, last_sync, last_success, bytes, files, errors, conflicts FROM pairs",
    )?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Counters {
                last_sync: time_from_db(r.get(1)?),
                last_success: time_from_db(r.get(2)?),
                bytes: n(r.get(3)?),
                files: n(r.get(4)?),
                errors: n(r.get(5)?),
                conflicts: n(r.get(6)?),
            },
        ))
    })?;
    rows.collect()
}

/// Loads the saved counters by pair name (empty when none or unreadable;
/// the old JSON file is imported on the first load).
pub fn load(dir: &Path) -> HashMap<String, Counters> {
    let Ok(mut conn) = open(dir) else {
        return load_json(dir);
    };
    read(&mut conn).unwrap_or_default()
}

/// Saves `pairs` in one transaction (the database and its directory are
/// created when missing).
pub fn save(dir: &Path, pairs: &[(String, Counters)]) -> std::io::Result<()> {
    let mut conn = open(dir)?;
    write(&mut conn, pairs).map_err(db_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_survive_and_the_json_is_imported_once() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(
            d.join("daemon-state.json"),
            r#"{"pairs":{"old":{"last_sync":1000,"last_success":null,"bytes":7,"files":2,"errors":1,"conflicts":0}}}"#,
        )
        .unwrap();
        let got = load(d);
        assert_eq!(got["old"].bytes, 7);
        assert_eq!(
            got["old"].last_sync,
            Some(UNIX_EPOCH + Duration::from_secs(1))
        );
        let c = Counters {
            bytes: u64::MAX,
            files: 3,
            ..Counters::default()
        };
        save(d, &[("new".into(), c)]).unwrap();
        // The JSON changes now: it is not read again.
        std::fs::write(
            d.join("daemon-state.json"),
            r#"{"pairs":{"late":{"bytes":1}}}"#,
        )
        .unwrap();
        let got = load(d);
        assert!(!got.contains_key("late"));
        assert_eq!(got["old"].files, 2);
        assert_eq!(got["new"].files, 3);
        assert_eq!(got["new"].bytes, i64::MAX as u64);
    }
}
