//! The byte stream to the remote side: a command (`-e/--rsh`, default
//! `ssh`) run with the host and the remote command, its stdin and stdout
//! as the stream. ssh does the connection and the authentication; any
//! command that gives a byte stream to a remote `dirsync --server` works.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Splits an `--rsh` value into words: blanks separate, '...' and "..."
/// quote, a backslash escapes the next character.
pub fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut quote = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => {
                quote = Some(c);
                has = true;
            }
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    has = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            (_, c) => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

/// `s` quoted for a POSIX shell (the remote side's).
pub fn shell_quote(s: &[u8]) -> Vec<u8> {
    let safe = |c: &u8| c.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(c);
    if !s.is_empty() && s.iter().all(safe) {
        return s.to_vec();
    }
    let mut q = vec![b'\''];
    for &c in s {
        if c == b'\'' {
            q.extend_from_slice(b"'\\''");
        } else {
            q.push(c);
        }
    }
    q.push(b'\'');
    q
}

/// A running transport command.
pub struct Transport {
    child: Child,
}

impl Transport {
    /// Runs `rsh host remote_cmd`; returns it with its stdout and stdin.
    pub fn spawn(
        rsh: &str,
        host: &str,
        remote_cmd: &[u8],
    ) -> io::Result<(Transport, ChildStdout, ChildStdin)> {
        let words = split_words(rsh);
        let Some((prog, args)) = words.split_first() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--rsh is empty",
            ));
        };
        let mut child = Command::new(prog)
            .args(args)
            .arg(host)
            .arg(OsStr::from_bytes(remote_cmd))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let out = child.stdout.take().expect("piped");
        let inp = child.stdin.take().expect("piped");
        Ok((Transport { child }, out, inp))
    }

    /// The process id of the transport command.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the command to end; kills it after that.
    pub fn finish(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if start.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = self.child.kill();
                    return self.child.wait().ok();
                }
            }
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes() {
        assert_eq!(
            split_words("ssh -p 22  -i 'a b' \"c d\" e\\ f"),
            ["ssh", "-p", "22", "-i", "a b", "c d", "e f"]
        );
        assert_eq!(split_words("  "), Vec::<String>::new());
        assert_eq!(shell_quote(b"/usr/bin/dirsync"), b"/usr/bin/dirsync");
        assert_eq!(shell_quote(b"it's"), b"'it'\\''s'");
    }
}
