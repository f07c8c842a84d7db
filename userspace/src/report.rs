//! The bottom layer: what the engine and the watcher tell their caller.
//!
//! They describe what they do as [`Event`]s handed to a [`Reporter`] (the
//! library never prints: the binary's reporters do), count it in a
//! [`Summary`], and keep live [`Progress`] counters. `Display` gives the
//! human form of each (`-v` lines, the summary line). Paths in events are
//! the user-visible paths (the SRC or DST root joined with the relative
//! path), as bytes.
//!
//! This module depends on nothing else in the crate.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Something worth telling the user.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A regular file was copied (`Copied: a -> b`).
    Copied {
        /// Source path.
        src: &'a Path,
        /// Destination path.
        dst: &'a Path,
    },
    /// A regular file was copied as a clone sharing SRC's extents
    /// (`Cloned: a -> b`; counted as copied).
    Cloned {
        /// Source path.
        src: &'a Path,
        /// Destination path.
        dst: &'a Path,
    },
    /// A DST name was made a hard link to another DST name (`-H`;
    /// `Hard linked: b => a`; counted in `links`).
    HardLinked {
        /// Destination path of the new name.
        path: &'a Path,
        /// Destination path it now shares its file with.
        target: &'a Path,
    },
    /// A directory was created in DST (`Created directory: d`).
    CreatedDir {
        /// Destination path.
        path: &'a Path,
    },
    /// A symlink was created or replaced in DST (`Linked: l -> target`).
    Linked {
        /// Destination path.
        path: &'a Path,
        /// The link's target bytes.
        target: &'a [u8],
    },
    /// An entry was removed from DST (`Deleted: x`); a removed tree gives
    /// one event for its root.
    Deleted {
        /// Destination path.
        path: &'a Path,
    },
    /// Mode and/or mtime of an existing DST entry were fixed
    /// (`Updated attributes: x`).
    Attrs {
        /// Destination path.
        path: &'a Path,
    },
    /// An entry was renamed inside DST (`Renamed: a -> b`).
    Renamed {
        /// Old destination path.
        from: &'a Path,
        /// New destination path.
        to: &'a Path,
    },
    /// A special file was recreated in DST (`--specials`;
    /// `Created fifo: DST/x`).
    Special {
        /// Destination path.
        path: &'a Path,
        /// `fifo`, `socket`, `character device`, `block device`.
        kind: &'a str,
    },
    /// A special file (FIFO, socket, device) in SRC was skipped.
    Skipped {
        /// Source path.
        path: &'a Path,
        /// Why.
        message: &'a str,
    },
    /// A non-fatal problem with one entry that did not make the run fail.
    Warning {
        /// The entry.
        path: &'a Path,
        /// What went wrong.
        message: &'a str,
    },
    /// An entry could not be synced (counted in `Summary::errors`, exit 2).
    Error {
        /// The entry.
        path: &'a Path,
        /// What went wrong.
        message: &'a str,
    },
    /// A two-way sync met a path changed differently on both sides
    /// (`Conflict: path: resolution`): `copy` is the conflict copy that
    /// keeps the other version, if one was made.
    Conflict {
        /// The path (on side A).
        path: &'a Path,
        /// The conflict copy (on side A), if any.
        copy: Option<&'a Path>,
        /// How it was resolved.
        message: &'a str,
    },
    /// `dirsync watch` added an inotify watch on a SRC directory
    /// (`Watching: dir`).
    Watching {
        /// Source directory.
        dir: &'a Path,
    },
    /// `dirsync watch` received a change (`Event: kind path`): `kind` is
    /// one of `create`, `modify`, `close_write`, `attrib`, `delete`,
    /// `moved_from`, `moved_to`, `delete_self`, `move_self`, or the signal
    /// that stops the watcher (`SIGINT`, `SIGTERM`; path = SRC).
    Notify {
        /// What happened.
        kind: &'a str,
        /// Source path.
        path: &'a Path,
    },
    /// `dirsync watch` rescans a subtree (`Rescan: reason path (#count)`):
    /// reason `overflow` after an inotify queue overflow (path = SRC,
    /// `count` = overflows so far), `unwatched` for a directory without a
    /// watch (the `fs.inotify.max_user_watches` limit), rescanned
    /// periodically.
    Rescan {
        /// Why.
        reason: &'a str,
        /// Source path of the subtree.
        path: &'a Path,
        /// Overflows so far (for `overflow`), else 0.
        count: u64,
    },
}

