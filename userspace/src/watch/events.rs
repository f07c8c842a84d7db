//! Turning inotify events into operations of the [queue](super::queue)
//! and keeping the [watch map](super::map) current.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use inotify::EventMask;

use super::map::{join, NodeId, ROOT};
use super::queue::Urgency;
use super::watcher::{PendingMove, Watcher};
use crate::report::Event as Ev;

fn kind_name(mask: EventMask) -> &'static str {
    if mask.contains(EventMask::CREATE) {
        "create"
    } else if mask.contains(EventMask::CLOSE_WRITE) {
        "close_write"
    } else if mask.contains(EventMask::MODIFY) {
        "modify"
    } else if mask.contains(EventMask::ATTRIB) {
        "attrib"
    } else if mask.contains(EventMask::DELETE) {
        "delete"
    } else if mask.contains(EventMask::MOVED_FROM) {
        "moved_from"
    } else if mask.contains(EventMask::MOVED_TO) {
        "moved_to"
    } else if mask.contains(EventMask::DELETE_SELF) {
        "delete_self"
    } else if mask.contains(EventMask::MOVE_SELF) {
        "move_self"
    } else {
        "other"
    }
}

impl Watcher {
    /// Reads and handles queued events until the queue is empty (or a
    /// bounded number of reads, to keep dispatching under a flood).
    pub(super) fn read_events(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut drained = false;
        for _ in 0..16 {
            let events = match self.ino.read(buf) {
                Ok(Some(evs)) => evs,
                Ok(None) => {
                    drained = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            for (wd, mask, cookie, name) in events {
                self.handle(wd, mask, cookie, name.as_deref(), now);
            }
            if self.rebuild {
                self.rebuild = false;
                self.rebuild_map(Instant::now());
                self.rescan_after_drain = true;
            }
        }
        if drained && self.rescan_after_drain {
            // Every event generated before the map was rebuilt has been
            // read: a full rescan queued now runs after all of them.
            self.rescan_after_drain = false;
            let path = self.src.clone();
            self.reporter.event(&Ev::Rescan {
                reason: "overflow",
                path: &path,
                count: self.overflows,
            });
            self.queue.push_rescan_all(Instant::now());
        }
        Ok(())
    }

    pub(super) fn rebuild_map(&mut self, now: Instant) {
        self.map.begin_mark();
        if let Err(e) = self.watch_tree(Path::new(""), now, true) {
            self.fatal = Some(format!(
                "source directory {} is gone ({e}); stopping",
                self.src.display()
            ));
            return;
        }
        for wd in self.map.sweep() {
            self.ino.rm_watch(wd);
        }
        // Pending moves refer to the old map.
        let moves: Vec<PendingMove> = self.moves.drain().map(|(_, m)| m).collect();
        for m in moves {
            self.queue.push_sync(&m.from, Urgency::Soon, now);
        }
    }

    /// SRC itself was deleted or moved: the run ends with an error.
    pub(super) fn source_gone(&mut self, mask: EventMask, deleted: bool) {
        let what = if deleted {
            "was deleted"
        } else {
            "was moved or renamed"
        };
        self.reporter.event(&Ev::Notify {
            kind: kind_name(mask),
            path: &self.src,
        });
        self.fatal.get_or_insert(format!(
            "source directory {} {what}; stopping",
            self.src.display()
        ));
    }

    /// `IN_Q_OVERFLOW`: events were lost; the map is rebuilt and SRC
    /// rescanned once the queue is drained.
    fn overflowed(&mut self) {
        self.overflows += 1;
        let limit = self
            .queue_limit
            .map_or_else(|| "?".to_string(), |v| v.to_string());
        let msg = format!(
            "inotify event queue overflow #{} (fs.inotify.max_queued_events = {limit}): \
             rescanning {}",
            self.overflows,
            self.src.display()
        );
        self.reporter.event(&Ev::Warning {
            path: &self.src,
            message: &msg,
        });
        self.rebuild = true;
    }

    /// A watch went away (`IN_IGNORED`); SRC's own is fatal.
    fn watch_ignored(&mut self, wd: i32) {
        if Some(wd) == self.map.wd(ROOT) && self.fatal.is_none() {
            self.fatal = Some(format!(
                "source directory {} is no longer watched (deleted or unmounted); stopping",
                self.src.display()
            ));
        }
        for w in self.map.forget_wd(wd) {
            self.ino.rm_watch(w);
        }
    }

    /// An event on a watched directory itself; its parent reports the same
    /// change by name, except for SRC.
    fn on_self(&mut self, node: NodeId, mask: EventMask, now: Instant) {
        if node != ROOT {
            return;
        }
        if mask.intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
            self.source_gone(mask, mask.contains(EventMask::DELETE_SELF));
        } else if mask.contains(EventMask::ATTRIB) {
            self.reporter.event(&Ev::Notify {
                kind: "attrib",
                path: &self.src,
            });
            self.queue.push_attrs(Path::new(""), now);
        }
    }

    /// One inotify event.
    pub(super) fn handle(
        &mut self,
        wd: i32,
        mask: EventMask,
        cookie: u32,
        name: Option<&OsStr>,
        now: Instant,
    ) {
        if mask.contains(EventMask::Q_OVERFLOW) {
            return self.overflowed();
        }
        if let Some((pwd, pname)) = &self.parent_wd {
            if *pwd == wd {
                if name == Some(pname.as_os_str()) && mask.contains(EventMask::ISDIR) {
                    self.source_gone(mask, mask.contains(EventMask::DELETE));
                }
                return;
            }
        }
        if mask.contains(EventMask::IGNORED) {
            return self.watch_ignored(wd);
        }
        let Some(node) = self.map.node_of_wd(wd) else {
            // A watch already dropped (moved out, deleted).
            return;
        };
        let Some(dir_rel) = self.map.path(node) else {
            return;
        };
        let Some(name) = name else {
            return self.on_self(node, mask, now);
        };
        let rel = join(&dir_rel, name);
        let full = self.src.join(&rel);
        self.reporter.event(&Ev::Notify {
            kind: kind_name(mask),
            path: &full,
        });
        self.on_entry(rel, mask, cookie, now);
    }

    /// An event on the entry `rel` of a watched directory.
    fn on_entry(&mut self, rel: PathBuf, mask: EventMask, cookie: u32, now: Instant) {
        let is_dir = mask.contains(EventMask::ISDIR);
        if mask.contains(EventMask::CREATE) {
            if is_dir {
                if self.config.recursive {
                    let _ = self.watch_tree(&rel, now, false);
                }
                self.queue.push_sync(&rel, Urgency::Soon, now);
            } else {
                self.queue.push_sync(&rel, Urgency::Settle, now);
            }
        } else if mask.contains(EventMask::CLOSE_WRITE) {
            self.queue.push_sync(&rel, Urgency::Soon, now);
        } else if mask.contains(EventMask::MODIFY) {
            self.queue.push_sync(&rel, Urgency::Settle, now);
        } else if mask.contains(EventMask::ATTRIB) {
            self.queue.push_attrs(&rel, now);
        } else if mask.contains(EventMask::DELETE) {
            if is_dir {
                if let Some(id) = self.map.lookup(&rel) {
                    for w in self.map.remove(id) {
                        self.ino.rm_watch(w);
                    }
                }
            }
            self.queue.push_sync(&rel, Urgency::Soon, now);
        } else if mask.contains(EventMask::MOVED_FROM) {
            let node = if is_dir {
                self.map.lookup(&rel).map(|id| (id, self.map.wd(id)))
            } else {
                None
            };
            let deadline = now + self.config.pair_window;
            let from = rel;
            self.moves.insert(
                cookie,
                PendingMove {
                    from,
                    node,
                    deadline,
                },
            );
        } else if mask.contains(EventMask::MOVED_TO) {
            self.moved_to(rel, is_dir, cookie, now);
        }
    }

    /// `IN_MOVED_TO`: the end of a rename inside SRC (paired by cookie), or
    /// a move in from outside.
    fn moved_to(&mut self, rel: PathBuf, is_dir: bool, cookie: u32, now: Instant) {
        let Some(m) = self.moves.remove(&cookie) else {
            // Moved in from outside SRC.
            if is_dir && self.config.recursive {
                let _ = self.watch_tree(&rel, now, false);
            }
            self.queue.push_sync(&rel, Urgency::Soon, now);
            return;
        };
        if is_dir && self.config.recursive {
            match self.map.rename(&m.from, &rel) {
                Some((_, dropped)) => {
                    for w in dropped {
                        self.ino.rm_watch(w);
                    }
                }
                // Not in the map (lost events): watch it anew.
                None => {
                    let _ = self.watch_tree(&rel, now, false);
                }
            }
        }
        self.queue.push_rename(&m.from, &rel, now);
    }

    /// Whether an unpaired `IN_MOVED_FROM`'s window is over at `now`.
    pub(super) fn moves_due(&self, now: Instant) -> bool {
        self.moves.values().any(|m| m.deadline <= now)
    }

    /// Unpaired `IN_MOVED_FROM`s whose window is over: moved out of SRC.
    pub(super) fn expire_moves(&mut self, now: Instant) {
        let due: Vec<u32> = self
            .moves
            .iter()
            .filter(|(_, m)| m.deadline <= now)
            .map(|(&c, _)| c)
            .collect();
        for c in due {
            let Some(m) = self.moves.remove(&c) else {
                continue;
            };
            if let Some((id, wd)) = m.node {
                let same = self.map.contains(id)
                    && self.map.wd(id) == wd
                    && self.map.path(id).as_deref() == Some(m.from.as_path());
                if same {
                    for w in self.map.remove(id) {
                        self.ino.rm_watch(w);
                    }
                }
            }
            self.queue.push_sync(&m.from, Urgency::Soon, now);
        }
    }
}
