//! The archive: the last synced state of every path of a pair, in SQLite
//! (WAL mode), locked for the whole run.
//!
//! One table `e`, `WITHOUT ROWID`, keyed by the path bytes: type, size,
//! mtime (ns), mode, the inode on A and on B, the symlink target. A table
//! `meta` keeps the roots' devices. A path is written only once its
//! propagation completed, in transactions of at most [`BATCH`] changes:
//! a `kill -9` at any instant leaves the last committed transaction, a
//! state that really existed. The lock is `flock(LOCK_EX | LOCK_NB)` on
//! the database file itself (independent of SQLite's own `fcntl` locks):
//! a second run on the same pair stops at once.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags};

use super::error::Error;
use super::reconcile::{State, Type};

/// Changes per transaction.
pub const BATCH: usize = 512;

/// One archived path: its state (with A's inode) and B's inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The state, `ino` being A's inode.
    pub state: State,
    /// B's inode.
    pub ino_b: u64,
}

/// Every record, by path bytes.
pub type Records = BTreeMap<Vec<u8>, Record>;

/// An open, locked archive (or, in a dry run without one, nothing).
pub struct Archive {
    conn: Option<Connection>,
    path: PathBuf,
    pending: usize,
    _lock: Option<File>,
}

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Archive {
        path: path.to_path_buf(),
        source: e,
    }
}

fn type_code(t: Type) -> i64 {
    match t {
        Type::File => 0,
        Type::Dir => 1,
        Type::Symlink => 2,
    }
}

fn code_type(c: i64) -> Option<Type> {
    match c {
        0 => Some(Type::File),
        1 => Some(Type::Dir),
        2 => Some(Type::Symlink),
        _ => None,
    }
}

