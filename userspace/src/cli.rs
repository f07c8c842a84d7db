//! The command line: `dirsync SRC DST`, `dirsync watch SRC DST`, and the
//! generated extras (`completions`, `man`). [`SyncArgs`] holds the options
//! both modes share.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Verbosity;
use dirsync::stat::BackendChoice;
use dirsync::sync::Options;

/// The exit codes, shown after `--help` and in the man page.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success: DST is an exact replica of SRC
  1  usage error (bad or missing arguments)
  2  partial failure: some entries could not be synced (reported), all others were;
     also when an attribute asked for could not be applied (-o without root:
     one warning, everything else synced)
  3  fatal: nothing was done or the run had to stop (SRC missing or not a directory,
     SRC and DST the same or nested, out of space, --stat-backend syscall on a
     kernel without dirsync_stat or dirsync_readdir, remote host unreachable,
     no dirsync there, protocol version mismatch, connection lost, no data for
     --timeout, ...)";

/// The one-line usage of the report, printed when run without arguments.
pub const SHORT_USAGE: &str = "Usage: dirsync <source_dir> <destination_dir>";

/// `--stat-backend` values: how metadata is read, for single paths and
/// for whole directories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// Each call the running kernel is verified to have: directories with
    /// dirsync_readdir (else getdents64 + a stat per entry), single paths
    /// with dirsync_stat (else statx)
    #[default]
    Auto,
    /// dirsync_readdir and dirsync_stat; an error (exit 3) when the kernel
    /// lacks either
    Syscall,
    /// getdents64 + statx(2) always
    Statx,
}

impl From<BackendArg> for BackendChoice {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Syscall => BackendChoice::Syscall,
            BackendArg::Statx => BackendChoice::Statx,
        }
    }
}

/// Options shared by `dirsync SRC DST` and `dirsync watch SRC DST`.
#[derive(Args, Clone, Debug, Default)]
pub struct SyncArgs {
    /// Show what would be done; change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Keep entries in DST that SRC lacks
    #[arg(long)]
    pub no_delete: bool,
    /// Compare regular files by size only (not mtime)
    #[arg(long, conflicts_with = "checksum")]
    pub size_only: bool,
    /// Only the top level of SRC: no subdirectories (report phase 1)
    #[arg(long)]
    pub no_recursive: bool,
    /// Compare regular files of equal size by content, not by mtime
    #[arg(short = 'c', long)]
    pub checksum: bool,
    /// Exclude entries matching PATTERN (gitignore-style; repeatable).
    /// Excluded entries are neither copied nor deleted
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<OsString>,
    /// fsync every copied file before it gets its final name
    #[arg(long)]
    pub fsync: bool,
    /// Recreate FIFOs, sockets and device nodes instead of skipping them
    /// (device nodes need root)
    #[arg(long)]
    pub specials: bool,
    /// Metadata backend (`-v` prints the one in use)
    #[arg(
        long,
        value_enum,
        value_name = "BACKEND",
        env = "DIRSYNC_STAT_BACKEND",
        default_value = "auto"
    )]
    pub stat_backend: BackendArg,
    /// One line per action on stdout (`Copied: a -> b`, `Deleted: x`, ...)
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// No warnings; errors only
    #[arg(short, long)]
    pub quiet: bool,
    /// One JSON object per action on stdout, then a summary object
    #[arg(long)]
    pub json: bool,
    /// Never show the progress line (shown on a terminal for long runs)
    #[arg(long)]
    pub no_progress: bool,
    /// Archive: all of -H -A -X -o -g -S (an exact replica: see the README,
    /// "What exact replica means")
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Hard links: names of one SRC file become names of one DST file
    #[arg(short = 'H', long)]
    pub hard_links: bool,
    /// POSIX ACLs (access ACLs, and default ACLs of directories)
    #[arg(short = 'A', long)]
    pub acls: bool,
    /// Extended attributes: user.*, and as root trusted.* and security.*
    /// (file capabilities, SELinux labels)
    #[arg(short = 'X', long)]
    pub xattrs: bool,
    /// Owner (files of other users: root only; otherwise a warning, exit 2)
    #[arg(short = 'o', long)]
    pub owner: bool,
    /// Group (root, or groups the caller is a member of)
    #[arg(short = 'g', long)]
    pub group: bool,
    /// Owner and group by number, not mapped by user/group name
    #[arg(long)]
    pub numeric_ids: bool,
    /// Sparse files: recreate holes (only data is written)
    #[arg(short = 'S', long)]
    pub sparse: bool,
    /// Never clone file content (reflinks are used by default where SRC and
    /// DST share a file system that has them: btrfs, xfs)
    #[arg(long)]
    pub no_reflink: bool,
    /// The command that reaches a remote host (`[user@]host:PATH`): it is
    /// run with the host and the remote command, and must give a byte
    /// stream to it
    #[arg(
        short = 'e',
        long,
        value_name = "CMD",
        default_value = "ssh",
        env = "DIRSYNC_RSH"
    )]
    pub rsh: String,
    /// The dirsync to run on the remote host (default: `dirsync` on its PATH)
    #[arg(long, value_name = "PATH")]
    pub remote_path: Option<OsString>,
    /// Upload this dirsync to the remote host
    /// (~/.cache/dirsync/agent-VERSION-HASH, checked by hash) and run that
    #[arg(long)]
    pub deploy: bool,
    /// Compress the stream to a remote host with zstd
    #[arg(short = 'z', long)]
    pub compress: bool,
    /// Limit the bytes sent to (or from) a remote host per second, as
    /// rsync does: a number of KiB, or with a suffix B, K, M, G (powers
    /// of 1024) or KB, MB, GB (powers of 1000), e.g. 5M; 0: no limit
    #[arg(long, value_name = "RATE", value_parser = parse_bwlimit)]
    pub bwlimit: Option<u64>,
    /// Remote runs: no data received from the other side for SECONDS
    /// ends the run (exit 3; a watch to host:DST reconnects). Both sides send
    /// keepalives when idle, so a slow but live link is not cut (a peer
    /// older than keepalives may be cut in a long silent phase). 0: no
    /// timeout
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
    /// Do not copy regular files larger than SIZE (bytes, or with a
    /// suffix K, M, G: powers of 1024; KB, MB, GB: powers of 1000); as
    /// rsync's, it is the receiver's rule: a remote DST refuses them too
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// Threads working on the sync (default: one per core)
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
}

