//! The messages of the protocol and their encoding (see the module docs
//! of [`super`] for the conversation).
//!
//! Every message is one frame ([`super::frame`]): a type byte, then its
//! fields in order ([`super::fields`]). Decoding is strict: unknown types,
//! truncated or trailing bytes, out-of-range values and names that are not
//! one path component are [`ProtoError`]s.

use std::ffi::CString;

use super::fields::check_name;
pub use super::fields::ProtoError;
pub use crate::attrs::xattr::Xattrs;
use crate::stat::Meta;
use crate::sync::replica::Linked;
use crate::sync::{Attrs, Over};

/// The protocol version this build speaks. Peers must speak the same.
/// 2: delta signatures carry their strong hash length (encoding 2 of
/// `transfer::delta::wire`). 3: the setup carries the receiver's
/// `--max-size` and `Special` types are checked (a peer of 2 would read the
/// new field as trailing bytes: the version check says it clearly first).
pub const PROTOCOL: u32 = 3;
/// The first bytes of a hello.
pub const MAGIC: &[u8; 4] = b"DSYN";
/// Feature bit: zstd compression of the stream after the handshake.
pub const FEATURE_ZSTD: u64 = 1;
/// Feature bit: delta transfer (a receiver's signature, then delta ops).
pub const FEATURE_DELTA: u64 = 2;
/// Feature bit: [`Msg::FileBegin`] may say `fresh` (the sender knows the
/// name is new in DST: the receiver may write the file unnamed and give it
/// its name once, as a local copy does). A receiver without it gets the
/// flag byte of earlier builds (`compare` alone).
pub const FEATURE_FRESH: u64 = 4;
/// Feature bit: keepalive frames ([`KEEPALIVE`]) when a side has sent
/// nothing for a while (see `protocol::alive`). A peer without it never
/// gets one.
pub const FEATURE_KEEPALIVE: u64 = 8;
/// The kind byte of a keepalive frame: its payload is the sender's
/// `--timeout` in seconds (u32 LE, 0: none). It is not a [`Msg`]: the
/// frame reader takes it in (`FrameReader::accept_keepalives`).
pub const KEEPALIVE: u8 = 46;
/// Files at least this big get a plan from the receiver (with
/// [`FEATURE_DELTA`]).
pub const DELTA_MIN: u64 = 1 << 20;
/// Feature bit: the attributes of `-H -A -X -o -g -S` (owner, group,
/// link count and an "has extended attributes" bit in listings, and the
/// messages of `protocol::fidelity`). A client asking for any of those
/// options of a peer without it stops with a clear error: an older peer
/// would drop them silently.
pub const FEATURE_FIDELITY: u64 = 16;
/// Feature bit: the server can watch its SRC for a pull (`dirsync watch
/// host:SRC DST`, `protocol::watch`).
pub const FEATURE_WATCH: u64 = 64;
/// The features this build implements.
pub const FEATURES: u64 = FEATURE_ZSTD
    | FEATURE_DELTA
    | FEATURE_FRESH
    | FEATURE_KEEPALIVE
    | FEATURE_FIDELITY
    | FEATURE_WATCH
    | FEATURE_TWOWAY;
/// Feature bit: the agent serves a two-way engine (`Role::TwoWay`, the
/// messages of `protocol::twoway`).
pub const FEATURE_TWOWAY: u64 = 32;

/// The first message each side sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// [`PROTOCOL`] of the sender.
    pub protocol: u32,
    /// The sender's program version (`CARGO_PKG_VERSION`).
    pub version: Vec<u8>,
    /// Feature bits the sender implements (client) or accepts (server).
    pub features: u64,
}

/// What the client asks of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Push: the server is the agent of DST (the client runs the engine).
    Agent,
    /// Pull: the server runs the engine with its SRC; the client is the
    /// agent of DST.
    Engine,
    /// Two-way: the server is the agent of its tree for a two-way engine
    /// on the client (`protocol::twoway`); its root must exist.
    TwoWay,
}

/// The client's request after the hellos.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// What the server does.
    pub role: Role,
    /// The server's root (DST for [`Role::Agent`], SRC for [`Role::Engine`]).
    pub path: Vec<u8>,
    /// Option bits (`OPT_*`).
    pub flags: u32,
    /// `--stat-backend`: 0 auto, 1 syscall, 2 statx.
    pub backend: u8,
    /// `-j` (0: one per core).
    pub jobs: u32,
    /// `--exclude` patterns.
    pub excludes: Vec<Vec<u8>>,
    /// Pull: how the client's DST is shown in events; whether it exists.
    pub label: Vec<u8>,
    /// Pull: the client's DST exists (a dry run leaves a missing one so).
    pub dst_exists: bool,
    /// `--bwlimit` in bytes per second (0: none): each side limits what
    /// it writes.
    pub bwlimit: u64,
    /// `--max-size` in bytes (`u64::MAX`: none): files larger are not
    /// received.
    pub max_size: u64,
}

