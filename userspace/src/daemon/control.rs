//! The control socket: `AF_UNIX` stream, mode 0600 in a 0700 directory,
//! peers of another uid refused (`SO_PEERCRED`). One request line per
//! connection (at most [`MAX_REQUEST`] bytes, read within
//! [`READ_TIMEOUT`]): `status`, `pause NAME`, `resume NAME`,
//! `sync-now NAME`; one JSON line back: `{"pairs":[...]}` for `status`,
//! `{"ok":true,"code":N}` or `{"ok":false,"error":"..."}` for an action.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

use super::api::{Action, Control};

/// The longest request line.
pub const MAX_REQUEST: usize = 4096;
/// The longest answer a client reads.
pub const MAX_ANSWER: u64 = 64 << 20;
/// How long the daemon waits for a request line.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections handled at once (more are refused).
pub const MAX_CLIENTS: usize = 64;

/// Why the control socket cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A system call failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The socket or its directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another daemon answers on the socket.
    #[error("another dirsync daemon is running (it answers on {})", .0.display())]
    Running(PathBuf),
    /// The path is something other than a socket.
    #[error("{}: exists and is not a socket; not replaced", .0.display())]
    NotSocket(PathBuf),
    /// The daemon's answer is not what the protocol says.
    #[error("bad answer from the daemon: {0}")]
    BadAnswer(String),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ControlError + 'a {
    move |source| ControlError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The default socket: `$XDG_RUNTIME_DIR/dirsync/control.sock`, else
/// `/run/dirsync/control.sock`.
pub fn default_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("dirsync/control.sock"),
        None => PathBuf::from("/run/dirsync/control.sock"),
    }
}

/// Binds the socket at `path`: its directory created 0700 when missing,
/// a stale socket (nobody answers) replaced, a live one refused.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io("cannot create", dir))?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => {
            return Err(ControlError::NotSocket(path.to_path_buf()))
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => return Err(ControlError::Running(path.to_path_buf())),
            Err(_) => {
                std::fs::remove_file(path).map_err(io("cannot remove the stale socket", path))?
            }
        },
        Err(_) => {}
    }
    let l = UnixListener::bind(path).map_err(io("cannot listen on", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io("cannot chmod", path))?;
    l.set_nonblocking(true)
        .map_err(io("cannot listen on", path))?;
    Ok(l)
}

/// The uid of the process at the other end.
fn peer_uid(s: &UnixStream) -> Option<u32> {
    // SAFETY: ucred is plain data; all-zero is valid.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the fd is a live socket borrowed from `s`; `cred` and `len`
    // are live locals and `len` holds `cred`'s size.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0 && len as usize == std::mem::size_of::<libc::ucred>()).then_some(cred.uid)
}

/// The running server (stopped by [`Server::stop`]).
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    ino: Option<u64>,
}