impl SyncArgs {
    /// The engine options these arguments ask for.
    pub fn options(&self) -> Options {
        Options {
            dry_run: self.dry_run,
            no_delete: self.no_delete,
            size_only: self.size_only,
            no_recursive: self.no_recursive,
            checksum: self.checksum,
            excludes: self.exclude.clone(),
            fsync: self.fsync,
            stat_backend: self.stat_backend.into(),
            specials: self.specials,
            jobs: self.jobs.map_or(0, usize::from),
            defer_changing: false,
            hard_links: self.hard_links || self.archive,
            acls: self.acls || self.archive,
            xattrs: self.xattrs || self.archive,
            owner: self.owner || self.archive,
            group: self.group || self.archive,
            numeric_ids: self.numeric_ids,
            sparse: self.sparse || self.archive,
            no_reflink: self.no_reflink,
            max_size: self.max_size,
        }
    }

    /// How to reach a remote side.
    pub fn connect(&self) -> dirsync::remote::client::Connect {
        dirsync::remote::client::Connect {
            rsh: self.rsh.clone(),
            remote_path: self.remote_path.clone(),
            deploy: self.deploy,
            compress: self.compress,
            bwlimit: self.bwlimit.filter(|&r| r > 0),
            timeout: (self.timeout > 0).then(|| std::time::Duration::from_secs(self.timeout)),
        }
    }

