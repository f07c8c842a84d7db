//! `dirsync --server --root DIR [--read-only | --write-only]`: a server
//! confined to one tree, as rsync's `rrsync` confines rsync behind an ssh
//! forced command (`command="dirsync --server --root DIR ..."` in
//! `authorized_keys`).
//!
//! - DIR is resolved once, at start, as the admin wrote it (it may be a
//!   symlink) and kept open; every path the client names is then resolved
//!   beneath that descriptor, never from `/`: a leading `/` is taken as
//!   relative to DIR (as rrsync does), `..` is refused outright, and no
//!   component may be a symlink (`openat2` with `RESOLVE_BENEATH |
//!   RESOLVE_NO_SYMLINKS` where the kernel has it, Linux 5.6+; else one
//!   component at a time with `O_NOFOLLOW | O_DIRECTORY`).
//! - `--read-only` refuses a push (the server would write), `--write-only`
//!   a pull (the server would read its tree to send it).
//! - Under a forced command sshd puts what the client asked to run in
//!   `SSH_ORIGINAL_COMMAND`: [`check_original_command`] accepts only the
//!   `dirsync --server` the client builds, so anything else (a `--deploy`
//!   upload script, a shell command) is refused rather than answered by a
//!   server that was not asked for.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::protocol::messages::Role;
use crate::sys;

/// The longest path a client may name (`PATH_MAX`).
const PATH_MAX: usize = 4096;
/// How much of a refused command is shown.
const SHOWN_MAX: usize = 120;

/// What a server lets its client do with its tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Push and pull.
    #[default]
    ReadWrite,
    /// Pull only (`--read-only`): never the destination of a push.
    ReadOnly,
    /// Push only (`--write-only`): never the source of a pull.
    WriteOnly,
}

/// Why a confined server refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// `--root DIR` cannot be opened as a directory.
    #[error("cannot open the served directory {} (--root)", dir.display())]
    Root {
        /// DIR.
        dir: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A push to a `--read-only` server.
    #[error("this server is read-only (--read-only): it cannot be the destination of a push")]
    ReadOnly,
    /// A pull from a `--write-only` server.
    #[error("this server is write-only (--write-only): it cannot be the source of a pull")]
    WriteOnly,
    /// A path the client named is not beneath DIR (or not usable).
    #[error(
        "path '{}' refused: {why} (this server only serves the tree it was given with --root)",
        Shown(path)
    )]
    Path {
        /// The path, as the client sent it.
        path: Vec<u8>,
        /// Why.
        why: String,
    },
    /// `SSH_ORIGINAL_COMMAND` is not a dirsync server invocation.
    #[error(
        "this key only runs dirsync --server (refused to run '{}'); --deploy cannot be used \
         with it",
        Shown(command)
    )]
    Command {
        /// What the client asked sshd to run.
        command: Vec<u8>,
    },
}

/// Peer bytes for a message: escaped, and cut when long.
struct Shown<'a>(&'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = self.0.len() > SHOWN_MAX;
        crate::report::write_human(f, &self.0[..self.0.len().min(SHOWN_MAX)])?;
        if cut {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// A server's confinement: the tree it serves, open, and what it allows.
#[derive(Debug)]
pub struct Confine {
    dir: Option<OwnedFd>,
    access: Access,
}

impl Confine {
    /// No tree given: paths are the client's to choose (`--server` alone),
    /// roles as `access` allows.
    pub fn unconfined(access: Access) -> Confine {
        Confine { dir: None, access }
    }

    /// Confined to `dir` (resolved now, as written: it may be a symlink).
    pub fn beneath(dir: &Path, access: Access) -> Result<Confine, ConfineError> {
        let fd = sys::open_root(dir).map_err(|source| ConfineError::Root {
            dir: dir.to_path_buf(),
            source,
        })?;
        Ok(Confine {
            dir: Some(fd),
            access,
        })
    }

    /// Whether paths are resolved beneath a tree.
    pub fn is_confined(&self) -> bool {
        self.dir.is_some()
    }

    /// What this server lets its client do.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Refuses a role the access does not allow: the server writing
    /// ([`Role::Agent`], a push) when read-only, reading its tree for the
    /// client ([`Role::Engine`], a pull) when write-only.
    pub fn check_role(&self, role: Role) -> Result<(), ConfineError> {
        match (self.access, role) {
            (Access::ReadOnly, Role::Agent | Role::TwoWay) => Err(ConfineError::ReadOnly),
            (Access::WriteOnly, Role::Engine) => Err(ConfineError::WriteOnly),
            _ => Ok(()),
        }
    }

    /// The existing directory `path` beneath the tree (a pull's SRC);
    /// `None` when unconfined.
    pub fn open_dir(&self, path: &[u8]) -> Result<Option<OwnedFd>, ConfineError> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let names = components(path)?;
        open_beneath(dir.as_fd(), &names)
            .map(Some)
            .map_err(|e| refused(path, &e))
    }

    /// The parent of `path` beneath the tree, open, and its last name
    /// (`None`: `path` is the tree itself), for a push's DST, which may be
    /// created there; `None` when unconfined.
    pub fn open_parent(
        &self,
        path: &[u8],
    ) -> Result<Option<(OwnedFd, Option<CString>)>, ConfineError> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let mut names = components(path)?;
        let last = names.pop();
        let parent = open_beneath(dir.as_fd(), &names).map_err(|e| refused(path, &e))?;
        Ok(Some((parent, last)))
    }
}

