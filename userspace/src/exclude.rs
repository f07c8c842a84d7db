//! `--exclude PATTERN`: gitignore-style patterns, matched by ripgrep's
//! [`ignore::gitignore`] (on bytes: `globset` compiles to byte regexes).
//!
//! Patterns are matched against paths relative to SRC, as bytes:
//! * a pattern without a `/` (other than a trailing one) matches the name of
//!   an entry at any depth (`*.o`, `target`);
//! * a pattern with a `/` in it is anchored at SRC (`/build`, `docs/*.tmp`);
//!   a leading `/` only anchors;
//! * a trailing `/` matches directories only (`cache/`);
//! * `*` matches any bytes but `/`, `?` one byte but `/` (also a byte of a
//!   name that is not UTF-8), `[a-z]`/`[!a-z]` a class, `**` any number of
//!   whole directories (`**/x`, `a/**/b`, `a/**`), `\` quotes the next
//!   character;
//! * `!pattern` re-includes what an earlier pattern excluded; the last
//!   matching pattern decides.
//!
//! A pattern is a command-line argument or a config value, not a line of
//! a `.gitignore` file: a leading `#` and trailing spaces are part of the
//! name (they are quoted before the pattern is compiled). A pattern must be
//! UTF-8 (match other bytes with `?`).
//!
//! An excluded entry is neither copied nor deleted from DST, and an
//! excluded directory is not descended into.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// A compiled list of exclude patterns.
#[derive(Clone, Debug)]
pub struct Excludes {
    matcher: Gitignore,
}

impl Default for Excludes {
    fn default() -> Self {
        Excludes {
            matcher: Gitignore::empty(),
        }
    }
}

/// A pattern that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("exclude pattern {:?}: {reason}", String::from_utf8_lossy(.pattern))]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: Vec<u8>,
    /// What is wrong with it.
    pub reason: String,
}

/// The gitignore line that means exactly `pat` as a pattern: a leading `#`
/// and trailing spaces are quoted (a `.gitignore` would drop them).
fn as_line(pat: &str) -> String {
    let body = pat.trim_end_matches(' ');
    let mut line = String::with_capacity(pat.len() + 8);
    if body.starts_with('#') {
        line.push('\\');
    }
    line.push_str(body);
    for _ in body.len()..pat.len() {
        line.push_str("\\ ");
    }
    line
}

fn error(pat: &[u8], reason: &str) -> PatternError {
    PatternError {
        pattern: pat.to_vec(),
        reason: reason.to_string(),
    }
}

impl Excludes {
    /// Compiles `patterns` (in order; the last match decides).
    pub fn new(patterns: &[OsString]) -> Result<Excludes, PatternError> {
        // Root "." : paths are given relative to SRC and nothing is
        // stripped from them.
        let mut builder = GitignoreBuilder::new(".");
        builder.allow_unclosed_class(true);
        for pat in patterns {
            let bytes = pat.as_bytes();
            let text = std::str::from_utf8(bytes)
                .map_err(|_| error(bytes, "not UTF-8 (match such bytes with ?)"))?;
            let name = text.strip_prefix('!').unwrap_or(text);
            if name
                .trim_start_matches('/')
                .trim_end_matches('/')
                .is_empty()
            {
                return Err(error(bytes, "empty"));
            }
            builder
                .add_line(None, &as_line(text))
                .map_err(|e| error(bytes, &e.to_string()))?;
        }
        let matcher = builder.build().map_err(|e| error(b"", &e.to_string()))?;
        Ok(Excludes { matcher })
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_empty()
    }

