//! `[user@]host:PATH`, as rsync reads it: an argument is remote when it
//! has a `:` before any `/` (so `./a:b` and `/x:y` are local paths). An
//! IPv6 address goes in brackets: `[::1]:PATH`. An empty PATH is the
//! remote home directory.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// A remote side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// `[user@]host` as given to the transport.
    pub host: String,
    /// The path on the remote machine (bytes).
    pub path: PathBuf,
}

impl Spec {
    /// How the user wrote it: `host:path` (for messages and events).
    pub fn label(&self) -> PathBuf {
        let mut b = self.host.as_bytes().to_vec();
        b.push(b':');
        b.extend_from_slice(self.path.as_os_str().as_bytes());
        PathBuf::from(OsStr::from_bytes(&b))
    }
}

/// The remote side `arg` names, or `None` for a local path.
pub fn parse(arg: &OsStr) -> Option<Spec> {
    let b = arg.as_bytes();
    let (host, rest) = if b.first() == Some(&b'[') || b.contains(&b'@') && b.contains(&b'[') {
        let close = b.iter().position(|&c| c == b']')?;
        if b.get(close + 1) != Some(&b':') {
            return None;
        }
        let host: Vec<u8> = b[..=close]
            .iter()
            .copied()
            .filter(|&c| c != b'[' && c != b']')
            .collect();
        (host, &b[close + 2..])
    } else {
        let colon = b.iter().position(|&c| c == b':')?;
        if b[..colon].contains(&b'/') {
            return None;
        }
        (b[..colon].to_vec(), &b[colon + 1..])
    };
    let host = String::from_utf8(host).ok()?;
    let bad = |c: char| c.is_whitespace() || c.is_control() || c == '/';
    if host.is_empty() || host.starts_with('-') || host.ends_with('@') || host.contains(bad) {
        return None;
    }
    let path = if rest.is_empty() { &b"."[..] } else { rest };
    Some(Spec {
        host,
        path: PathBuf::from(OsStr::from_bytes(path)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<(String, String)> {
        parse(OsStr::new(s)).map(|s| (s.host, s.path.to_string_lossy().into_owned()))
    }

    #[test]
    fn remote_and_local_arguments() {
        let r = |h: &str, p: &str| Some((h.to_string(), p.to_string()));
        assert_eq!(p("host:/x/y"), r("host", "/x/y"));
        assert_eq!(p("me@host:rel"), r("me@host", "rel"));
        assert_eq!(p("host:"), r("host", "."));
        assert_eq!(p("[::1]:/d"), r("::1", "/d"));
        assert_eq!(p("u@[fe80::1]:d"), r("u@fe80::1", "d"));
        assert_eq!(p("/abs/a:b"), None);
        assert_eq!(p("./a:b"), None);
        assert_eq!(p("plain"), None);
        assert_eq!(p(":x"), None);
        assert_eq!(p("-oProxyCommand=x:y"), None);
        assert_eq!(p("a b:c"), None);
    }
}
