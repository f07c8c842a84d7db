//! The server's half of `dirsync watch host:SRC DST`: the watch engine
//! ([`crate::watch`], its own inotify) runs on SRC here, with the client
//! as the agent of DST (the placement of a pull: the client keeps its
//! receiver rules, confinement and bounds). Events go to the client as
//! they happen (`Forward` in `server`); the client's
//! [`Msg::WatchStop`](super::protocol::messages::Msg::WatchStop) or the
//! link going down stops the watch, which finishes the operations in
//! hand; then the server ends with `Done` as a one-shot pull does.
//!
//! A confined server (`--root`) watches SRC through `/proc/self/fd/N` of
//! the descriptor it opened beneath its tree ([`fd_path`]); the watcher
//! opens every directory relative to that root (`O_NOFOLLOW`), and the
//! engine reads through its own descriptor, so nothing outside the tree
//! is read. Paths in events are shown as the client named SRC
//! ([`rename_prefix`]).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::link::Link;
use super::protocol::messages::WireEvent;
use crate::error::chain;
use crate::report::{Reporter, Summary};
use crate::sync::{Options, Syncer};
use crate::sys::notify::EventFd;
use crate::watch::{Config, Engine, Signals};
use crate::{ExitStatus, Result};

/// How often the server checks that the link is still up (a client that
/// went away stops the watch within this).
const LINK_CHECK: Duration = Duration::from_millis(100);

/// The path through which the watcher reaches the directory `fd`.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Shows a path of `w` under `from` (not empty) as under `to` instead.
pub fn rename_prefix(w: &mut WireEvent, from: &[u8], to: &[u8]) {
    let swap = |p: &mut Vec<u8>| {
        if from.is_empty() {
            return;
        }
        if let Some(rest) = p.strip_prefix(from) {
            if rest.is_empty() || rest[0] == b'/' {
                *p = [to, rest].concat();
            }
        }
    };
    swap(&mut w.a);
    // Kinds whose second field is a path too (copied, renamed, cloned,
    // hard-linked); a symlink's target (2) is not.
    if matches!(w.kind, 0 | 5 | 13 | 14) {
        swap(&mut w.b);
    }
}

/// The syncer, each operation sent at once (the watcher waits for no
/// final barrier).
struct Flushing {
    syncer: Syncer,
    link: Arc<Link>,
}

impl Flushing {
    fn sent(&self, r: Result<Summary>) -> Result<Summary> {
        let _ = self.link.flush();
        r
    }
}

impl Engine for Flushing {
    fn sync_all(&self) -> Result<Summary> {
        self.sent(self.syncer.sync_all())
    }
    fn sync_path(&self, rel: &Path) -> Result<Summary> {
        self.sent(self.syncer.sync_path(rel))
    }
    fn sync_attrs(&self, rel: &Path) -> Result<Summary> {
        self.sent(self.syncer.sync_attrs(rel))
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<Summary> {
        self.sent(self.syncer.rename(from, to))
    }
    fn take_unsettled(&self) -> Vec<PathBuf> {
        self.syncer.take_unsettled()
    }
}

/// Raises `flag` once the link is down (or gone); ends once it is raised.
fn stop_when_down(link: Weak<Link>, flag: Arc<EventFd>) {
    loop {
        if flag.is_raised() {
            return;
        }
        if link.upgrade().map_or(true, |l| l.down().is_some()) {
            flag.notify();
            return;
        }
        std::thread::sleep(LINK_CHECK);
    }
}

/// Watches `src` (see the module docs) until the client stops it or the
/// link goes down: `Ok` (an empty summary: the client counts nothing of
/// a watch) or the fatal error to send (SRC itself deleted or moved).
pub fn run(
    src: &Path,
    syncer: Syncer,
    link: &Arc<Link>,
    reporter: Arc<dyn Reporter>,
    options: &Options,
) -> std::result::Result<Summary, String> {
    let flag = Arc::new(EventFd::new().map_err(|e| format!("creating an eventfd: {e}"))?);
    link.on_watch_stop(flag.clone());
    let (weak, f) = (Arc::downgrade(link), flag.clone());
    let monitor = std::thread::spawn(move || stop_when_down(weak, f));
    let excludes = crate::exclude::Excludes::new(&options.excludes).map_err(|e| chain(&e));
    let status = excludes.and_then(|excludes| {
        let config = Config {
            recursive: !options.no_recursive,
            excludes,
            ..Config::default()
        };
        let engine = Arc::new(Flushing {
            syncer,
            link: link.clone(),
        });
        let stop = Signals::stop_flag(flag.clone());
        crate::watch::run_with(src, engine, reporter, stop, config).map_err(|e| chain(&e))
    });
    flag.notify();
    let _ = monitor.join();
    let _ = link.flush();
    match status? {
        ExitStatus::Ok => Ok(Summary::default()),
        s => Err(format!(
            "the watch of SRC stopped (exit {}): see the error above",
            s as i32
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: u8, a: &[u8], b: &[u8]) -> WireEvent {
        WireEvent {
            kind,
            a: a.to_vec(),
            b: b.to_vec(),
            text: Vec::new(),
            count: 0,
        }
    }

    #[test]
    fn a_confined_root_is_shown_as_the_client_named_it() {
        let (from, to) = (&b"/proc/self/fd/7"[..], &b"src"[..]);
        let mut w = ev(10, b"/proc/self/fd/7/sub", b"");
        rename_prefix(&mut w, from, to);
        assert_eq!(w.a, b"src/sub");
        let mut w = ev(5, b"/proc/self/fd/7", b"/proc/self/fd/7/x");
        rename_prefix(&mut w, from, to);
        assert_eq!((&w.a[..], &w.b[..]), (&b"src"[..], &b"src/x"[..]));
        // Not a component boundary, and a symlink's target: untouched.
        let mut w = ev(2, b"/proc/self/fd/70", b"/proc/self/fd/7/t");
        rename_prefix(&mut w, from, to);
        assert_eq!(
            (&w.a[..], &w.b[..]),
            (&b"/proc/self/fd/70"[..], &b"/proc/self/fd/7/t"[..])
        );
        // No prefix (an unconfined server): nothing changes.
        let mut w = ev(0, b"/a", b"/b");
        rename_prefix(&mut w, b"", to);
        assert_eq!((&w.a[..], &w.b[..]), (&b"/a"[..], &b"/b"[..]));
    }
}
