//! `--deploy`: run this very binary on the remote side. The remote
//! command is a small POSIX shell script: when
//! `~/.cache/dirsync/agent-<version>-<hash>` (`$XDG_CACHE_HOME/dirsync/...`
//! when set) is missing or its SHA-256 is
//! not this binary's, it says `need`, reads exactly the binary's size from
//! stdin into a temporary, checks the hash and renames it into place;
//! then it runs it with `--server`. The client sends the binary only when
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

/// The remote command for `agent`.
pub fn remote_command(agent: &Agent) -> Vec<u8> {
    let name = format!("agent-{}-{}", env!("CARGO_PKG_VERSION"), &agent.hash[..16]);
    let script = format!(
        "d=\"${{XDG_CACHE_HOME:-$HOME/.cache}}/dirsync\"; f=\"$d/{name}\"; h={hash}; \
         sum() {{ sha256sum < \"$1\" 2>/dev/null | cut -d' ' -f1; }}; \
         if [ -x \"$f\" ] && [ \"$(sum \"$f\")\" = \"$h\" ]; then echo dirsync-deploy: have; \
         else mkdir -p \"$d\" && t=\"$d/.upload.$$\" && echo dirsync-deploy: need && \
         head -c {size} > \"$t\" && [ \"$(sum \"$t\")\" = \"$h\" ] && chmod 700 \"$t\" && \
         mv -f \"$t\" \"$f\" || {{ rm -f \"$t\"; echo \"dirsync: upload of the agent to $f failed\" >&2; exit 1; }}; fi; \
         exec \"$f\" --server",
        hash = agent.hash,
        size = agent.size,
    );
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
