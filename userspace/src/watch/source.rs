//! Where a watcher's inotify events come from: its own instance (`dirsync
//! watch`) or its inbox of the daemon's [`SharedInotify`](super::shared).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use inotify::Inotify;

use super::shared::{Inbox, Routed};
use crate::sys::notify;

/// A watcher's inotify instance or its share of one.
pub enum Source {
    /// An instance of its own.
    Own(Inotify),
    /// Its inbox of a shared instance.
    Shared(Inbox),
}

impl Source {
    /// `inotify_add_watch` on the open directory `dir` (`fallback` is its
    /// full path).
    pub fn add_watch(&self, dir: BorrowedFd<'_>, fallback: &Path, mask: u32) -> io::Result<i32> {
        match self {
            Source::Own(i) => notify::add_watch(i.as_fd(), dir, fallback, mask),
            Source::Shared(s) => s.add_watch(dir, fallback, mask),
        }
    }

    /// Removes the watch `wd` (errors ignored: already gone).
    pub fn rm_watch(&self, wd: i32) {
        match self {
            Source::Own(i) => notify::rm_watch(i.as_fd(), wd),
            Source::Shared(s) => s.rm_watch(wd),
        }
    }

    /// Readable when events are waiting.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        match self {
            Source::Own(i) => i.as_fd(),
            Source::Shared(s) => s.wake_fd(),
        }
    }

    /// The next batch of events; `None` when none is waiting.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Option<Vec<Routed>>> {
        match self {
            Source::Own(i) => match i.read_events(buf) {
                Ok(evs) => Ok(Some(
                    evs.map(|e| {
                        (
                            e.wd.get_watch_descriptor_id(),
                            e.mask,
                            e.cookie,
                            e.name.map(|n| n.to_os_string()),
                        )
                    })
                    .collect(),
                )),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            },
            Source::Shared(s) => {
                let evs = s.take();
                Ok((!evs.is_empty()).then_some(evs))
            }
        }
    }
}