    /// How chatty human output is.
    pub fn verbosity(&self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

/// What `--server` and its options (`--root`, `--read-only`,
/// `--write-only`) do not go with: SRC, DST and every sync option (the
/// group clap makes of [`SyncArgs`]); subcommands neither
/// (`args_conflicts_with_subcommands`).
const SERVER_ONLY: [&str; 3] = ["src", "dst", "SyncArgs"];

/// `dirsync`: make DST an exact replica of SRC.
#[derive(Parser, Debug)]
#[command(
    name = "dirsync",
    version,
    about = "Make a directory an exact replica of another, once or in real time",
    long_about = "Make DST an exact replica of SRC: regular files (content, size, \
mtime to the nanosecond, permission bits), directories, symlinks (never followed); \
entries DST has and SRC lacks are removed. FIFOs, sockets and devices are skipped \
with a warning (or recreated, with --specials). With -a (or -H -A -X -o -g -S) also \
hard links, ACLs, extended attributes, owner, group and holes of sparse files.\n\n\
`dirsync watch SRC DST` keeps doing it as SRC changes.",
    after_help = EXIT_CODES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// Run as the remote side of a remote sync (on stdin/stdout)
    #[arg(long, hide = true, conflicts_with_all = SERVER_ONLY)]
    pub server: bool,
    /// With --server: serve only the tree DIR (resolved once, at start);
    /// every path the client names is taken relative to DIR (a leading `/`
    /// too) and may not leave it (`..` or a symlinked component: refused).
    /// For a forced command in `authorized_keys`
    #[arg(long, hide = true, value_name = "DIR", conflicts_with_all = SERVER_ONLY)]
    pub root: Option<PathBuf>,
    /// With --server: refuse to be the destination of a push
    #[arg(long, hide = true, conflicts_with_all = SERVER_ONLY, conflicts_with = "write_only")]
    pub read_only: bool,
    /// With --server: refuse to be the source of a pull
    #[arg(long, hide = true, conflicts_with_all = SERVER_ONLY)]
    pub write_only: bool,
    /// Source directory ([user@]host:PATH for a remote one)
    #[arg(value_name = "SRC", requires = "dst")]
    pub src: Option<PathBuf>,
    /// Destination directory, created if missing ([user@]host:PATH for a
    /// remote one)
    #[arg(value_name = "DST")]
    pub dst: Option<PathBuf>,
    #[command(flatten)]
    pub args: SyncArgs,
    #[command(flatten)]
    pub two_way: TwoWayArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--conflict` values: who wins a two-way conflict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ConflictArg {
    /// The newer mtime keeps the name; the other version becomes a
    /// `.sync-conflict-` copy on both sides
    #[default]
    KeepBoth,
    /// The newer mtime wins (the loser is kept as a conflict copy unless
    /// --conflict-delete-loser)
    Newer,
    /// A wins (the loser is kept as a conflict copy unless
    /// --conflict-delete-loser)
    A,
    /// B wins (the loser is kept as a conflict copy unless
    /// --conflict-delete-loser)
    B,
}

/// Two-way sync: `dirsync --two-way A B` (see the README, "Two-way sync").
#[derive(Args, Clone, Debug, Default)]
pub struct TwoWayArgs {
    /// Two-way sync of SRC and DST (called A and B): changes on either
    /// side propagate, conflicts keep both versions
    #[arg(long)]
    pub two_way: bool,
    /// The pair's archive (default: ${XDG_STATE_HOME:-~/.local/state}/dirsync/
    /// twoway-HASH.db, HASH derived from both roots)
    #[arg(long, value_name = "FILE", requires = "two_way")]
    pub state: Option<PathBuf>,
    /// Who wins a conflict
    #[arg(
        long,
        value_enum,
        value_name = "HOW",
        default_value = "keep-both",
        requires = "two_way"
    )]
    pub conflict: ConflictArg,
    /// The loser of a conflict is deleted, not kept as a conflict copy
    #[arg(long, requires = "two_way")]
    pub conflict_delete_loser: bool,
    /// Stop (exit 3, nothing changed) when more than PERCENT of the
    /// archived entries would be deleted; 100: no limit
    #[arg(long, value_name = "PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=100), requires = "two_way")]
    pub max_delete: u8,
    /// Sync even though a root is empty or on another device than at the
    /// last sync (an unmounted disk looks like that)
    #[arg(long, requires = "two_way")]
    pub force: bool,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sync once, then keep DST a replica as SRC changes (inotify)
    #[command(after_help = EXIT_CODES)]
    Watch {
        /// Source directory
        #[arg(value_name = "SRC")]
        src: PathBuf,
        /// Destination directory, created if missing ([user@]host:PATH
        /// for a remote one: one connection, reconnected when it drops)
        #[arg(value_name = "DST")]
        dst: PathBuf,
        #[command(flatten)]
        args: SyncArgs,
        /// `watch --two-way A B`: both roots watched, changes on either
        /// side propagate (README, "Two-way sync")
        #[command(flatten)]
        two_way: TwoWayArgs,
    },
    /// Print a shell completion script to stdout
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout
    Man,
    /// Run the sync pairs of a config file (foreground; systemd Type=notify)
    Daemon(crate::daemon_cmd::DaemonArgs),
    /// Show the running daemon's pairs
    Status(crate::daemon_cmd::StatusArgs),
    /// Pause a pair of the running daemon
    Pause(crate::daemon_cmd::PairArgs),
    /// Resume a paused pair (its source is rescanned)
    Resume(crate::daemon_cmd::PairArgs),
    /// Sync a pair now; exits with that sync's code
    SyncNow(crate::daemon_cmd::PairArgs),
}

/// `--max-size SIZE` in bytes ([`dirsync::units`]: a bare number is
/// bytes).
fn parse_size(s: &str) -> Result<u64, String> {
    dirsync::units::parse_size(s)
        .ok_or_else(|| format!("'{s}' is not a size (e.g. 500, 100K, 1.5M, 2G)"))
}

/// `--bwlimit RATE` in bytes per second (0: no limit).
fn parse_bwlimit(s: &str) -> Result<u64, String> {
    dirsync::transfer::bwlimit::parse_rate(s)
        .map(|r| r.unwrap_or(0))
        .map_err(|e| e.to_string())
}