    /// Whether the entry at `rel` (relative to SRC, `/`-separated bytes)
    /// is excluded. `name` is its last component (kept for callers that
    /// have it; the matcher finds it in `rel`).
    pub fn is_excluded(&self, rel: &[u8], _name: &[u8], is_dir: bool) -> bool {
        if self.matcher.is_empty() {
            return false;
        }
        self.matcher
            .matched(Path::new(OsStr::from_bytes(rel)), is_dir)
            .is_ignore()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(pats: &[&str]) -> Excludes {
        Excludes::new(&pats.iter().map(OsString::from).collect::<Vec<_>>()).unwrap()
    }

    fn name_of(rel: &str) -> &str {
        rel.rsplit('/').next().unwrap()
    }

    fn check(pats: &[&str], rel: &str, dir: bool) -> bool {
        ex(pats).is_excluded(rel.as_bytes(), name_of(rel).as_bytes(), dir)
    }

    #[test]
    fn basename_patterns_match_at_any_depth() {
        assert!(check(&["*.o"], "a.o", false));
        assert!(check(&["*.o"], "x/y/a.o", false));
        assert!(!check(&["*.o"], "x/a.oo", false));
        assert!(check(&["target"], "deep/target", true));
        assert!(!check(&["target"], "deep/targets", true));
        assert!(check(&["?.c"], "d/x.c", false));
        assert!(!check(&["?.c"], "d/xy.c", false));
    }

    #[test]
    fn slashes_anchor() {
        assert!(check(&["/build"], "build", true));
        assert!(!check(&["/build"], "sub/build", true));
        assert!(check(&["docs/*.tmp"], "docs/a.tmp", false));
        assert!(!check(&["docs/*.tmp"], "x/docs/a.tmp", false));
        assert!(!check(&["docs/*.tmp"], "docs/sub/a.tmp", false));
    }

    #[test]
    fn trailing_slash_is_dirs_only() {
        assert!(check(&["cache/"], "a/cache", true));
        assert!(!check(&["cache/"], "a/cache", false));
    }

    #[test]
    fn double_stars() {
        assert!(check(&["**/log"], "log", false));
        assert!(check(&["**/log"], "a/b/log", false));
        assert!(check(&["a/**/b"], "a/b", false));
        assert!(check(&["a/**/b"], "a/x/y/b", false));
        assert!(!check(&["a/**/b"], "a/x/yb", false));
        assert!(check(&["a/**"], "a/x/y", false));
        assert!(!check(&["a/**"], "a", true));
    }

    #[test]
    fn classes_negation_and_escapes() {
        assert!(check(&["[ab]*"], "bz", false));
        assert!(!check(&["[!ab]*"], "bz", false));
        assert!(check(&["[a-c]x"], "cx", false));
        assert!(check(&["\\*"], "*", false));
        assert!(!check(&["\\*"], "x", false));
        assert!(!check(&["*.log", "!keep.log"], "keep.log", false));
        assert!(check(&["*.log", "!keep.log"], "other.log", false));
        assert!(check(&["!keep.log", "*.log"], "keep.log", false));
    }

    #[test]
    fn bytes_and_long_paths() {
        let e = ex(&["*.bin"]);
        assert!(e.is_excluded(b"\xff\xfe.bin", b"\xff\xfe.bin", false));
        let long = "d/".repeat(5000) + "x.bin";
        assert!(e.is_excluded(long.as_bytes(), b"x.bin", false));
        let e = ex(&["**/x.bin"]);
        assert!(e.is_excluded(long.as_bytes(), b"x.bin", false));
    }

    #[test]
    fn empty_pattern_is_an_error() {
        for p in ["", "/", "!", "!/", "//"] {
            assert!(Excludes::new(&[OsString::from(p)]).is_err(), "{p:?}");
        }
    }

    #[test]
    fn a_pattern_is_a_name_not_a_gitignore_line() {
        // A .gitignore would take these for a comment and trim the spaces.
        assert!(check(&["#notes"], "#notes", false));
        assert!(!check(&["#notes"], "notes", false));
        assert!(check(&["trail  "], "d/trail  ", false));
        assert!(!check(&["trail  "], "d/trail", false));
        assert!(!check(&["trail"], "d/trail ", false));
        // An unclosed class is literal.
        assert!(check(&["a[b"], "a[b", false));
    }

    #[test]
    fn a_pattern_must_be_utf8_and_question_mark_matches_any_byte() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(b"\xff.bin".to_vec());
        let e = Excludes::new(&[bad]).unwrap_err();
        assert_eq!(e.pattern, b"\xff.bin");
        assert!(!check(&["?.bin"], "d/\u{e9}.bin", false));
        let e = ex(&["??.bin"]);
        assert!(e.is_excluded("d/\u{e9}.bin".as_bytes(), b"", false));
        assert!(e.is_excluded(b"d/\xff\xfe.bin", b"", false));
        assert!(!e.is_excluded(b"d/\xff.bin", b"", false));
    }
}