/// Option bits of [`Setup::flags`].
pub const OPT_DRY_RUN: u32 = 1;
/// `--no-delete`.
pub const OPT_NO_DELETE: u32 = 2;
/// `--size-only`.
pub const OPT_SIZE_ONLY: u32 = 4;
/// `--no-recursive`.
pub const OPT_NO_RECURSIVE: u32 = 8;
/// `--checksum`.
pub const OPT_CHECKSUM: u32 = 16;
/// `--fsync`.
pub const OPT_FSYNC: u32 = 32;
/// `--specials`.
pub const OPT_SPECIALS: u32 = 64;
/// Pull: the client created its DST for this run.
pub const OPT_DST_CREATED: u32 = 128;
/// `-H` (with [`FEATURE_FIDELITY`], as the six below).
pub const OPT_HARD_LINKS: u32 = 1 << 8;
/// `-A`.
pub const OPT_ACLS: u32 = 1 << 9;
/// `-X`.
pub const OPT_XATTRS: u32 = 1 << 10;
/// `-o`.
pub const OPT_OWNER: u32 = 1 << 11;
/// `-g`.
pub const OPT_GROUP: u32 = 1 << 12;
/// `-S`.
pub const OPT_SPARSE: u32 = 1 << 13;
/// `--numeric-ids`.
pub const OPT_NUMERIC_IDS: u32 = 1 << 14;
/// The option bits only a peer with [`FEATURE_FIDELITY`] understands.
pub const OPT_FIDELITY: u32 =
    OPT_HARD_LINKS | OPT_ACLS | OPT_XATTRS | OPT_OWNER | OPT_GROUP | OPT_SPARSE;

/// One entry of a directory listing, with what the engine asks of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name (one component).
    pub name: CString,
    /// `DT_*` from the listing.
    pub d_type: u8,
    /// Metadata (`Ok(None)`: vanished), or the errno of the stat.
    pub meta: Result<Option<Meta>, i32>,
    /// A symlink's target (read with the listing).
    pub link: Option<Vec<u8>>,
    /// A device's number.
    pub rdev: (u32, u32),
    /// It has extended attributes of those the run syncs (`-X`/`-A`,
    /// [`FEATURE_FIDELITY`]; `false` otherwise).
    pub xattrs: bool,
}

/// A successful reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Done.
    Unit,
    /// Yes or no.
    Bool(bool),
    /// A stat.
    Meta(Option<Meta>),
    /// The receiver's plan for a file (see [`Msg::FileBegin`]): `None`:
    /// send it whole; `Some`: the signature of the receiver's copy, to
    /// send delta ops against.
    Plan(Option<Vec<u8>>),
    /// Extended attributes ([`Msg::GetXattrs`]).
    Xattrs(Xattrs),
    /// How a hard link ended ([`Msg::HardLink`]).
    Linked(Linked),
    /// The receiving side's id for a name ([`Msg::MapId`]).
    Id(u32),
}

/// Which asynchronous operation a [`Msg::Note`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum NoteOp {
    /// Opening a directory handle.
    Open = 0,
    /// `create_dir`.
    CreateDir = 1,
    /// `remove` (errno 0: `count` entries removed).
    Remove = 2,
    /// `set_attrs`.
    SetAttrs = 3,
    /// `install_symlink` (errno 0: `count` removed in the way).
    Symlink = 4,
    /// `install_special` (errno 0: `count` removed in the way).
    Special = 5,
    /// Receiving a file (errno 0: `count` removed in the way).
    Copy = 6,
    /// `-o`/`-g`: setting owner or group.
    Owner = 7,
    /// `-X`/`-A`: setting extended attributes.
    Xattrs = 8,
}

impl NoteOp {
    pub(crate) fn from_u8(v: u8) -> Result<Self, ProtoError> {
        use NoteOp::*;
        Ok(match v {
            0 => Open,
            1 => CreateDir,
            2 => Remove,
            3 => SetAttrs,
            4 => Symlink,
            5 => Special,
            6 => Copy,
            7 => Owner,
            8 => Xattrs,
            _ => return Err(ProtoError::BadValue("note kind")),
        })
    }
}

