//! Carrying out a plan: each decision through [`super::apply`], its
//! event, its counters, and its archive record once it completed.

use std::io;
use std::path::Path;

use crate::report::{Event, Reporter, Summary};
use crate::twoway::apply::{CopyOpts, Installed};
use crate::twoway::archive::{Archive, Record, Records};
use crate::twoway::error::Error;
use crate::twoway::reconcile::{Action, ConflictKind, Planned, Side, State, Type};
use crate::twoway::renames::Rename;
use crate::twoway::replica::{self, Replica};
use crate::twoway::scan::{join, split, Tree};

/// The run's working set.
pub struct Exec<'a> {
    pub ra: &'a dyn Replica,
    pub rb: &'a dyn Replica,
    pub ta: &'a Tree,
    pub tb: &'a Tree,
    pub records: &'a Records,
    pub archive: &'a mut Archive,
    pub rep: &'a dyn Reporter,
    pub sum: Summary,
    pub dry: bool,
    pub copy: CopyOpts,
    pub delete_loser: bool,
    pub stamp: String,
}

fn name(s: Side) -> &'static str {
    match s {
        Side::A => "A",
        Side::B => "B",
    }
}

impl<'a> Exec<'a> {
    fn side(&self, s: Side) -> (&'a dyn Replica, &'a Tree) {
        match s {
            Side::A => (self.ra, self.ta),
            Side::B => (self.rb, self.tb),
        }
    }

    fn fail(&mut self, path: &Path, e: io::Error) {
        self.sum.errors += 1;
        let msg = e.to_string();
        self.rep.event(&Event::Error {
            path,
            message: &msg,
        });
    }

    /// Carries the `-o -g -X` attributes of `src_path` on side `x` (seen
    /// as `sx`) to `dst_path` on the other side (nothing when none is
    /// selected).
    fn carry_attrs(&self, x: Side, src_path: &[u8], sx: &State, dst_path: &[u8]) -> io::Result<()> {
        if sx.attrs == 0 {
            return Ok(());
        }
        let (rx, _) = self.side(x);
        let (ry, _) = self.side(x.other());
        match rx.read_attrs(src_path)? {
            Some(a) if crate::twoway::attrs::digest(&a) == sx.attrs => ry.write_attrs(dst_path, &a),
            Some(_) => Err(io::Error::other(
                "its attributes changed during the run: left for the next run",
            )),
            None => Ok(()),
        }
    }

    fn changed(&self, path: &Path) {
        self.rep.event(&Event::Warning {
            path,
            message: "changed during the run: left for the next run",
        });
    }

    /// Records `path` as synced: `sx` on side `x`, inode `ino_y` on the
    /// other.
    fn record(&mut self, path: &[u8], x: Side, sx: &State, ino_y: u64) -> Result<(), Error> {
        if self.dry {
            return Ok(());
        }
        let rec = match x {
            Side::A => Record {
                state: sx.clone(),
                ino_b: ino_y,
            },
            Side::B => Record {
                state: State {
                    ino: ino_y,
                    ..sx.clone()
                },
                ino_b: sx.ino,
            },
        };
        self.archive.put(path, &rec)
    }

    /// Replays a rename on its side and moves the archive's paths.
    pub fn rename(&mut self, m: &Rename) -> Result<(), Error> {
        let (r, _) = self.side(m.on);
        let (from, to) = (r.shown(&m.from), r.shown(&m.to));
        self.rep.event(&Event::Renamed {
            from: &from,
            to: &to,
        });
        self.sum.renamed += 1;
        if self.dry {
            return Ok(());
        }
        let done = r.rename(&m.from, &m.to, &m.seen);
        match done {
            Ok(true) => {
                for (old, new) in &m.moved {
                    self.archive.remove(old)?;
                    if let Some(rec) = self.records.get(new) {
                        self.archive.put(new, rec)?;
                    }
                }
            }
            Ok(false) => {
                self.sum.renamed -= 1;
                self.changed(&from);
            }
            Err(e) => self.fail(&from, e),
        }
        Ok(())
    }

