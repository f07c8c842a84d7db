//! The daemon's config file (TOML): parsed with the `toml` crate, whose
//! spans give every error a `FILE:LINE` that points at the offending key,
//! then validated as a whole (names, nesting, sources, schedules, rates,
//! the HTTP address). Paths in it are UTF-8 (TOML strings are); a
//! relative one is taken from the config file's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::api::Mode;
use super::schedule::{parse_hhmm, rate, Bwlimit, Schedule, Window};

/// The most pairs one file may define.
pub const MAX_PAIRS: usize = 4096;
/// The largest config file read.
pub const MAX_FILE: u64 = 4 << 20;

/// A config file refused: `FILE:LINE: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {msg}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The line of the offending key (1-based), when there is one.
    pub line: Option<usize>,
    /// What is wrong.
    pub msg: String,
}

/// `log = "error" | "warn" | "info" | "debug"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// And state changes, runs (the default).
    #[default]
    Info,
    /// Everything.
    Debug,
}

/// When a pair runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    /// Continuously (inotify).
    Watch,
    /// On a schedule (and once at start-up).
    Schedule(Schedule),
}

/// One `[[pair]]`, parsed. Two pairs are the same (a reload leaves it
/// untouched) when these are equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairConfig {
    /// `name`.
    pub name: String,
    /// `source`: a local directory (absolute).
    pub source: PathBuf,
    /// `destination`: a local directory (absolute) or `[user@]host:PATH`.
    pub destination: String,
    /// `mode`.
    pub mode: Mode,
    /// `watch` / `schedule`.
    pub when: When,
    /// `exclude`: `--exclude` patterns.
    pub exclude: Vec<String>,
    /// `archive`: `-a`.
    pub archive: bool,
    /// `no_delete`: `--no-delete`.
    pub no_delete: bool,
    /// `bwlimit`.
    pub bwlimit: Bwlimit,
    /// `rsh`: the command that reaches a remote destination (`-e`).
    pub rsh: Option<String>,
    /// `remote_path`: the dirsync to run there (`--remote-path`).
    pub remote_path: Option<String>,
    /// `compress`: `-z`.
    pub compress: bool,
    /// `timeout`: `--timeout` seconds (0: none; default 120).
    pub timeout: u64,
}

/// The whole file, parsed and validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// `[daemon] control`: the control socket (`None`: the default).
    pub control: Option<PathBuf>,
    /// `[daemon] http`: the status page's address.
    pub http: Option<SocketAddr>,
    /// `[daemon] token`: API clients' bearer token.
    pub token: Option<String>,
    /// `[daemon] log`.
    pub log: LogLevel,
    /// `[daemon] on_error`: argv of the hook.
    pub on_error: Vec<String>,
    /// `[daemon] on_conflict`: argv of the hook.
    pub on_conflict: Vec<String>,
    /// `[daemon] state`: the state directory (`None`: the default).
    pub state: Option<PathBuf>,
    /// The pairs, in file order.
    pub pairs: Vec<PairConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    daemon: Option<RawDaemon>,
    #[serde(default)]
    pair: Vec<Spanned<RawPair>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    control: Option<Spanned<String>>,
    http: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    log: Option<Spanned<String>>,
    on_error: Option<Spanned<Vec<String>>>,
    on_conflict: Option<Spanned<Vec<String>>>,
    state: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPair {
    name: Spanned<String>,
    source: Spanned<String>,
    destination: Spanned<String>,
    mode: Option<Spanned<String>>,
    watch: Option<Spanned<bool>>,
    schedule: Option<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    archive: bool,
    #[serde(default)]
    no_delete: bool,
    bwlimit: Option<Spanned<toml::Value>>,
    rsh: Option<String>,
    remote_path: Option<String>,
    #[serde(default)]
    compress: bool,
    timeout: Option<Spanned<i64>>,
}

/// Parses and validates `text`, the content of `file`.
pub struct Parser<'a> {
    file: &'a Path,
    text: &'a str,
}