impl Archive {
    /// Opens (creating it unless `dry_run`) and locks the archive at
    /// `path`. In a dry run nothing is written: an existing archive is
    /// read as it is (`immutable`), a missing one is empty.
    pub fn open(path: &Path, dry_run: bool) -> Result<Archive, Error> {
        let exists = path.exists();
        if dry_run {
            if !exists {
                return Ok(Archive {
                    conn: None,
                    path: path.to_path_buf(),
                    pending: 0,
                    _lock: None,
                });
            }
            let lock = File::open(path).map_err(|e| Error::at("cannot open", path, e))?;
            lock_file(&lock, path, false)?;
            let mut uri = b"file:".to_vec();
            for &c in path.as_os_str().as_bytes() {
                match c {
                    b'%' | b'?' | b'#' => uri.extend(format!("%{c:02X}").bytes()),
                    c => uri.push(c),
                }
            }
            uri.extend(b"?immutable=1");
            let uri = String::from_utf8(uri).map_err(|_| Error::Guard {
                message: "a dry run needs a UTF-8 --state path".into(),
            })?;
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
            let conn = Connection::open_with_flags(uri, flags).map_err(|e| db_err(path, e))?;
            return Ok(Archive {
                conn: Some(conn),
                path: path.to_path_buf(),
                pending: 0,
                _lock: Some(lock),
            });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::at("cannot create", dir, e))?;
        }
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| Error::at("cannot open", path, e))?;
        lock_file(&lock, path, true)?;
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS e(p BLOB PRIMARY KEY, k INT NOT NULL, sz INT NOT NULL,
                 mt INT NOT NULL, pm INT NOT NULL, ia INT NOT NULL, ib INT NOT NULL,
                 t BLOB, at INT NOT NULL DEFAULT 0) WITHOUT ROWID;",
        )
        .map_err(|e| db_err(path, e))?;
        // An archive written before the attribute digest (`at`) existed:
        // the column is added, 0 ("none selected") for every path.
        let has_at = conn
            .prepare("SELECT 1 FROM pragma_table_info('e') WHERE name = 'at'")
            .and_then(|mut st| st.exists([]))
            .map_err(|e| db_err(path, e))?;
        if !has_at {
            conn.execute_batch("ALTER TABLE e ADD COLUMN at INT NOT NULL DEFAULT 0;")
                .map_err(|e| db_err(path, e))?;
        }
        Ok(Archive {
            conn: Some(conn),
            path: path.to_path_buf(),
            pending: 0,
            _lock: Some(lock),
        })
    }

    /// Every record. A malformed row (a type code or path this version
    /// does not know) is an error: the archive is not ours to guess at.
    pub fn load(&self) -> Result<Records, Error> {
        let mut out: Vec<(Vec<u8>, Record)> = Vec::new();
        self.load_where("", &[], &mut out)?;
        // Rows come in key order (memcmp, as Vec<u8>'s): bulk-loaded.
        Ok(out.into_iter().collect())
    }

    /// The records at or below each of `paths` and of their ancestors
    /// (what a pass over those paths needs, see [`super::scope`]): one
    /// range query per path (keys compare as bytes: `P/` to `P0` is what
    /// is below `P`), not a load of the whole archive.
    pub fn load_scope(&self, paths: &[Vec<u8>]) -> Result<Records, Error> {
        let mut out: Vec<(Vec<u8>, Record)> = Vec::new();
        for p in paths {
            let (mut lo, mut hi) = (p.clone(), p.clone());
            lo.push(b'/');
            hi.push(b'/' + 1);
            let w = "WHERE p = ?1 OR (p >= ?2 AND p < ?3)";
            self.load_where(w, &[p, &lo, &hi], &mut out)?;
            for (i, &c) in p.iter().enumerate() {
                if c == b'/' {
                    self.load_where("WHERE p = ?1", &[&&p[..i]], &mut out)?;
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Whether some archived path has inode `ino` on A (`on_b`: on B).
    pub fn has_inode(&self, ino: u64, on_b: bool) -> Result<bool, Error> {
        let Some(conn) = &self.conn else {
            return Ok(false);
        };
        let sql = if on_b {
            "SELECT 1 FROM e WHERE ib = ?1 LIMIT 1"
        } else {
            "SELECT 1 FROM e WHERE ia = ?1 LIMIT 1"
        };
        let mut st = conn
            .prepare_cached(sql)
            .map_err(|e| db_err(&self.path, e))?;
        st.exists([ino as i64]).map_err(|e| db_err(&self.path, e))
    }

    /// How many paths the archive holds.
    pub fn count(&self) -> Result<usize, Error> {
        let Some(conn) = &self.conn else {
            return Ok(0);
        };
        conn.query_row("SELECT count(*) FROM e", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(|e| db_err(&self.path, e))
    }

    /// Appends the records `clause` (a `WHERE`, or nothing) selects.
    fn load_where(
        &self,
        clause: &str,
        args: &[&dyn rusqlite::ToSql],
        out: &mut Vec<(Vec<u8>, Record)>,
    ) -> Result<(), Error> {
        let Some(conn) = &self.conn else {
            return Ok(());
        };
        let err = |e| db_err(&self.path, e);
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT p, k, sz, mt, pm, ia, ib, t, at FROM e {clause}"
            ))
            .map_err(err)?;
        let mut rows = st.query(args).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let p: Vec<u8> = r.get(0).map_err(err)?;
            let k: i64 = r.get(1).map_err(err)?;
            let kind = code_type(k).ok_or_else(|| Error::Guard {
                message: format!(
                    "{}: unknown entry type {k} in the archive",
                    self.path.display()
                ),
            })?;
            let t: Option<Vec<u8>> = r.get(7).map_err(err)?;
            let state = State {
                kind,
                size: r.get::<_, i64>(2).map_err(err)? as u64,
                mtime: r.get(3).map_err(err)?,
                perm: r.get::<_, i64>(4).map_err(err)? as u32 & 0o7777,
                ino: r.get::<_, i64>(5).map_err(err)? as u64,
                target: t.unwrap_or_default(),
                attrs: r.get::<_, i64>(8).map_err(err)? as u64,
                ctime: 0,
            };
            let ino_b = r.get::<_, i64>(6).map_err(err)? as u64;
            out.push((p, Record { state, ino_b }));
        }
        Ok(())
    }

    /// A value of the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let Some(conn) = &self.conn else {
            return Ok(None);
        };
        let mut st = conn
            .prepare_cached("SELECT v FROM meta WHERE k = ?1")
            .map_err(|e| db_err(&self.path, e))?;
        let mut rows = st.query([key]).map_err(|e| db_err(&self.path, e))?;
        match rows.next().map_err(|e| db_err(&self.path, e))? {
            Some(r) => Ok(Some(r.get(0).map_err(|e| db_err(&self.path, e))?)),
            None => Ok(None),
        }
    }

    fn begin(&mut self) -> Result<Option<&Connection>, Error> {
        let Some(conn) = &self.conn else {
            return Ok(None);
        };
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
            return Ok(None);
        }
        if self.pending == 0 {
            conn.execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| db_err(&self.path, e))?;
        }
        self.pending += 1;
        Ok(self.conn.as_ref())
    }

    fn after_change(&mut self) -> Result<(), Error> {
        if self.pending >= BATCH {
            self.commit()?;
        }
        Ok(())
    }

    /// Sets a value of the `meta` table.
    pub fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), Error> {
        let path = self.path.clone();
        if let Some(conn) = self.begin()? {
            conn.prepare_cached("INSERT OR REPLACE INTO meta(k, v) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![key, value]))
                .map_err(|e| db_err(&path, e))?;
        }
        self.after_change()
    }

    /// Records `path` as synced in state `rec`.
    pub fn put(&mut self, path: &[u8], rec: &Record) -> Result<(), Error> {
        let p = self.path.clone();
        if let Some(conn) = self.begin()? {
            let s = &rec.state;
            let t = (s.kind == Type::Symlink).then_some(&s.target[..]);
            conn.prepare_cached(
                "INSERT OR REPLACE INTO e(p, k, sz, mt, pm, ia, ib, t, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    path,
                    type_code(s.kind),
                    s.size as i64,
                    s.mtime,
                    i64::from(s.perm),
                    s.ino as i64,
                    rec.ino_b as i64,
                    t,
                    s.attrs as i64
                ])
            })
            .map_err(|e| db_err(&p, e))?;
        }
        self.after_change()
    }

    /// Forgets `path` (gone on both sides).
    pub fn remove(&mut self, path: &[u8]) -> Result<(), Error> {
        let p = self.path.clone();
        if let Some(conn) = self.begin()? {
            conn.prepare_cached("DELETE FROM e WHERE p = ?1")
                .and_then(|mut st| st.execute(params![path]))
                .map_err(|e| db_err(&p, e))?;
        }
        self.after_change()
    }

    /// Commits what is pending.
    pub fn commit(&mut self) -> Result<(), Error> {
        if self.pending == 0 {
            return Ok(());
        }
        self.pending = 0;
        if let Some(conn) = &self.conn {
            conn.execute_batch("COMMIT")
                .map_err(|e| db_err(&self.path, e))?;
        }
        Ok(())
    }
}