    /// Deletes `path` on side `on` (unchanged there since the scan).
    pub fn delete(&mut self, on: Side, path: &[u8]) -> Result<(), Error> {
        let (r, t) = self.side(on);
        let Some(seen) = t.entries.get(path) else {
            return Ok(());
        };
        let shown = r.shown(path);
        self.rep.event(&Event::Deleted { path: &shown });
        self.sum.deleted += 1;
        if self.dry {
            return Ok(());
        }
        match r.remove(path, seen) {
            Ok(true) => self.archive.remove(path)?,
            Ok(false) => {
                self.sum.deleted -= 1;
                self.changed(&shown);
            }
            Err(e) => {
                self.sum.deleted -= 1;
                self.fail(&shown, e);
            }
        }
        Ok(())
    }

    /// Carries out every decision but deletions (done before, children
    /// first).
    pub fn act(&mut self, p: &Planned) -> Result<(), Error> {
        let path = &p.path[..];
        match p.action {
            Action::Nothing | Action::Delete(_) => Ok(()),
            Action::Forget => {
                if !self.dry {
                    self.archive.remove(path)?;
                }
                Ok(())
            }
            Action::Record => {
                let (a, b) = (&self.ta.entries[path], &self.tb.entries[path]);
                let (a, ino_b) = (a.clone(), b.ino);
                self.record(path, Side::A, &a, ino_b)
            }
            Action::FixMtime(y) => self.attrs(path, y.other(), true),
            Action::Attrs(x) => self.attrs(path, x, false),
            Action::Copy(x) => self.copy(path, x),
            Action::Conflict { winner, what } => self.conflict(path, winner, what),
        }
    }

    /// Gives the other side `x`'s mode (and mtime, `mtime`).
    fn attrs(&mut self, path: &[u8], x: Side, mtime: bool) -> Result<(), Error> {
        let y = x.other();
        let (ry, ty) = self.side(y);
        let (_, tx) = self.side(x);
        let (sx, sy) = (tx.entries[path].clone(), ty.entries[path].clone());
        let shown = ry.shown(path);
        self.rep.event(&Event::Attrs { path: &shown });
        self.sum.attrs += 1;
        if self.dry {
            return Ok(());
        }
        match ry.set_attrs(path, &sy, &sx, mtime) {
            Ok(true) => match self.carry_attrs(x, path, &sx, path) {
                Ok(()) => self.record(path, x, &sx, sy.ino)?,
                Err(e) => self.fail(&shown, e),
            },
            Ok(false) => self.changed(&shown),
            Err(e) => self.fail(&shown, e),
        }
        Ok(())
    }

    /// Copies `src_path` (state `sx`) of side `x` to `dst_path` of the
    /// other side (seen there as `seen`); records it under `record_as`.
    fn copy_to(
        &mut self,
        x: Side,
        src_path: &[u8],
        sx: &State,
        dst_path: &[u8],
        seen: Option<&State>,
    ) -> Result<bool, Error> {
        let (rx, _) = self.side(x);
        let (ry, _) = self.side(x.other());
        let (from, to) = (rx.shown(src_path), ry.shown(dst_path));
        match sx.kind {
            Type::File => {
                self.rep.event(&Event::Copied {
                    src: &from,
                    dst: &to,
                });
                self.sum.copied += 1;
                self.sum.bytes += sx.size;
            }
            Type::Symlink => {
                self.rep.event(&Event::Linked {
                    path: &to,
                    target: &sx.target,
                });
                self.sum.links += 1;
            }
            Type::Dir if seen.is_some_and(|s| s.kind == Type::Dir) => {
                self.rep.event(&Event::Attrs { path: &to });
                self.sum.attrs += 1;
            }
            Type::Dir => {
                self.rep.event(&Event::CreatedDir { path: &to });
                self.sum.dirs_created += 1;
            }
        }
        if self.dry {
            return Ok(true);
        }
        let stamp = self.stamp.clone();
        match replica::copy_between(rx, ry, src_path, sx, dst_path, seen, &stamp, self.copy) {
            Ok(Installed::Done(ino)) => match self.carry_attrs(x, src_path, sx, dst_path) {
                Ok(()) => {
                    self.record(dst_path, x, sx, ino)?;
                    Ok(true)
                }
                Err(e) => {
                    self.fail(&to, e);
                    Ok(false)
                }
            },
            Ok(Installed::SourceChanged) => {
                self.changed(&from);
                Ok(false)
            }
            Ok(Installed::TargetChanged(alt)) => {
                let (parent, _) = split(dst_path);
                let alt_shown = ry.shown(&join(parent, &alt));
                self.sum.conflicts += 1;
                self.rep.event(&Event::Conflict {
                    path: &to,
                    copy: Some(&alt_shown),
                    message: "changed during the run: kept, and the other side's version saved beside it",
                });
                Ok(false)
            }
            Err(e) => {
                self.fail(&to, e);
                Ok(false)
            }
        }
    }