impl Server {
    /// Serves `control` on `listener` (bound at `path`).
    pub fn start(listener: UnixListener, path: &Path, control: Arc<dyn Control>) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let ino = std::fs::symlink_metadata(path).ok().map(|m| m.ino());
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || accept_loop(listener, control, s2))
            .ok();
        Server {
            path: path.to_path_buf(),
            stop,
            thread,
            ino,
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting and removes the socket (if it is still ours).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let same = std::fs::symlink_metadata(&self.path).ok().map(|m| m.ino()) == self.ino;
        if same && self.ino.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn accept_loop(l: UnixListener, control: Arc<dyn Control>, stop: Arc<AtomicBool>) {
    let busy = Arc::new(AtomicUsize::new(0));
    let me = rustix::process::geteuid().as_raw();
    while !stop.load(Ordering::Relaxed) {
        let fd = std::os::fd::AsFd::as_fd(&l);
        let _ = crate::sys::notify::wait_readable(&[fd], Some(Duration::from_millis(200)));
        let Ok((s, _)) = l.accept() else { continue };
        if peer_uid(&s) != Some(me) {
            // Another user: closed without a word.
            continue;
        }
        if busy.load(Ordering::Relaxed) >= MAX_CLIENTS {
            let _ = answer(&s, &json!({"ok": false, "error": "too many clients"}));
            continue;
        }
        busy.fetch_add(1, Ordering::Relaxed);
        let (control, b2) = (control.clone(), busy.clone());
        let spawned = std::thread::Builder::new()
            .name("control-client".into())
            .spawn(move || {
                serve_one(s, control.as_ref());
                b2.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn answer(mut s: &UnixStream, v: &Value) -> std::io::Result<()> {
    let mut line = v.to_string();
    line.push('\n');
    s.write_all(line.as_bytes())
}

/// Parses one request line.
pub fn parse_request(line: &str) -> Result<Option<(Action, &str)>, String> {
    if line == "status" {
        return Ok(None);
    }
    let (verb, name) = line
        .split_once(' ')
        .ok_or_else(|| format!("unknown request {line:?}"))?;
    let action = match verb {
        "pause" => Action::Pause,
        "resume" => Action::Resume,
        "sync-now" => Action::SyncNow,
        _ => return Err(format!("unknown request {verb:?}")),
    };
    Ok(Some((action, name)))
}

fn serve_one(s: UnixStream, control: &dyn Control) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(READ_TIMEOUT));
    let _ = s.set_write_timeout(Some(READ_TIMEOUT));
    let mut line = Vec::new();
    let mut r = BufReader::new((&s).take(MAX_REQUEST as u64 + 1));
    if r.read_until(b'\n', &mut line).is_err() || line.last() != Some(&b'\n') {
        let _ = answer(
            &s,
            &json!({"ok": false, "error": "bad request (one line, at most 4096 bytes)"}),
        );
        return;
    }
    line.pop();
    let Ok(text) = std::str::from_utf8(&line) else {
        let _ = answer(
            &s,
            &json!({"ok": false, "error": "bad request (not UTF-8)"}),
        );
        return;
    };
    let v = match parse_request(text) {
        Err(e) => json!({"ok": false, "error": e}),
        Ok(None) => {
            // The same bytes as `GET /api/pairs` (one encoder).
            let mut line = super::json::pairs_json(&control.pairs());
            line.push('\n');
            let _ = (&s).write_all(line.as_bytes());
            return;
        }
        Ok(Some((action, name))) => match control.act(name, action) {
            Ok(code) => json!({"ok": true, "code": code}),
            Err(e) => json!({"ok": false, "error": e.to_string()}),
        },
    };
    let _ = answer(&s, &v);
}

/// Sends `request` to the daemon at `path` and returns its answer
/// (`timeout`: for the whole answer; `None` waits as long as it takes).
pub fn request(
    path: &Path,
    request: &str,
    timeout: Option<Duration>,
) -> Result<Value, ControlError> {
    let buf = request_raw(path, request, timeout)?;
    parse_answer(&buf)
}

/// Parses an answer; the `\udcHH` bytes of names that are not UTF-8 are
/// read as U+FFFD (see [`super::json::lossy_surrogates`]).
pub fn parse_answer(buf: &[u8]) -> Result<Value, ControlError> {
    serde_json::from_slice(&super::json::lossy_surrogates(buf))
        .map_err(|e| ControlError::BadAnswer(e.to_string()))
}

/// [`request`]'s answer as the daemon sent it (at most [`MAX_ANSWER`]
/// bytes).
pub fn request_raw(
    path: &Path,
    request: &str,
    timeout: Option<Duration>,
) -> Result<Vec<u8>, ControlError> {
    let s = UnixStream::connect(path).map_err(io("cannot reach the daemon at", path))?;
    s.set_read_timeout(timeout)
        .map_err(io("cannot use", path))?;
    s.set_write_timeout(Some(READ_TIMEOUT))
        .map_err(io("cannot use", path))?;
    (&s).write_all(format!("{request}\n").as_bytes())
        .map_err(io("cannot write to", path))?;
    let mut buf = Vec::new();
    (&s).take(MAX_ANSWER)
        .read_to_end(&mut buf)
        .map_err(io("cannot read from", path))?;
    if buf.is_empty() {
        return Err(ControlError::BadAnswer(
            "no answer (refused: another user's daemon?)".into(),
        ));
    }
    Ok(buf)
}
