//! The decision for one entry, from the metadata of both sides: a pure
//! function, no system call.

use super::options::Options;
use crate::stat::{Kind, Meta};

/// What to do with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do.
    Nothing,
    /// Remove DST's entry (SRC has none).
    Remove,
    /// A special file without `--specials`: report it skipped, and remove
    /// DST's entry when `remove` (DST must not keep what SRC lacks); a
    /// regular file larger than `--max-size`: report it skipped.
    Skip {
        /// DST has an entry there and deletions are on.
        remove: bool,
    },
    /// Recreate the special file (`--specials`) unless DST has the same.
    Special,
    /// Copy the regular file; first compare contents when `compare_first`
    /// (`--checksum`, same size) and only fix attributes if they match.
    Copy {
        /// Compare contents before copying.
        compare_first: bool,
    },
    /// Same file (by size and mtime, or size alone): fix mode/mtime only.
    FixAttrs,
    /// Sync the directory's contents; create it first (`create`), after
    /// removing what DST has there (`replace`).
    Dir {
        /// DST has no directory there.
        create: bool,
        /// DST has a non-directory there.
        replace: bool,
    },
    /// Recreate the symlink unless DST has one with the same target.
    Symlink,
}

/// The action making DST's entry (`dst`) equal to SRC's (`src`); `None`
/// is an absent entry.
pub fn decide(src: Option<&Meta>, dst: Option<&Meta>, opts: &Options) -> Action {
    let Some(s) = src else {
        return if dst.is_some() && !opts.no_delete {
            Action::Remove
        } else {
            Action::Nothing
        };
    };
    match (s.kind, dst) {
        (Kind::Special(_), _) if opts.specials => Action::Special,
        (Kind::Special(_), d) => Action::Skip {
            remove: d.is_some() && !opts.no_delete,
        },
        // `--max-size`: not copied, and DST's entry is left as it is.
        (Kind::File, _) if opts.max_size.is_some_and(|m| s.size > m) => {
            Action::Skip { remove: false }
        }
        (Kind::File, Some(d)) if d.kind == Kind::File => {
            if opts.hard_links && s.ids.nlink < 2 && d.ids.nlink > 1 {
                // A link broken in SRC: a copy of its own breaks it in DST.
                Action::Copy {
                    compare_first: false,
                }
            } else if opts.checksum {
                Action::Copy {
                    compare_first: d.size == s.size,
                }
            } else if d.size == s.size && (opts.size_only || d.same_mtime(s)) {
                Action::FixAttrs
            } else {
                Action::Copy {
                    compare_first: false,
                }
            }
        }
        (Kind::File, _) => Action::Copy {
            compare_first: false,
        },
        (Kind::Dir, Some(d)) => Action::Dir {
            create: d.kind != Kind::Dir,
            replace: d.kind != Kind::Dir,
        },
        (Kind::Dir, None) => Action::Dir {
            create: true,
            replace: false,
        },
        (Kind::Symlink, _) => Action::Symlink,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: Kind, size: u64, mtime: i64) -> Meta {
        Meta {
            kind,
            perm: 0o644,
            size,
            mtime,
            mtime_nsec: 0,
            ino: 1,
            dev: (0, 0),
            ids: crate::stat::Ids {
                nlink: 1,
                ..Default::default()
            },
        }
    }

    const FIFO: Kind = Kind::Special(libc::S_IFIFO);

    #[test]
    fn decision_table() {
        let file = m(Kind::File, 10, 100);
        let file_newer = m(Kind::File, 10, 200);
        let file_bigger = m(Kind::File, 20, 100);
        let dir = m(Kind::Dir, 0, 100);
        let link = m(Kind::Symlink, 3, 100);
        let fifo = m(FIFO, 0, 100);
        let plain = Options::default();
        let checksum = Options {
            checksum: true,
            ..Options::default()
        };
        let size_only = Options {
            size_only: true,
            ..Options::default()
        };
        let no_delete = Options {
            no_delete: true,
            ..Options::default()
        };
        let specials = Options {
            specials: true,
            ..Options::default()
        };
        let copy = Action::Copy {
            compare_first: false,
        };
        let hard_links = Options {
            hard_links: true,
            ..Options::default()
        };
        let mut linked = file;
        linked.ids.nlink = 2;
        #[rustfmt::skip]
        let table: &[(Option<&Meta>, Option<&Meta>, &Options, Action)] = &[
            // absent in SRC
            (None, None, &plain, Action::Nothing),
            (None, Some(&file), &plain, Action::Remove),
            (None, Some(&dir), &plain, Action::Remove),
            (None, Some(&file), &no_delete, Action::Nothing),
            // regular files
            (Some(&file), None, &plain, copy),
            (Some(&file), Some(&file), &plain, Action::FixAttrs),
            (Some(&file), Some(&file_newer), &plain, copy),
            (Some(&file), Some(&file_bigger), &plain, copy),
            (Some(&file), Some(&file_newer), &size_only, Action::FixAttrs),
            (Some(&file), Some(&file_bigger), &size_only, copy),
            (Some(&file), Some(&file), &checksum, Action::Copy { compare_first: true }),
            (Some(&file), Some(&file_newer), &checksum, Action::Copy { compare_first: true }),
            (Some(&file), Some(&file_bigger), &checksum, copy),
            (Some(&file), Some(&dir), &plain, copy),
            (Some(&file), Some(&link), &plain, copy),
            // directories
            (Some(&dir), None, &plain, Action::Dir { create: true, replace: false }),
            (Some(&dir), Some(&dir), &plain, Action::Dir { create: false, replace: false }),
            (Some(&dir), Some(&file), &plain, Action::Dir { create: true, replace: true }),
            (Some(&dir), Some(&link), &no_delete, Action::Dir { create: true, replace: true }),
            // symlinks
            (Some(&link), None, &plain, Action::Symlink),
            (Some(&link), Some(&link), &plain, Action::Symlink),
            (Some(&link), Some(&dir), &plain, Action::Symlink),
            // special files
            (Some(&fifo), None, &plain, Action::Skip { remove: false }),
            (Some(&fifo), Some(&file), &plain, Action::Skip { remove: true }),
            (Some(&fifo), Some(&file), &no_delete, Action::Skip { remove: false }),
            (Some(&fifo), None, &specials, Action::Special),
            (Some(&fifo), Some(&fifo), &specials, Action::Special),
            // -H: a DST file with several names whose SRC has one name
            (Some(&file), Some(&linked), &hard_links, copy),
            (Some(&file), Some(&linked), &plain, Action::FixAttrs),
            (Some(&linked), Some(&linked), &hard_links, Action::FixAttrs),
        ];
        for (i, (s, d, o, want)) in table.iter().enumerate() {
            assert_eq!(decide(*s, *d, o), *want, "row {i}: {s:?} {d:?}");
        }
    }

    #[test]
    fn max_size_skips_larger_files_and_keeps_dst() {
        let (small, big) = (m(Kind::File, 10, 100), m(Kind::File, 20, 100));
        let o = Options {
            max_size: Some(10),
            ..Options::default()
        };
        let skip = Action::Skip { remove: false };
        assert_eq!(decide(Some(&big), Some(&small), &o), skip);
        assert_eq!(decide(Some(&big), None, &o), skip);
        let copy = Action::Copy {
            compare_first: false,
        };
        assert_eq!(decide(Some(&small), Some(&big), &o), copy);
    }
}
