//! Shared by the daemon_http* tests: a fake daemon (a `Control` that
//! records what it is asked) and a raw HTTP client that sends exactly the
//! bytes a test gives it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dirsync::daemon::api::{
    Action, ActionError, Conflict, Control, Mode, PairState, PairStatus, Watches,
};

/// 2026-12-07T22:39:58Z.
pub const T0: u64 = 1_796_683_198;

pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A daemon that holds its pairs in memory: pause and resume change the
/// state, sync-now returns `sync_exit`; every call is recorded.
pub struct Fake {
    pub pairs: Mutex<Vec<PairStatus>>,
    pub calls: Mutex<Vec<(String, Action)>>,
    pub sync_exit: u8,
}

impl Fake {
    pub fn calls(&self) -> Vec<(String, Action)> {
        self.calls.lock().unwrap().clone()
    }
}

impl Control for Fake {
    fn pairs(&self) -> Vec<PairStatus> {
        self.pairs.lock().unwrap().clone()
    }

    fn act(&self, name: &str, action: Action) -> Result<u8, ActionError> {
        let mut pairs = self.pairs.lock().unwrap();
        let p = pairs
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| ActionError::NoSuchPair(name.to_owned()))?;
        self.calls.lock().unwrap().push((name.to_owned(), action));
        match action {
            Action::Pause => p.state = PairState::Paused,
            Action::Resume => p.state = PairState::Watching,
            Action::SyncNow => {
                p.last_sync = Some(at(T0 + 60));
                return Ok(self.sync_exit);
            }
        }
        Ok(0)
    }

    fn watches(&self) -> Watches {
        Watches {
            used: 1234,
            max: 65536,
        }
    }
}

fn pair(name: &str, state: PairState) -> PairStatus {
    PairStatus {
        name: name.to_owned(),
        mode: Mode::Mirror,
        state,
        error: None,
        last_sync: None,
        last_success: None,
        lag_ms: 0,
        queue: 0,
        conflicts: 0,
        recent_conflicts: Vec::new(),
        bytes: 0,
        files: 0,
        errors: 0,
        schedule: "watch".to_owned(),
    }
}

/// Three pairs: a watched one with figures, a two-way one with a conflict
/// and an error, and one whose name is markup and escapes.
pub fn three_pairs() -> Vec<PairStatus> {
    let mut photos = pair("photos", PairState::Watching);
    photos.last_sync = Some(at(T0));
    photos.last_success = Some(at(T0));
    photos.lag_ms = 1500;
    photos.queue = 7;
    photos.bytes = 123_456_789;
    photos.files = 42;
    let mut docs = pair("docs two-way", PairState::Error);
    docs.mode = Mode::TwoWay;
    docs.error = Some("nas: <host down> & \"retrying\"".to_owned());
    docs.last_sync = Some(at(T0 + 1));
    docs.errors = 3;
    docs.conflicts = 1;
    docs.schedule = "every 15m".to_owned();
    docs.recent_conflicts.push(Conflict {
        path: b"notes/todo\xff.txt".to_vec(),
        copy: b"notes/todo\xff.conflict.txt".to_vec(),
        sides: [(1111, Some(at(T0 - 100))), (2222, Some(at(T0 - 50)))],
        at: at(T0 - 10),
    });
    let evil = pair(
        "<img src=x onerror=alert(1)>\"we'ird\\name\n",
        PairState::Scheduled,
    );
    vec![photos, docs, evil]
}

pub fn fake(pairs: Vec<PairStatus>, sync_exit: u8) -> Arc<Fake> {
    Arc::new(Fake {
        pairs: Mutex::new(pairs),
        calls: Mutex::new(Vec::new()),
        sync_exit,
    })
}

/// An answer: status, headers (names lower case), body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    /// The body parsed; `\udcHH` (a byte that is not UTF-8, a lone
    /// surrogate serde_json refuses in a String) comes out as the literal
    /// text `\udcHH`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text().replace("\\udc", "\\\\udc")).unwrap()
    }
}

/// Sends `raw` as is and reads the answer until the server closes
/// (bounded by a 30 s read timeout).
pub fn send(addr: SocketAddr, raw: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(raw).unwrap();
    read_answer(&mut s)
}

pub fn read_answer(s: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    parse_answer(&buf)
}

pub fn parse_answer(buf: &[u8]) -> Answer {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(buf)));
    let head = std::str::from_utf8(&buf[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    Answer {
        status,
        headers,
        body: buf[end + 4..].to_vec(),
    }
}

/// A request with `Host: 127.0.0.1:PORT` and the given extra header lines.
pub fn req(addr: SocketAddr, method: &str, path: &str, extra: &[&str]) -> Answer {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for h in extra {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    send(addr, raw.as_bytes())
}