    fn copy(&mut self, path: &[u8], x: Side) -> Result<(), Error> {
        let (_, tx) = self.side(x);
        let (_, ty) = self.side(x.other());
        let sx = tx.entries[path].clone();
        let seen = ty.entries.get(path).cloned();
        self.copy_to(x, path, &sx, path, seen.as_ref())?;
        Ok(())
    }

    fn conflict(&mut self, path: &[u8], w: Side, what: ConflictKind) -> Result<(), Error> {
        let l = w.other();
        let (rw, tw) = self.side(w);
        let (rl, tl) = self.side(l);
        let (sw, sl) = (tw.entries[path].clone(), tl.entries[path].clone());
        let shown = self.ra.shown(path);
        self.sum.conflicts += 1;
        if what == ConflictKind::Metadata {
            let msg = format!(
                "attributes changed differently on both sides: {}'s (newer) applied to both",
                name(w)
            );
            self.rep.event(&Event::Conflict {
                path: &shown,
                copy: None,
                message: &msg,
            });
            if !self.dry {
                match rl.set_attrs(path, &sl, &sw, true) {
                    Ok(true) => match self.carry_attrs(w, path, &sw, path) {
                        Ok(()) => self.record(path, w, &sw, sl.ino)?,
                        Err(e) => self.fail(&rl.shown(path), e),
                    },
                    Ok(false) => self.changed(&rl.shown(path)),
                    Err(e) => self.fail(&rl.shown(path), e),
                }
            }
            return Ok(());
        }
        if what == ConflictKind::Content && self.delete_loser {
            let msg = format!("changed on both sides: {}'s version kept, the other deleted (--conflict-delete-loser)", name(w));
            self.rep.event(&Event::Conflict {
                path: &shown,
                copy: None,
                message: &msg,
            });
            self.copy_to(w, path, &sw, path, Some(&sl))?;
            return Ok(());
        }
        let (parent, fname) = split(path);
        let cpath = match free_conflict_path(rl, rw, parent, fname, &self.stamp) {
            Ok(p) => p,
            Err(e) => {
                self.fail(&shown, e);
                return Ok(());
            }
        };
        let msg = format!(
            "changed on both sides: {}'s version keeps the name, {}'s is the conflict copy on both sides",
            name(w),
            name(l)
        );
        let copy_shown = self.ra.shown(&cpath);
        self.rep.event(&Event::Conflict {
            path: &shown,
            copy: Some(&copy_shown),
            message: &msg,
        });
        if self.dry {
            return Ok(());
        }
        let moved = rl.rename(path, &cpath, &sl);
        match moved {
            Ok(true) => {}
            Ok(false) => {
                self.changed(&rl.shown(path));
                return Ok(());
            }
            Err(e) => {
                self.fail(&rl.shown(path), e);
                return Ok(());
            }
        }
        self.copy_to(w, path, &sw, path, None)?;
        self.copy_to(l, &cpath, &sl, &cpath, None)?;
        Ok(())
    }
}

/// A conflict name for `name` in `parent` free on both sides (labelled
/// with the loser `rl`'s label).
fn free_conflict_path(
    rl: &dyn Replica,
    rw: &dyn Replica,
    parent: &[u8],
    name: &[u8],
    stamp: &str,
) -> io::Result<Vec<u8>> {
    use crate::twoway::conflict_name::conflict_name;
    for n in 0..1000 {
        let p = join(parent, &conflict_name(name, stamp, rl.label(), n));
        if rl.stat(&p)?.is_none() && rw.stat(&p)?.is_none() {
            return Ok(p);
        }
    }
    let n = std::process::id();
    Ok(join(parent, &conflict_name(name, stamp, rl.label(), n)))
}