fn lock_file(f: &File, path: &Path, exclusive: bool) -> Result<(), Error> {
    use rustix::fs::{flock, FlockOperation};
    let op = if exclusive {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    match flock(f, op) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::Locked {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(Error::at("cannot lock", path, e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u64) -> Record {
        Record {
            state: State {
                kind: Type::Symlink,
                size: 3,
                mtime: -5,
                perm: 0,
                ino: n,
                target: b"t\xff\n".to_vec(),
                attrs: 0,
                ctime: 0,
            },
            ino_b: u64::MAX,
        }
    }

    #[test]
    fn records_round_trip_and_lock_excludes_a_second_run() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s/a.db");
        let mut a = Archive::open(&db, false).unwrap();
        for i in 0..(BATCH as u64 * 2 + 3) {
            a.put(format!("p{i}\x01\u{e9}").as_bytes(), &rec(i))
                .unwrap();
        }
        a.put(b"bad\xffname", &rec(7)).unwrap();
        a.remove(b"p0\x01\xc3\xa9").unwrap();
        a.set_meta("dev_a", b"1:2").unwrap();
        assert!(matches!(
            Archive::open(&db, false),
            Err(Error::Locked { .. })
        ));
        a.commit().unwrap();
        let all = a.load().unwrap();
        assert_eq!(all.len(), BATCH * 2 + 3);
        assert_eq!(all[&b"bad\xffname"[..]], rec(7));
        drop(a);
        let ro = Archive::open(&db, true).unwrap();
        assert_eq!(ro.load().unwrap().len(), BATCH * 2 + 3);
        assert_eq!(ro.meta("dev_a").unwrap().as_deref(), Some(&b"1:2"[..]));
    }

    #[test]
    fn a_scoped_load_is_the_scope_of_the_whole_load() {
        let d = tempfile::tempdir().unwrap();
        let mut a = Archive::open(&d.path().join("s.db"), false).unwrap();
        let keys = [
            "x", "x/y", "x/y/z", "x/y/z/w", "x/y0", "x/y.txt", "x/yz", "x/w", "w", "y",
        ];
        for (i, k) in keys.iter().enumerate() {
            a.put(k.as_bytes(), &rec(i as u64)).unwrap();
        }
        a.commit().unwrap();
        let scope = vec![b"x/y".to_vec(), b"y".to_vec()];
        let want: Records = a
            .load()
            .unwrap()
            .into_iter()
            .filter(|(k, _)| super::super::scope::in_scope(k, &scope))
            .collect();
        let got = a.load_scope(&scope).unwrap();
        let names: Vec<_> = got
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        assert_eq!(names, ["x", "x/y", "x/y/z", "x/y/z/w", "y"]);
        assert_eq!(got, want);
        assert_eq!(a.count().unwrap(), keys.len());
    }

    #[test]
    fn dry_run_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x/a.db");
        let mut a = Archive::open(&db, true).unwrap();
        a.put(b"p", &rec(1)).unwrap();
        a.commit().unwrap();
        assert!(a.load().unwrap().is_empty());
        assert!(!dir.path().join("x").exists());
    }
}
