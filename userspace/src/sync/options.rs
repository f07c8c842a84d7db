//! What a run does and how it compares ([`Options`]).

use crate::stat::BackendChoice;

/// What a run does and how it decides that two entries differ.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Print what would be done, change nothing.
    pub dry_run: bool,
    /// Keep DST entries that SRC lacks.
    pub no_delete: bool,
    /// Compare regular files by size only.
    pub size_only: bool,
    /// Only the top level of SRC (the report's phase 1).
    pub no_recursive: bool,
    /// Compare regular files of equal size by content (block by block).
    pub checksum: bool,
    /// gitignore-style patterns, matched against names relative to SRC.
    pub excludes: Vec<std::ffi::OsString>,
    /// fsync each copied file before renaming it into place.
    pub fsync: bool,
    /// Which metadata backend to use.
    pub stat_backend: BackendChoice,
    /// Recreate FIFOs, sockets and device nodes in DST (devices need root)
    /// instead of skipping them.
    pub specials: bool,
    /// Threads working on a run (`-j`); 0: one per core.
    pub jobs: usize,
    /// A file that keeps changing during its copy is not an error but left
    /// for the caller to retry ([`super::Syncer::take_unsettled`]): set by
    /// the watcher, whose next event or back-off copies it once its writer
    /// settles.
    pub defer_changing: bool,
    /// `-H`: names of one SRC inode become names of one DST inode.
    pub hard_links: bool,
    /// `-A`: POSIX ACLs (`system.posix_acl_access`/`_default`).
    pub acls: bool,
    /// `-X`: extended attributes (every namespace the caller may use).
    pub xattrs: bool,
    /// `-o`: the owner (needs root for files of other users).
    pub owner: bool,
    /// `-g`: the group (root, or a group the caller is a member of).
    pub group: bool,
    /// `--numeric-ids`: owner and group by number, never by name.
    pub numeric_ids: bool,
    /// `-S`: holes of sparse files are recreated (only data is written).
    pub sparse: bool,
    /// `--no-reflink`: never clone file content (FICLONE or a
    /// `copy_file_range` that would share extents).
    pub no_reflink: bool,
    /// `--max-size`: regular files larger than this many bytes are not
    /// copied (skipped and reported; DST's copy, if any, is left alone);
    /// the receiving side of a remote run enforces it too.
    pub max_size: Option<u64>,
}

impl Options {
    /// The metadata backend the walk uses: with `-o`, `-g` or `-H`, the
    /// system calls only when the running kernel gives owner, group and
    /// link count (`stat::select_for`), else statx.
    pub fn backend(&self) -> crate::Result<std::sync::Arc<dyn crate::stat::StatBackend>> {
        let backend = crate::stat::select_for(
            self.stat_backend,
            self.needs_ids(),
            &crate::stat::sysfs_dir(),
        )?;
        Ok(std::sync::Arc::from(backend))
    }

    /// Whether an option needs owner, group or link count (only the statx
    /// backend has them).
    pub fn needs_ids(&self) -> bool {
        self.hard_links || self.owner || self.group
    }

    /// Whether extended attributes (all, or only the ACL ones) are synced.
    pub fn any_xattrs(&self) -> bool {
        self.xattrs || self.acls
    }

    /// The number of threads `jobs` asks for (0: one per core), 1 to 64.
    pub fn threads(&self) -> usize {
        let n = match self.jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        n.clamp(1, 64)
    }
}