impl Event<'_> {
    /// Short machine name of the action (the `"action"` field of `--json`).
    pub fn action(&self) -> &'static str {
        match self {
            Event::Copied { .. } => "copied",
            Event::Cloned { .. } => "cloned",
            Event::HardLinked { .. } => "hard_linked",
            Event::CreatedDir { .. } => "created_dir",
            Event::Linked { .. } => "linked",
            Event::Deleted { .. } => "deleted",
            Event::Attrs { .. } => "attrs",
            Event::Renamed { .. } => "renamed",
            Event::Special { .. } => "special",
            Event::Skipped { .. } => "skipped",
            Event::Warning { .. } => "warning",
            Event::Error { .. } => "error",
            Event::Conflict { .. } => "conflict",
            Event::Watching { .. } => "watching",
            Event::Notify { .. } => "event",
            Event::Rescan { .. } => "rescan",
        }
    }
}

/// Writes `bytes` for humans: UTF-8 as is, control characters and bytes
/// that are not valid UTF-8 as `\xHH`.
pub fn write_human(f: &mut impl fmt::Write, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    write!(f, "\\x{b:02x}")?;
                }
            } else {
                f.write_char(c)?;
            }
        }
        for b in chunk.invalid() {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// Bytes shown with [`write_human`]: every path, and every text that came
/// from a peer (its messages, version, event texts), so that no terminal
/// escape reaches the user's terminal.
pub struct Human<'a>(pub &'a [u8]);

/// `bytes` as [`Human`] shows them, as a `String`.
pub fn human(bytes: &[u8]) -> String {
    Human(bytes).to_string()
}

impl fmt::Display for Human<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_human(f, self.0)
    }
}

fn h(p: &Path) -> Human<'_> {
    Human(p.as_os_str().as_bytes())
}

/// An event's text (a peer's, in a pull) shown with [`write_human`].
fn t(s: &str) -> Human<'_> {
    Human(s.as_bytes())
}

/// The `-v` line of an event (no trailing newline), e.g.
/// `Copied: src/a -> dst/a`.
impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Event::Copied { src, dst } => write!(f, "Copied: {} -> {}", h(src), h(dst)),
            Event::Cloned { src, dst } => write!(f, "Cloned: {} -> {}", h(src), h(dst)),
            Event::HardLinked { path, target } => {
                write!(f, "Hard linked: {} => {}", h(path), h(target))
            }
            Event::CreatedDir { path } => write!(f, "Created directory: {}", h(path)),
            Event::Linked { path, target } => {
                write!(f, "Linked: {} -> {}", h(path), Human(target))
            }
            Event::Deleted { path } => write!(f, "Deleted: {}", h(path)),
            Event::Attrs { path } => write!(f, "Updated attributes: {}", h(path)),
            Event::Renamed { from, to } => write!(f, "Renamed: {} -> {}", h(from), h(to)),
            Event::Special { path, kind } => write!(f, "Created {}: {}", t(kind), h(path)),
            Event::Skipped { path, message } => write!(f, "Skipped: {}: {}", h(path), t(message)),
            Event::Warning { path, message } => {
                write!(f, "warning: {}: {}", h(path), t(message))
            }
            Event::Error { path, message } => write!(f, "error: {}: {}", h(path), t(message)),
            Event::Conflict {
                path,
                copy: Some(c),
                message,
            } => write!(f, "Conflict: {}: {} ({})", h(path), t(message), h(c)),
            Event::Conflict {
                path,
                copy: None,
                message,
            } => write!(f, "Conflict: {}: {}", h(path), t(message)),
            Event::Watching { dir } => write!(f, "Watching: {}", h(dir)),
            Event::Notify { kind, path } => write!(f, "Event: {} {}", t(kind), h(path)),
            Event::Rescan {
                reason,
                path,
                count,
            } => write!(f, "Rescan: {} {} (#{})", t(reason), h(path), count),
        }
    }
}

/// Receives events; shared between threads.
pub trait Reporter: Send + Sync {
    /// Handles one event.
    fn event(&self, event: &Event<'_>);
}

/// Discards everything.
#[derive(Debug, Default)]
pub struct NullReporter;

impl Reporter for NullReporter {
    fn event(&self, _event: &Event<'_>) {}
}

/// Records every event as a line in the `-v` format (for tests and
/// embedding).
#[derive(Debug, Default)]
pub struct CollectReporter {
    lines: Mutex<Vec<String>>,
}

impl CollectReporter {
    /// The lines recorded so far.
    pub fn lines(&self) -> Vec<String> {
        match self.lines.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl Reporter for CollectReporter {
    fn event(&self, event: &Event<'_>) {
        let line = event.to_string();
        match self.lines.lock() {
            Ok(mut l) => l.push(line),
            Err(p) => p.into_inner().push(line),
        }
    }
}

/// Generates [`Summary`] and its live twin `Counters` from ONE list of
/// counters: name, whether it counts a change (see [`Summary::actions`]),
/// and its words in the human summary line.
macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident, $action:literal, $human:literal; )*) => {
        /// Counts of what an operation did.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Summary {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl Summary {
            /// Every counter as (JSON name, value), in the documented order.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$( (stringify!($name), self.$name) ),*]
            }