impl<'a> Parser<'a> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err<T>(
        &self,
        span: Option<std::ops::Range<usize>>,
        msg: impl Into<String>,
    ) -> Result<T, ConfigError> {
        Err(ConfigError {
            file: self.file.to_path_buf(),
            line: span.map(|s| self.line(s.start)),
            msg: msg.into(),
        })
    }

    fn at<T, U>(&self, v: &Spanned<U>, msg: impl Into<String>) -> Result<T, ConfigError> {
        self.err(Some(v.span()), msg)
    }

    /// A path of the file: relative ones from the file's directory.
    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        let dir = self.file.parent().unwrap_or(Path::new("."));
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        dir.join(p)
    }

    fn daemon(&self, d: Option<RawDaemon>, c: &mut Config) -> Result<(), ConfigError> {
        let Some(d) = d else { return Ok(()) };
        c.control = d.control.as_ref().map(|s| self.path(s.get_ref()));
        c.state = d.state.as_ref().map(|s| self.path(s.get_ref()));
        c.token = d.token.as_ref().map(|t| t.get_ref().clone());
        if let Some(t) = &d.token {
            if t.get_ref().is_empty() || t.get_ref().chars().any(|c| c.is_control() || c == ' ') {
                return self.at(
                    t,
                    "token must be non-empty, without spaces or control characters",
                );
            }
        }
        if let Some(l) = &d.log {
            c.log = match l.get_ref().as_str() {
                "error" => LogLevel::Error,
                "warn" => LogLevel::Warn,
                "info" => LogLevel::Info,
                "debug" => LogLevel::Debug,
                other => {
                    return self.at(
                        l,
                        format!("bad log level {other:?}: expected error, warn, info or debug"),
                    )
                }
            };
        }
        for (hook, out) in [
            (&d.on_error, &mut c.on_error),
            (&d.on_conflict, &mut c.on_conflict),
        ] {
            if let Some(h) = hook {
                if h.get_ref().is_empty() || h.get_ref()[0].is_empty() {
                    return self.at(
                        h,
                        "a hook is a non-empty list: [\"/path/to/program\", \"arg\", ...]",
                    );
                }
                *out = h.get_ref().clone();
            }
        }
        if let Some(h) = &d.http {
            let addr = parse_http(h.get_ref()).ok_or(()).or_else(|_| {
                self.at(
                    h,
                    format!(
                        "bad http address {:?}: expected IP:PORT, e.g. 127.0.0.1:8385",
                        h.get_ref()
                    ),
                )
            })?;
            if !addr.ip().is_loopback() && c.token.is_none() {
                return self.at(
                    h,
                    "http on a non-loopback address needs a token ([daemon] token = \"...\")",
                );
            }
            c.http = Some(addr);
        }
        Ok(())
    }

    fn bwlimit(&self, v: &Spanned<toml::Value>) -> Result<Bwlimit, ConfigError> {
        let bad = |m: String| self.at::<Bwlimit, _>(v, m);
        match v.get_ref() {
            toml::Value::String(s) => match rate(s) {
                Ok(r) => Ok(if r == 0 {
                    Bwlimit::None
                } else {
                    Bwlimit::Rate(r)
                }),
                Err(e) => bad(format!("bwlimit: {e}")),
            },
            toml::Value::Integer(n) => match rate(&n.to_string()) {
                Ok(0) => Ok(Bwlimit::None),
                Ok(r) => Ok(Bwlimit::Rate(r)),
                Err(e) => bad(format!("bwlimit: {e}")),
            },
            toml::Value::Array(items) => {
                let mut out = Vec::new();
                for it in items {
                    let toml::Value::Table(t) = it else {
                        return bad("bwlimit: each window is { from = \"HH:MM\", to = \"HH:MM\", rate = \"RATE\" }".into());
                    };
                    if let Some(k) = t
                        .keys()
                        .find(|k| !["from", "to", "rate"].contains(&k.as_str()))
                    {
                        return bad(format!("bwlimit: unknown key {k:?} in a window"));
                    }
                    let get = |k: &str| t.get(k).and_then(|v| v.as_str());
                    let (Some(from), Some(to), Some(r)) = (get("from"), get("to"), get("rate"))
                    else {
                        return bad("bwlimit: each window needs from, to and rate (strings)".into());
                    };
                    let (Some(from), Some(to)) = (parse_hhmm(from), parse_hhmm(to)) else {
                        return bad(format!(
                            "bwlimit: bad time in window {from:?}-{to:?}: expected HH:MM"
                        ));
                    };
                    let rate = rate(r).or_else(|e| bad(format!("bwlimit: {e}")).map(|_| 0))?;
                    out.push(Window { from, to, rate });
                }
                if out.len() > 64 {
                    return bad("bwlimit: at most 64 windows".into());
                }
                Ok(Bwlimit::Windows(out))
            }
            _ => bad("bwlimit: expected a rate (\"1M\") or a list of windows".into()),
        }
    }

    fn pair(&self, sp: &Spanned<RawPair>) -> Result<PairConfig, ConfigError> {
        let p = sp.get_ref();
        let name = p.name.get_ref();
        if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control() || c == '/') {
            return self.at(
                &p.name,
                "a pair's name is 1 to 128 characters, no '/' or control character",
            );
        }
        let mode = match p.mode.as_ref().map(|m| m.get_ref().as_str()) {
            None | Some("mirror") => Mode::Mirror,
            Some("two-way") => Mode::TwoWay,
            Some(other) => {
                return self.at(
                    p.mode.as_ref().unwrap(),
                    format!("bad mode {other:?}: expected \"mirror\" or \"two-way\""),
                )
            }
        };
        let when = match (&p.watch, &p.schedule) {
            (Some(w), Some(_)) if *w.get_ref() => {
                return self.at(w, "watch = true and schedule exclude each other");
            }
            (_, Some(s)) => {
                When::Schedule(Schedule::parse(s.get_ref()).or_else(|e| self.at(s, e))?)
            }
            (Some(w), None) if !*w.get_ref() => {
                return self.at(w, "watch = false needs a schedule");
            }
            _ => When::Watch,
        };
        let src = p.source.get_ref();
        if crate::remote::spec::parse(std::ffi::OsStr::new(src)).is_some() {
            return self.at(
                &p.source,
                "source must be a local directory (a remote destination is fine)",
            );
        }
        let source = self.path(src);
        match std::fs::metadata(&source) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return self.at(
                    &p.source,
                    format!("source {} is not a directory", source.display()),
                )
            }
            Err(e) => return self.at(&p.source, format!("source {}: {e}", source.display())),
        }
        let dst = p.destination.get_ref();
        if dst.is_empty() {
            return self.at(&p.destination, "destination is empty");
        }
        let destination = match crate::remote::spec::parse(std::ffi::OsStr::new(dst)) {
            Some(_) => dst.clone(),
            None => self.path(dst).to_string_lossy().into_owned(),
        };
        if let Err(e) =
            crate::exclude::Excludes::new(&p.exclude.iter().map(Into::into).collect::<Vec<_>>())
        {
            return self.err(
                Some(sp.span()),
                format!("bad exclude pattern: {}", crate::error::chain(&e)),
            );
        }
        let bwlimit = match &p.bwlimit {
            Some(b) => self.bwlimit(b)?,
            None => Bwlimit::None,
        };
        let timeout = match &p.timeout {
            Some(t) if *t.get_ref() < 0 => {
                return self.at(t, "timeout is a number of seconds, 0 or more")
            }
            Some(t) => *t.get_ref() as u64,
            None => 120,
        };
        Ok(PairConfig {
            name: name.clone(),
            source,
            destination,
            mode,
            when,
            exclude: p.exclude.clone(),
            archive: p.archive,
            no_delete: p.no_delete,
            bwlimit,
            rsh: p.rsh.clone(),
            remote_path: p.remote_path.clone(),
            compress: p.compress,
            timeout,
        })
    }

    /// Parses and validates the whole file.
    pub fn parse(&self) -> Result<Config, ConfigError> {
        let raw: RawFile = match toml::from_str(self.text) {
            Ok(r) => r,
            Err(e) => return self.err(e.span(), e.message().trim().to_string()),
        };
        let mut c = Config {
            file: self.file.to_path_buf(),
            control: None,
            http: None,
            token: None,
            log: LogLevel::default(),
            on_error: Vec::new(),
            on_conflict: Vec::new(),
            state: None,
            pairs: Vec::new(),
        };
        self.daemon(raw.daemon, &mut c)?;
        if raw.pair.len() > MAX_PAIRS {
            return self.err(
                Some(raw.pair[MAX_PAIRS].span()),
                format!("at most {MAX_PAIRS} pairs"),
            );
        }
        for (i, sp) in raw.pair.iter().enumerate() {
            let p = sp.get_ref();
            if let Some(prev) = raw.pair[..i]
                .iter()
                .find(|q| q.get_ref().name.get_ref() == p.name.get_ref())
            {
                let l = self.line(prev.get_ref().name.span().start);
                return self.at(
                    &p.name,
                    format!(
                        "duplicate pair name {:?} (first on line {l})",
                        p.name.get_ref()
                    ),
                );
            }
            let pc = self.pair(sp)?;
            // Nesting, against every earlier pair (both ways): reported at
            // the later pair's destination.
            for (j, q) in c.pairs.iter().enumerate() {
                if let Some(why) = nested(q, &pc).or_else(|| nested(&pc, q)) {
                    let _ = j;
                    return self.at(&p.destination, why);
                }
            }
            if let Some(why) = nested(&pc, &pc) {
                return self.at(&p.destination, why);
            }
            c.pairs.push(pc);
        }
        Ok(c)
    }
}