/// A path error for the client, from the error of resolving `path`.
pub fn refused(path: &[u8], e: &io::Error) -> ConfineError {
    let why = match e.raw_os_error() {
        Some(libc::ELOOP) => "it goes through a symlink".to_string(),
        Some(libc::EXDEV) => "it leads outside the served tree".to_string(),
        Some(libc::ENOTDIR) => "a component is not a directory".to_string(),
        Some(libc::ENOENT) => "it does not exist".to_string(),
        _ => e.to_string(),
    };
    ConfineError::Path {
        path: path.to_vec(),
        why,
    }
}

/// The names of `path` relative to the tree: a leading `/` and `.`
/// components dropped, `..` and NUL bytes refused.
fn components(path: &[u8]) -> Result<Vec<CString>, ConfineError> {
    let bad = |why: &str| ConfineError::Path {
        path: path.to_vec(),
        why: why.to_string(),
    };
    if path.len() > PATH_MAX {
        return Err(bad("it is longer than PATH_MAX"));
    }
    let mut out = Vec::new();
    for name in path.split(|&b| b == b'/') {
        match name {
            b"" | b"." => {}
            b".." => return Err(bad("'..' is not allowed")),
            n => out.push(CString::new(n).map_err(|_| bad("it contains a NUL byte"))?),
        }
    }
    Ok(out)
}

/// Opens the directory `names` beneath `dir`, following no symlink and
/// never leaving `dir`: `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`,
/// or [`open_walk`] where the kernel lacks it.
pub fn open_beneath(dir: BorrowedFd<'_>, names: &[CString]) -> io::Result<OwnedFd> {
    let mut path = Vec::new();
    for n in names {
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(n.as_bytes());
    }
    if path.is_empty() {
        path.push(b'.');
    }
    // No O_NOFOLLOW: RESOLVE_NO_SYMLINKS covers the last component too,
    // and says ELOOP for it (O_NOFOLLOW | O_DIRECTORY would say ENOTDIR).
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let path = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    match rustix::fs::openat2(dir, path.as_c_str(), flags, Mode::empty(), how) {
        // Not in this kernel (before 5.6), or filtered out (seccomp).
        Err(e) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::PERM => {
            open_walk(dir, names)
        }
        r => Ok(r?),
    }
}

/// [`open_beneath`] without `openat2`: one component at a time with
/// `O_NOFOLLOW | O_DIRECTORY` (`names` hold no `/` and no `..`).
pub fn open_walk(dir: BorrowedFd<'_>, names: &[CString]) -> io::Result<OwnedFd> {
    let mut fd = sys::open_dir_at(dir, c".")?;
    for n in names {
        fd = open_name(fd.as_fd(), n)?;
    }
    Ok(fd)
}

/// Opens the directory `name` (one component) in `dir`, never through a
/// symlink: a symlink there is `ELOOP` (`O_NOFOLLOW | O_DIRECTORY` alone
/// says `ENOTDIR`, as for a file); `..`, `.`, `` and a name with a `/`
/// are `EXDEV` (a push's DST is opened so: its last name must not lead
/// up either).
pub fn open_name(dir: BorrowedFd<'_>, name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    let n = name.to_bytes();
    if matches!(n, b"" | b"." | b"..") || n.contains(&b'/') {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    sys::open_dir_at(dir, name).map_err(|e| {
        let flags = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
        match rustix::fs::statat(dir, name, flags) {
            Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode).is_symlink() => {
                io::Error::from_raw_os_error(libc::ELOOP)
            }
            _ => e,
        }
    })
}

