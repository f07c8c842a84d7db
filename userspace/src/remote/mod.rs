//! Remote replicas over ssh: `dirsync SRC host:DST` (push) and
//! `dirsync host:SRC DST` (pull).
//!
//! The client runs a transport command (`ssh host dirsync --server`,
//! [`transport`]) and talks to it in length-prefixed binary frames
//! ([`protocol::frame`]) carrying the messages of [`protocol::messages`]:
//!
//! 1. **Handshake**: the server sends its `Hello` (magic, protocol
//!    version, program version, features) as soon as it starts; the
//!    client checks it and answers with its own. Different protocol
//!    versions: a clear error naming both. The feature bits of both are
//!    ANDed (compression, delta: layers inserted under the frames after
//!    the handshake, see [`protocol::frame::FrameWriter::map`]; the
//!    attributes of `-H -A -X -o -g -S`, [`protocol::fidelity`]: a client
//!    asking for them of a peer without that bit stops with an error).
//! 2. **Setup**: the client says what the server does (be the agent of
//!    DST, or run the engine on its SRC) with the options; the server
//!    answers `Ready` or `Refuse` (a message for the user).
//! 3. **Sync**: the side that has SRC runs the ordinary engine
//!    ([`crate::sync::Syncer`]); its DST is a [`replica::RemoteReplica`]
//!    reaching the other side's [`agent`] through a [`link::Link`]. The
//!    agent lists and stats its own tree with its own backend, one
//!    directory per exchange, and carries out changes sent without
//!    waiting: no round trip per file, and no side holds more than a few
//!    directories' listings (the engine's own bound).
//! 4. **End**: push: a barrier, then `Bye`; pull: the server sends its
//!    events as they happen and a `Done` with the summary.
//!
//! [`client`] has push and pull; [`server`] is `dirsync --server`.

pub mod agent;
pub mod client;
pub mod confine;
pub mod delta;
pub mod deploy;
pub mod link;
mod prefetch;
pub mod protocol;
pub mod pull_watch;
pub mod replica;
pub mod root;
pub mod server;
pub mod spec;
pub mod transport;
pub mod twoway_agent;
pub mod twoway_side;
pub mod watch;
pub mod watch_src;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::stat::BackendChoice;
use crate::sync::Options;
use protocol::messages::*;

/// Why a remote run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The transport command could not be started.
    #[error("cannot run the transport command '{rsh}'")]
    Spawn {
        /// The command.
        rsh: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The remote side has no dirsync (the shell said 127).
    #[error(
        "{host}: no dirsync found there (remote command '{command}' was not found); \
         install it, give its path with --remote-path, or use --deploy to upload this one"
    )]
    NotFound {
        /// The host.
        host: String,
        /// The remote command.
        command: String,
    },
    /// The transport ended before the handshake (ssh could not connect
    /// or authenticate: its own message is above).
    #[error("{host}: the connection ended before the handshake ({status})")]
    NoHandshake {
        /// The host.
        host: String,
        /// How the transport command ended.
        status: String,
    },
    /// The two sides speak different protocol versions.
    #[error(
        "{host}: protocol version mismatch: this dirsync {local_version} speaks protocol \
         {local}, the remote dirsync {remote_version} speaks protocol {remote}; \
         install the same version there or use --deploy"
    )]
    Version {
        /// The host.
        host: String,
        /// Our protocol.
        local: u32,
        /// Our program version.
        local_version: String,
        /// Theirs.
        remote: u32,
        /// Their program version.
        remote_version: String,
    },
    /// The remote side refused or reported a fatal error.
    #[error("{host}: {message}")]
    Remote {
        /// The host.
        host: String,
        /// Its message.
        message: String,
    },
    /// The peer broke the protocol or the connection failed.
    #[error("{host}: {message}")]
    Protocol {
        /// The host.
        host: String,
        /// What happened.
        message: String,
    },
    /// A local failure of the sync itself.
    #[error(transparent)]
    Sync(#[from] crate::Error),
    /// `dirsync watch host:SRC DST` with a server that cannot watch (its
    /// hello lacks `FEATURE_WATCH`): refused before the setup, nothing
    /// changed.
    #[error(
        "{host}: the remote dirsync {version} cannot watch its tree (watch host:SRC DST); \
         install the same version there or use --deploy"
    )]
    NoWatch {
        /// The host.
        host: String,
        /// Its program version.
        version: String,
    },
}