/// `b`'s destination inside (or equal to, or holding) `a`'s source.
fn nested(a: &PairConfig, b: &PairConfig) -> Option<String> {
    if crate::remote::spec::parse(std::ffi::OsStr::new(&b.destination)).is_some() {
        return None;
    }
    let dst = normalize(Path::new(&b.destination));
    let src = normalize(&a.source);
    if dst.starts_with(&src) || src.starts_with(&dst) {
        let whose = if a.name == b.name {
            "its own".to_string()
        } else {
            format!("pair {:?}'s", a.name)
        };
        return Some(format!(
            "destination {} of pair {:?} overlaps {whose} source {}",
            b.destination,
            b.name,
            a.source.display()
        ));
    }
    None
}

/// `p` with `.` and `..` resolved lexically, symlinks resolved where the
/// path exists.
fn normalize(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    if let (Some(parent), Some(name)) = (p.parent(), p.file_name()) {
        if let Ok(c) = std::fs::canonicalize(parent) {
            return c.join(name);
        }
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// `IP:PORT`, `[IPv6]:PORT` or `localhost:PORT`.
pub fn parse_http(s: &str) -> Option<SocketAddr> {
    if let Some(port) = s.strip_prefix("localhost:") {
        return Some(SocketAddr::from(([127, 0, 0, 1], port.parse().ok()?)));
    }
    s.parse().ok()
}

/// Reads and parses the config file `file`.
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    let fail = |msg: String| ConfigError {
        file: file.to_path_buf(),
        line: None,
        msg,
    };
    let f = std::fs::File::open(file).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut text = String::new();
    use std::io::Read;
    f.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_FILE {
        return Err(fail(format!("larger than {MAX_FILE} bytes")));
    }
    parse_str(file, &text)
}

/// Parses `text` as the content of `file`.
pub fn parse_str(file: &Path, text: &str) -> Result<Config, ConfigError> {
    Parser { file, text }.parse()
}
