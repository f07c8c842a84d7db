//! `--exclude PATTERN`: gitignore-style patterns.
//!
//! Patterns are matched against paths relative to SRC, as bytes:
//! * a pattern without a `/` (other than a trailing one) matches the name of
//!   an entry at any depth (`*.o`, `target`);
//! * a pattern with a `/` in it is anchored at SRC (`/build`, `docs/*.tmp`);
//!   a leading `/` only anchors;
//! * a trailing `/` matches directories only (`cache/`);
//! * `*` matches any bytes but `/`, `?` one byte but `/`, `[a-z]`/`[!a-z]`
//!   a byte class, `**` any number of whole directories (`**/x`, `a/**/b`,
//!   `a/**`), `\` quotes the next byte;
//! * `!pattern` re-includes what an earlier pattern excluded; the last
//!   matching pattern decides.
//!
//! An excluded entry is neither copied nor deleted from DST, and an
//! excluded directory is not descended into.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Lit(u8),
    Any,
    Class {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
    Star,
    /// `**` at the end or alone: anything, `/` included.
    DoubleStar,
    /// `**/`: zero or more whole directories.
    DirStars,
}

#[derive(Clone, Debug)]
struct Pattern {
    toks: Vec<Tok>,
    negated: bool,
    dir_only: bool,
    anchored: bool,
}

/// A compiled list of exclude patterns.
#[derive(Clone, Debug, Default)]
pub struct Excludes {
    patterns: Vec<Pattern>,
}

/// A pattern that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("empty exclude pattern {:?}", String::from_utf8_lossy(.pattern))]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: Vec<u8>,
}

fn compile(pat: &[u8]) -> Result<Pattern, PatternError> {
    let mut p = pat;
    let mut negated = false;
    if let Some(rest) = p.strip_prefix(b"!") {
        negated = true;
        p = rest;
    }
    let mut dir_only = false;
    while p.len() > 1 && p.ends_with(b"/") && !p.ends_with(b"\\/") {
        dir_only = true;
        p = &p[..p.len() - 1];
    }
    let anchored = p.contains(&b'/');
    let p = p.strip_prefix(b"/").unwrap_or(p);
    if p.is_empty() {
        return Err(PatternError {
            pattern: pat.to_vec(),
        });
    }
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        match c {
            b'\\' if i + 1 < p.len() => {
                toks.push(Tok::Lit(p[i + 1]));
                i += 2;
            }
            b'*' if p.get(i + 1) == Some(&b'*') => {
                let at_start = i == 0 || p[i - 1] == b'/';
                let next = p.get(i + 2);
                if at_start && next == Some(&b'/') {
                    toks.push(Tok::DirStars);
                    i += 3;
                } else if at_start && next.is_none() {
                    toks.push(Tok::DoubleStar);
                    i += 2;
                } else {
                    toks.push(Tok::Star);
                    i += 2;
                }
            }
            b'*' => {
                toks.push(Tok::Star);
                i += 1;
            }
            b'?' => {
                toks.push(Tok::Any);
                i += 1;
            }
            b'[' => match parse_class(&p[i + 1..]) {
                Some((tok, used)) => {
                    toks.push(tok);
                    i += 1 + used;
                }
                None => {
                    toks.push(Tok::Lit(b'['));
                    i += 1;
                }
            },
            _ => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    Ok(Pattern {
        toks,
        negated,
        dir_only,
        anchored,
    })
}

/// Parses a class after `[`; returns the token and the bytes used
/// (including the closing `]`), or `None` when there is no closing `]`.
fn parse_class(p: &[u8]) -> Option<(Tok, usize)> {
    let mut i = 0;
    let mut negated = false;
    if matches!(p.first(), Some(b'!') | Some(b'^')) {
        negated = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while i < p.len() {
        let mut c = p[i];
        if c == b']' && !first {
            return Some((Tok::Class { negated, ranges }, i + 1));
        }
        first = false;
        if c == b'\\' && i + 1 < p.len() {
            i += 1;
            c = p[i];
        }
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            ranges.push((c, p[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    None
}

/// NFA simulation: O(len(text) * len(toks)), no backtracking blow-up.
/// `mid[i]` marks being inside a directory name consumed by the `**/` at
/// token `i` (it can only be left through a `/`).
fn matches(toks: &[Tok], text: &[u8]) -> bool {
    let m = toks.len();
    let mut cur = vec![false; m + 1];
    let mut next = vec![false; m + 1];
    let mut mid = vec![false; m + 1];
    let mut next_mid = vec![false; m + 1];
    cur[0] = true;
    closure(toks, &mut cur);
    for &c in text {
        next.iter_mut().for_each(|b| *b = false);
        next_mid.iter_mut().for_each(|b| *b = false);
        for i in 0..m {
            if mid[i] {
                if c == b'/' {
                    next[i] = true;
                } else {
                    next_mid[i] = true;
                }
            }
            if !cur[i] {
                continue;
            }
            match &toks[i] {
                Tok::Lit(x) => {
                    if c == *x {
                        next[i + 1] = true;
                    }
                }
                Tok::Any => {
                    if c != b'/' {
                        next[i + 1] = true;
                    }
                }
                Tok::Class { negated, ranges } => {
                    let inside = ranges.iter().any(|&(a, b)| a <= c && c <= b);
                    if c != b'/' && inside != *negated {
                        next[i + 1] = true;
                    }
                }
                Tok::Star => {
                    if c != b'/' {
                        next[i] = true;
                    }
                }
                Tok::DoubleStar => next[i] = true,
                Tok::DirStars => {
                    if c == b'/' {
                        next[i] = true;
                    } else {
                        next_mid[i] = true;
                    }
                }
            }
        }
        closure(toks, &mut next);
        if !next.iter().chain(next_mid.iter()).any(|&b| b) {
            return false;
        }
        std::mem::swap(&mut cur, &mut next);
        std::mem::swap(&mut mid, &mut next_mid);
    }
    cur[m]
}

fn closure(toks: &[Tok], states: &mut [bool]) {
    for i in 0..toks.len() {
        if states[i] && matches!(toks[i], Tok::Star | Tok::DoubleStar | Tok::DirStars) {
            states[i + 1] = true;
        }
    }
}

impl Excludes {
    /// Compiles `patterns` (in order; the last match decides).
    pub fn new(patterns: &[OsString]) -> Result<Excludes, PatternError> {
        let patterns = patterns
            .iter()
            .map(|p| compile(p.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Excludes { patterns })
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the entry at `rel` (relative to SRC, `/`-separated bytes)
    /// named `name` (its last component) is excluded.
    pub fn is_excluded(&self, rel: &[u8], name: &[u8], is_dir: bool) -> bool {
        let mut excluded = false;
        for p in &self.patterns {
            if p.dir_only && !is_dir {
                continue;
            }
            let hit = if p.anchored {
                matches(&p.toks, rel)
            } else {
                matches(&p.toks, name)
            };
            if hit {
                excluded = !p.negated;
            }
        }
        excluded
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
        assert!(Excludes::new(&[OsString::from("")]).is_err());
        assert!(Excludes::new(&[OsString::from("/")]).is_err());
    }
}