            /// Sets the counter with the JSON name `name`; false when
            /// there is none.
            pub fn set(&mut self, name: &str, v: u64) -> bool {
                $( if name == stringify!($name) { self.$name = v; return true; } )*
                false
            }

            /// Adds another summary's counts to this one (saturating: a
            /// peer's counts are untrusted).
            pub fn add(&mut self, o: &Summary) {
                $( self.$name = self.$name.saturating_add(o.$name); )*
            }

            /// Number of changes made (or, in a dry run, that would be made).
            pub fn actions(&self) -> u64 {
                0u64 $( .saturating_add(if $action { self.$name } else { 0 }) )*
            }
        }

        /// The `-v` closing line: `Summary: 2 copied, 10 bytes, ...`.
        impl fmt::Display for Summary {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Summary:")?;
                let mut sep = " ";
                $(
                    write!(f, "{sep}{} {}", self.$name, $human)?;
                    sep = ", ";
                )*
                let _ = sep;
                Ok(())
            }
        }

        /// The live, shared form of a [`Summary`] (one atomic per counter).
        #[derive(Debug, Default)]
        pub struct Counters {
            $( $(#[$doc])* pub $name: AtomicU64, )*
        }

        impl Counters {
            /// A snapshot.
            pub fn summary(&self) -> Summary {
                Summary {
                    $( $name: self.$name.load(Ordering::Relaxed), )*
                }
            }
        }
    };
}

counters! {
    /// Regular files copied (new or changed).
    copied, true, "copied";
    /// Bytes of file content copied.
    bytes, false, "bytes";
    /// Directories created.
    dirs_created, true, "directories created";
    /// Symlinks created or replaced.
    links, true, "links";
    /// Entries removed from DST (a removed tree counts once per entry).
    deleted, true, "deleted";
    /// Entries whose mode/mtime alone were fixed.
    attrs, true, "attributes updated";
    /// Entries renamed inside DST.
    renamed, true, "renamed";
    /// Special files skipped.
    skipped, false, "skipped";
    /// Special files (FIFOs, sockets, devices) recreated (`--specials`).
    specials, true, "special files";
    /// Entries that failed (reported, the rest went on).
    errors, false, "errors";
    /// Two-way conflicts (each also a `conflict` event; not errors).
    conflicts, false, "conflicts";
}

/// Adds `n` to a live counter, saturating (`n` may come from a peer).
pub fn inc(a: &AtomicU64, n: u64) {
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_add(n))
    });
}

/// Live counters of the whole life of a syncer (for a progress bar).
#[derive(Debug, Default)]
pub struct Progress {
    /// Entries looked at in SRC.
    pub scanned: AtomicU64,
    /// Files copied.
    pub copied: AtomicU64,
    /// Bytes copied.
    pub bytes: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn p(b: &[u8]) -> &Path {
        Path::new(OsStr::from_bytes(b))
    }

    #[test]
    fn human_lines_escape_control_and_invalid_bytes() {
        let e = Event::Deleted {
            path: p(b"d/new\nline\xff"),
        };
        assert_eq!(e.to_string(), "Deleted: d/new\\x0aline\\xff");
        let e = Event::Copied {
            src: p(b"a"),
            dst: p(b"b"),
        };
        assert_eq!(e.to_string(), "Copied: a -> b");
    }

    #[test]
    fn counts_saturate() {
        let a = AtomicU64::new(u64::MAX - 1);
        inc(&a, 5);
        assert_eq!(a.load(Ordering::Relaxed), u64::MAX);
        let mut s = Summary {
            deleted: u64::MAX,
            copied: 3,
            ..Summary::default()
        };
        s.add(&s.clone());
        assert_eq!((s.deleted, s.copied), (u64::MAX, 6));
        assert_eq!(s.actions(), u64::MAX);
    }

    #[test]
    fn summary_lists_every_counter_once() {
        let s = Summary {
            copied: 2,
            bytes: 10,
            renamed: 1,
            ..Summary::default()
        };
        assert_eq!(
            s.to_string(),
            "Summary: 2 copied, 10 bytes, 0 directories created, 0 links, 0 deleted, \
             0 attributes updated, 1 renamed, 0 skipped, 0 special files, 0 errors, 0 conflicts"
        );
        let names: Vec<_> = s.fields().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 11);
        assert!(names.contains(&"renamed"));
        assert_eq!(s.actions(), 3);
    }
}