/// An event of the engine, sent to the client in a pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireEvent {
    /// The `Event` variant (see `remote::events`).
    pub kind: u8,
    /// First path.
    pub a: Vec<u8>,
    /// Second path or a link target.
    pub b: Vec<u8>,
    /// Message text.
    pub text: Vec<u8>,
    /// A count.
    pub count: u64,
}

/// Every message of the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// First message of each side.
    Hello(Hello),
    /// The client's request.
    Setup(Setup),
    /// The server took the setup; `created`: it created its root.
    Ready {
        /// The root was created now.
        created: bool,
        /// The root exists (a dry run does not create it).
        exists: bool,
    },
    /// A fatal error of the peer (text for the user).
    Refuse(Vec<u8>),
    /// Opens handle `id`: the root (`name` `None`, `parent` 0) or the
    /// subdirectory `name` of handle `parent`.
    Open {
        /// New handle.
        id: u32,
        /// Parent handle.
        parent: u32,
        /// Subdirectory.
        name: Option<CString>,
    },
    /// Forgets a handle.
    Close {
        /// Handle.
        id: u32,
    },
    /// Lists a handle: [`Msg::Entries`] then a [`Msg::Reply`].
    List {
        /// Request number.
        req: u32,
        /// Handle.
        id: u32,
    },
    /// Stats `name` (or the directory itself).
    Stat {
        /// Request number.
        req: u32,
        /// Handle.
        id: u32,
        /// Entry.
        name: Option<CString>,
    },
    /// Creates a directory (mode 0700).
    CreateDir {
        /// Handle.
        id: u32,
        /// Entry.
        name: CString,
    },
    /// Removes an entry or tree.
    Remove {
        /// Handle.
        id: u32,
        /// Entry.
        name: CString,
    },
    /// Sets attributes of an entry or of the directory itself.
    SetAttrs {
        /// Handle.
        id: u32,
        /// Entry.
        name: Option<CString>,
        /// What to set.
        attrs: Attrs,
    },
    /// Installs a symlink.
    Symlink {
        /// Handle.
        id: u32,
        /// Entry.
        name: CString,
        /// Target.
        target: Vec<u8>,
        /// mtime.
        attrs: Attrs,
        /// What it replaces.
        over: Over,
    },
    /// Installs a FIFO, socket or device.
    Special {
        /// Handle.
        id: u32,
        /// Entry.
        name: CString,
        /// `S_IFMT` bits.
        fmt: u32,
        /// Device number.
        rdev: (u32, u32),
        /// Mode and mtime.
        attrs: Attrs,
        /// What it replaces.
        over: Over,
    },
    /// Starts a file `fid` (content in [`Msg::Data`]); `compare`: only
    /// compare it with the existing file (`--checksum`). With `plan` (a
    /// request number, 0 for none; only asked with [`FEATURE_DELTA`], for
    /// large files) the receiver first answers how it wants the content
    /// ([`Answer::Plan`], decided by `agent::plan`).
    FileBegin {
        /// File stream number.
        fid: u32,
        /// Handle.
        id: u32,
        /// Entry.
        name: CString,
        /// Size the sender will send.
        size: u64,
        /// Compare only.
        compare: bool,
        /// DST had no entry by that name when the sender listed it (only
        /// with [`FEATURE_FRESH`]).
        fresh: bool,
        /// Request number of the plan asked for, 0: none.
        plan: u32,
    },
    /// Delta ops of file `fid` against the signature of its plan
    /// ([`Answer::Plan`]), in the `transfer::delta::wire` form (whole ops,
    /// the last one `End`).
    Delta {
        /// File stream number.
        fid: u32,
        /// Encoded ops.
        ops: Vec<u8>,
    },
    /// After the delta of `fid`: replies `Bool(true)` when the receiver
    /// assembled the sender's file; `false`: it wants the whole file,
    /// as [`Msg::Data`], before the commit.
    DeltaEnd {
        /// Request number.
        req: u32,
        /// File stream number.
        fid: u32,
    },
    /// File content.
    Data {
        /// File stream number.
        fid: u32,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// Gives the received file its name.
    Commit {
        /// File stream number.
        fid: u32,
        /// Mode and mtime.
        attrs: Attrs,
        /// fsync first.
        fsync: bool,
        /// What it replaces.
        over: Over,
    },
    /// Drops a received file.
    Abort {
        /// File stream number.
        fid: u32,
    },
    /// Ends a compare stream: replies `Bool(same)`.
    CompareEnd {
        /// Request number.
        req: u32,
        /// File stream number.
        fid: u32,
    },
    /// Renames a path to another (components from the root).
    Rename {
        /// Request number.
        req: u32,
        /// From.
        from: Vec<CString>,
        /// To.
        to: Vec<CString>,
    },
    /// Replies once everything before it is done.
    Barrier {
        /// Request number.
        req: u32,
    },
    /// Part of a listing.
    Entries {
        /// Request number.
        req: u32,
        /// Entries.
        entries: Vec<Entry>,
    },
    /// The reply to a request: an answer or an errno.
    Reply {
        /// Request number.
        req: u32,
        /// Result.
        result: Result<Answer, i32>,
    },
    /// What an asynchronous operation did (`errno` 0) or why it failed.
    Note {
        /// Operation.
        op: NoteOp,
        /// Path relative to the root.
        path: Vec<u8>,
        /// errno, 0 for success.
        errno: i32,
        /// Entries removed.
        count: u64,
        /// Do not report (a consequence of an error already reported).
        silent: bool,
    },
    /// An engine event (pull).
    Event(WireEvent),
    /// The engine is done (pull): the summary's counters by name, or a
    /// fatal error.
    Done {
        /// Counters.
        counters: Vec<(Vec<u8>, u64)>,
        /// Fatal error text.
        fatal: Option<Vec<u8>>,
    },
    /// End of the conversation.
    Bye,
    /// `dirsync watch host:SRC DST`: the client asks the server's watch
    /// to stop (see `protocol::watch`).
    WatchStop,
    /// The engine asks the agent to stream its tree's changes
    /// (`protocol::changes`; no agent serves it yet).
    WatchChanges {
        /// Request number: the batches answer it.
        req: u32,
    },
    /// A batch of the agent's changes (`protocol::changes`).
    Changes {
        /// The request it answers.
        req: u32,
        /// Relative paths that changed, as components.
        paths: Vec<Vec<CString>>,
        /// Changes were dropped: rescan the whole tree.
        overflow: bool,
    },
    /// A message of a two-way run (types 70-79, checked when decoded;
    /// its fields are read by `protocol::twoway`).
    TwoWay {
        /// The type byte.
        kind: u8,
        /// The fields.
        payload: Vec<u8>,
    },
    /// `-o`/`-g`: sets owner and/or group (ids of the receiving side) of
    /// an entry or of the directory itself ([`FEATURE_FIDELITY`], as the
    /// messages below).
    Chown {
        /// Handle.
        id: u32,
        /// Entry.
        name: Option<CString>,
        /// New owner.
        uid: Option<u32>,
        /// New group.
        gid: Option<u32>,
    },
    /// `-X`/`-A`: replies [`Answer::Xattrs`], the attributes of an entry
    /// (or of the directory) the receiver's options sync.
    GetXattrs {
        /// Request number.
        req: u32,
        /// Handle.
        id: u32,
        /// Entry.
        name: Option<CString>,
    },
    /// Sets `set` and removes `remove` on an entry or the directory.
    SetXattrs {
        /// Handle.
        id: u32,
        /// Entry.
        name: Option<CString>,
        /// Names and values.
        set: Xattrs,
        /// Names.
        remove: Vec<CString>,
    },
    /// Owner and group of a file being received, before its name.
    FileOwner {
        /// File stream number.
        fid: u32,
        /// Owner.
        uid: Option<u32>,
        /// Group.
        gid: Option<u32>,
    },
    /// The attributes a file being received must have, before its name.
    FileXattrs {
        /// File stream number.
        fid: u32,
        /// Names and values.
        want: Xattrs,
    },
    /// `-S`: `len` bytes of a file being received are a hole (counted
    /// in its declared size like data).
    Hole {
        /// File stream number.
        fid: u32,
        /// Bytes.
        len: u64,
    },
    /// `-H`: makes the path `at` a name of the regular file at `target`
    /// (components from the root); replies [`Answer::Linked`].
    HardLink {
        /// Request number.
        req: u32,
        /// The first name.
        target: Vec<CString>,
        /// The later name.
        at: Vec<CString>,
    },
    /// `-o`/`-g` by name: the SRC side's `name` of its `id` (sent once
    /// per distinct id); replies [`Answer::Id`], the receiving side's id
    /// of that name, or `id` when it has no such name.
    MapId {
        /// Request number.
        req: u32,
        /// A group (else a user).
        group: bool,
        /// SRC's id.
        id: u32,
        /// SRC's name of it.
        name: Vec<u8>,
    },
}

/// Validates a name given by the user or a peer (see
/// [`super::fields::check_name`]).
pub fn name(b: &[u8]) -> Result<CString, ProtoError> {
    check_name(b.to_vec())
}
