//! `--deploy`: run this very binary on the remote side. The remote
//! command is a small POSIX shell script ([`SCRIPT`]): it refuses a cache
//! directory `~/.cache/dirsync` (`$XDG_CACHE_HOME/dirsync` when set) that
//! is not private to the user; when `agent-<version>-<hash>` in it is
//! missing or its SHA-256 is not this binary's, it says `need`, reads
//! exactly the binary's size from stdin into a `mktemp` file there,
//! checks the hash and renames it into place; then it runs it with
//! `--server`. The client sends the binary only when
//! asked, and its hello only after the server's (so nothing of the
//! conversation is read by the upload).
//!
//! The binary shipped this way must run on the remote system: a static
//! (musl) build does on any Linux of the same architecture.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::Command;

/// This binary, its SHA-256 (hex) and size.
pub struct Agent {
    /// Path of this executable.
    pub path: PathBuf,
    /// SHA-256, hex.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
}

/// Describes the running executable (hashed with `sha256sum`).
pub fn this_binary() -> io::Result<Agent> {
    let path = std::env::current_exe()?;
    let out = Command::new("sha256sum").arg(&path).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let hash = text.split_whitespace().next().unwrap_or("").to_string();
    if !out.status.success() || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(io::Error::other("sha256sum failed on this binary"));
    }
    let size = std::fs::metadata(&path)?.len();
    Ok(Agent { path, hash, size })
}

/// The deploy script, one line (a login shell of any family parses it
/// inside its quotes); `@NAME@`, `@HASH@` and `@SIZE@` are filled in.
///
/// What it trusts, and why:
/// - `umask 077`: whatever it creates (the cache directory, the upload)
///   is the user's alone.
/// - The cache directory `$d` must be PRIVATE: a real directory (`find`
///   does not follow a symlink given as its starting point, so a symlink
///   fails `-type d`), owned by this uid, with no group or other write
///   bit. It is created (mode 0700) if missing; anything else is refused
///   with a message, before a byte is uploaded or anything run from it.
/// - Once `$d` is private, no one else can add, rename or replace what is
///   in it, so a name in it names what this script checked: the upload
///   goes to a fresh `mktemp` file in it (no predictable name another
///   user could plant), its hash is checked, then it is renamed into
///   place and that name is executed. The directories above `$d` (`$HOME`
///   or `$XDG_CACHE_HOME`) are the user's own, as ssh assumes of `~/.ssh`.
/// - A cached agent is run only if it is an executable regular file (not
///   a symlink) with the right hash; otherwise it is uploaded again.
const SCRIPT: &str = "umask 077; \
    d=\"${XDG_CACHE_HOME:-$HOME/.cache}/dirsync\"; f=\"$d/@NAME@\"; h=@HASH@; u=$(id -u); \
    fail() { echo \"dirsync: --deploy: $*\" >&2; exit 1; }; \
    sum() { sha256sum < \"$1\" 2>/dev/null | cut -d' ' -f1; }; \
    if [ ! -e \"$d\" ] && [ ! -L \"$d\" ]; then \
    mkdir -p \"${d%/*}\" && mkdir -m 700 \"$d\" || fail \"cannot create the agent cache $d\"; fi; \
    [ -n \"$(find \"$d\" -prune -type d -user \"$u\" ! -perm -020 ! -perm -002 -print 2>/dev/null)\" ] || \
    fail \"refusing the agent cache $d: it must be a directory (not a symlink) owned by uid $u \
    and writable by it alone\"; \
    if [ -f \"$f\" ] && [ ! -L \"$f\" ] && [ -x \"$f\" ] && [ \"$(sum \"$f\")\" = \"$h\" ]; then echo dirsync-deploy: have; \
    else t=$(mktemp \"$d/.upload.XXXXXXXXXX\") || fail \"cannot create a file in $d\"; \
    echo dirsync-deploy: need; \
    head -c @SIZE@ > \"$t\" && [ \"$(sum \"$t\")\" = \"$h\" ] && chmod 700 \"$t\" && mv -f \"$t\" \"$f\" || \
    { rm -f \"$t\"; fail \"upload of the agent to $f failed\"; }; fi; \
    exec \"$f\" --server";

/// The remote command for `agent`: `sh -c` [`SCRIPT`].
pub fn remote_command(agent: &Agent) -> Vec<u8> {
    let name = format!("agent-{}-{}", env!("CARGO_PKG_VERSION"), &agent.hash[..16]);
    let script = SCRIPT
        .replace("@NAME@", &name)
        .replace("@HASH@", &agent.hash)
        .replace("@SIZE@", &agent.size.to_string());
    let mut cmd = b"sh -c ".to_vec();
    cmd.extend_from_slice(&super::transport::shell_quote(script.as_bytes()));
    cmd
}

/// Reads the script's first line and sends the binary when it asks.
pub fn upload_if_asked(agent: &Agent, r: &mut impl Read, w: &mut impl Write) -> io::Result<bool> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 64 {
        if r.read(&mut b)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the deploy script ended",
            ));
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    match &line[..] {
        b"dirsync-deploy: have" => Ok(false),
        b"dirsync-deploy: need" => {
            let mut f = std::fs::File::open(&agent.path)?;
            io::copy(&mut f, w)?;
            w.flush()?;
            Ok(true)
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected answer of the deploy script",
        )),
    }
}