/// The option bits of `o`.
pub fn flags(o: &Options) -> u32 {
    let mut f = 0;
    for (on, bit) in [
        (o.dry_run, OPT_DRY_RUN),
        (o.no_delete, OPT_NO_DELETE),
        (o.size_only, OPT_SIZE_ONLY),
        (o.no_recursive, OPT_NO_RECURSIVE),
        (o.checksum, OPT_CHECKSUM),
        (o.fsync, OPT_FSYNC),
        (o.specials, OPT_SPECIALS),
        (o.hard_links, OPT_HARD_LINKS),
        (o.acls, OPT_ACLS),
        (o.xattrs, OPT_XATTRS),
        (o.owner, OPT_OWNER),
        (o.group, OPT_GROUP),
        (o.sparse, OPT_SPARSE),
        (o.numeric_ids, OPT_NUMERIC_IDS),
    ] {
        if on {
            f |= bit;
        }
    }
    f
}

/// The setup's options as the engine's.
pub fn options_of(s: &Setup) -> Options {
    let on = |bit| s.flags & bit != 0;
    let o = Options {
        dry_run: on(OPT_DRY_RUN),
        no_delete: on(OPT_NO_DELETE),
        size_only: on(OPT_SIZE_ONLY),
        no_recursive: on(OPT_NO_RECURSIVE),
        checksum: on(OPT_CHECKSUM),
        excludes: s
            .excludes
            .iter()
            .map(|e| OsString::from_vec(e.clone()))
            .collect(),
        fsync: on(OPT_FSYNC),
        stat_backend: match s.backend {
            1 => BackendChoice::Syscall,
            2 => BackendChoice::Statx,
            _ => BackendChoice::Auto,
        },
        specials: on(OPT_SPECIALS),
        jobs: s.jobs as usize,
        defer_changing: false,
        max_size: (s.max_size != u64::MAX).then_some(s.max_size),
        // -H -A -X -o -g -S: only sent to a peer with FEATURE_FIDELITY.
        hard_links: on(OPT_HARD_LINKS),
        acls: on(OPT_ACLS),
        xattrs: on(OPT_XATTRS),
        owner: on(OPT_OWNER),
        group: on(OPT_GROUP),
        sparse: on(OPT_SPARSE),
        numeric_ids: on(OPT_NUMERIC_IDS),
        ..Options::default()
    };
    with_ids_backend(o)
}

/// `o`, with the statx backend when an option needs owner, group or
/// link count (not in `dirsync_stat`'s ABI): for the side that lists.
pub fn with_ids_backend(mut o: Options) -> Options {
    if o.needs_ids() {
        o.stat_backend = BackendChoice::Statx;
    }
    o
}

/// A setup asking for `role` on `path` with the options `o`.
pub fn setup(role: Role, path: &std::path::Path, o: &Options) -> Setup {
    Setup {
        role,
        path: path.as_os_str().as_bytes().to_vec(),
        flags: flags(o),
        backend: match o.stat_backend {
            BackendChoice::Auto => 0,
            BackendChoice::Syscall => 1,
            BackendChoice::Statx => 2,
        },
        jobs: o.jobs as u32,
        excludes: o.excludes.iter().map(|e| e.as_bytes().to_vec()).collect(),
        label: Vec::new(),
        dst_exists: true,
        bwlimit: 0,
        max_size: o.max_size.unwrap_or(u64::MAX),
    }
}

/// Our hello, offering `features` (a subset of [`FEATURES`]).
pub fn hello(features: u64) -> Hello {
    Hello {
        protocol: PROTOCOL,
        version: env!("CARGO_PKG_VERSION").as_bytes().to_vec(),
        features: features & FEATURES,
    }
}