/// Checks what the client asked sshd to run (`SSH_ORIGINAL_COMMAND`,
/// set when a forced command runs instead): it must be the
/// `[PATH/]dirsync --server` the client builds (the path quoted as
/// [`super::transport::shell_quote`] quotes it).
pub fn check_original_command(command: &[u8]) -> Result<(), ConfineError> {
    let refuse = || ConfineError::Command {
        command: command.to_vec(),
    };
    let word = command
        .strip_suffix(b" --server")
        .and_then(unquote)
        .ok_or_else(refuse)?;
    let name = word.rsplit(|&b| b == b'/').next().unwrap_or_default();
    if name == b"dirsync" {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// One shell word as [`super::transport::shell_quote`] writes it: bare
/// safe bytes, or `'...'` with each `'` as `'\''`. `None` for anything
/// else (blanks, other quoting, shell syntax).
fn unquote(w: &[u8]) -> Option<Vec<u8>> {
    let safe = |c: &u8| c.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(c);
    if !w.is_empty() && w.iter().all(safe) {
        return Some(w.to_vec());
    }
    let inner = w.strip_prefix(b"'")?.strip_suffix(b"'")?;
    let mut out = Vec::new();
    let mut parts = inner.split(|&b| b == b'\'');
    out.extend_from_slice(parts.next()?);
    // After the first part, each `'` must start a `'\''` (close, escaped
    // quote, reopen): split at `'`, that is the parts `\` and ``.
    while let Some(p) = parts.next() {
        if p != b"\\" || parts.next()? != b"" {
            return None;
        }
        out.push(b'\'');
        out.extend_from_slice(parts.next()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::transport::shell_quote;

    #[test]
    fn original_commands() {
        for ok in [
            &b"dirsync --server"[..],
            b"/usr/local/bin/dirsync --server",
            b"'/opt/my dir/dirsync' --server",
        ] {
            assert!(check_original_command(ok).is_ok(), "{ok:?}");
        }
        for p in [&b"/x/it's/dirsync"[..], b"/a b/dirsync", b"/n\nl/dirsync"] {
            let cmd = [shell_quote(p), b" --server".to_vec()].concat();
            assert!(check_original_command(&cmd).is_ok(), "{cmd:?}");
        }
        for bad in [
            &b""[..],
            b"dirsync",
            b"dirsync --server; rm -rf ~",
            b"sh -c 'exec dirsync' --server",
            b"dirsync --server --root /",
            b"dirsync  --server",
            b"/bin/sh --server",
            b"'dirsync'x --server",
            b"'dir'sync' --server",
            b"'dir'\\''sync --server",
            b"$(id)/dirsync --server",
            b"dirsync --server\n",
        ] {
            assert!(check_original_command(bad).is_err(), "{bad:?}");
        }
        let long = [&b"x; "[..], &[b'a'; 1000], b" --server"].concat();
        let m = check_original_command(&long).unwrap_err().to_string();
        assert!(m.len() < 400, "{m}");
    }

    #[test]
    fn paths_are_relative_without_dotdot() {
        let names = |p: &[u8]| components(p).map(|v| v.len());
        assert_eq!(names(b"/").unwrap(), 0);
        assert_eq!(names(b"").unwrap(), 0);
        assert_eq!(names(b"//a/./b/").unwrap(), 2);
        assert!(names(b"a/../b").is_err());
        assert!(names(b"..").is_err());
        assert!(names(b"a/\0").is_err());
        assert!(names(&[b'a'; PATH_MAX + 1]).is_err());
    }

    #[test]
    fn roles() {
        let ro = Confine::unconfined(Access::ReadOnly);
        assert!(ro.check_role(Role::Agent).is_err());
        assert!(ro.check_role(Role::Engine).is_ok());
        let wo = Confine::unconfined(Access::WriteOnly);
        assert!(wo.check_role(Role::Engine).is_err());
        assert!(wo.check_role(Role::Agent).is_ok());
    }

    /// Both ways of resolving refuse a symlinked component and `..`.
    #[test]
    fn beneath_and_walk_refuse_symlinks() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("root/a/b")).unwrap();
        std::fs::create_dir(t.path().join("out")).unwrap();
        std::os::unix::fs::symlink("../out", t.path().join("root/link")).unwrap();
        std::os::unix::fs::symlink("b", t.path().join("root/a/lb")).unwrap();
        let root = sys::open_root(&t.path().join("root")).unwrap();
        let c =
            |v: &[&str]| -> Vec<CString> { v.iter().map(|s| CString::new(*s).unwrap()).collect() };
        for open in [open_beneath, open_walk] {
            assert!(open(root.as_fd(), &c(&["a", "b"])).is_ok());
            assert!(open(root.as_fd(), &[]).is_ok());
            for (bad, errno) in [
                (&["link"][..], libc::ELOOP),
                (&["a", "lb"], libc::ELOOP),
                (&["link", "x"], libc::ELOOP),
                (&[".."], libc::EXDEV),
                (&["a", "..", ".."], libc::EXDEV),
            ] {
                let e = open(root.as_fd(), &c(bad)).unwrap_err();
                assert_eq!(e.raw_os_error(), Some(errno), "{bad:?}: {e}");
            }
        }
        for bad in [c"..", c".", c"", c"a/b"] {
            let e = open_name(root.as_fd(), bad).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EXDEV), "{bad:?}");
        }
    }
}
