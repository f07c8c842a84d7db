//! `dirsync daemon`, `status`, `pause`, `resume`, `sync-now`: the
//! command-line side of [`dirsync::daemon`] (the arguments, the log
//! output, the client of the control socket).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use dirsync::daemon::api::Action;
use dirsync::daemon::config::{self, LogLevel};
use dirsync::daemon::control;
use dirsync::daemon::log::Log;
use dirsync::daemon::service;
use dirsync::ExitStatus;
use serde_json::Value;

fn exit(s: ExitStatus) -> ExitCode {
    ExitCode::from(s as u8)
}

/// How the daemon's log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `LEVEL pair: message` (with `<N>` priority prefixes for journald
    /// when `$JOURNAL_STREAM` is set).
    Text,
    /// One JSON object per line: `time`, `level`, `pair`, `message`.
    Json,
}

/// `dirsync daemon`.
#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// The config file (TOML)
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Validate the config file and exit (0, or 1 with FILE:LINE: what is wrong)
    #[arg(long)]
    pub check: bool,
    /// Log lines as text (default) or JSON
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

/// Where to find the running daemon.
#[derive(Args, Debug)]
pub struct Locate {
    /// The control socket (else --config's [daemon] control, else $DIRSYNC_CONTROL, else the default)
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// The daemon's config file (its [daemon] control)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `dirsync status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// {"pairs":[...]} as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub locate: Locate,
}

/// `dirsync pause|resume|sync-now NAME`.
#[derive(Args, Debug)]
pub struct PairArgs {
    /// The pair's name
    pub name: String,
    #[command(flatten)]
    pub locate: Locate,
}

/// Prints the daemon's messages on stderr.
struct StderrLog {
    format: LogFormat,
    journal: bool,
}

impl Log for StderrLog {
    fn log(&self, level: LogLevel, pair: Option<&str>, msg: &str) {
        let (prio, name) = match level {
            LogLevel::Error => (3, "error"),
            LogLevel::Warn => (4, "warning"),
            LogLevel::Info => (6, "info"),
            LogLevel::Debug => (7, "debug"),
        };
        // One line per message, whatever it holds.
        let msg = msg.replace('\n', " ");
        let line = match self.format {
            LogFormat::Json => serde_json::json!({
                "time": dirsync::daemon::json::rfc3339(std::time::SystemTime::now()),
                "level": name,
                "pair": pair,
                "message": msg,
            })
            .to_string(),
            LogFormat::Text => {
                let prefix = if self.journal {
                    format!("<{prio}>")
                } else {
                    String::new()
                };
                match pair {
                    Some(p) => format!("{prefix}{name}: {p}: {msg}"),
                    None => format!("{prefix}{name}: {msg}"),
                }
            }
        };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// `dirsync daemon --config FILE [--check]`.
pub fn daemon(a: &DaemonArgs) -> ExitCode {
    if a.check {
        return match config::load(&a.config) {
            Ok(c) => {
                println!("{}: ok, {} pairs", a.config.display(), c.pairs.len());
                exit(ExitStatus::Ok)
            }
            Err(e) => {
                eprintln!("{e}");
                exit(ExitStatus::Usage)
            }
        };
    }
    let sink = Arc::new(StderrLog {
        format: a.log_format,
        journal: std::env::var_os("JOURNAL_STREAM").is_some(),
    });
    match service::run(&a.config, sink, Some(dirsync::daemon::http::start)) {
        Ok(()) => exit(ExitStatus::Ok),
        Err(service::DaemonError::Config(e)) => {
            eprintln!("{e}");
            exit(ExitStatus::Usage)
        }
        Err(e) => {
            eprintln!("dirsync daemon: {e}");
            exit(ExitStatus::Fatal)
        }
    }
}

/// The control socket `l` names (see [`Locate`]).
fn socket(l: &Locate) -> Result<PathBuf, ExitCode> {
    if let Some(p) = &l.control {
        return Ok(p.clone());
    }
    if let Some(f) = &l.config {
        return match config::load(f) {
            Ok(c) => Ok(c.control.unwrap_or_else(control::default_path)),
            Err(e) => {
                eprintln!("{e}");
                Err(exit(ExitStatus::Usage))
            }
        };
    }
    if let Some(p) = std::env::var_os("DIRSYNC_CONTROL").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    Ok(control::default_path())
}

fn ask(path: &Path, req: &str, timeout: Option<Duration>) -> Result<Value, ExitCode> {
    control::request(path, req, timeout).map_err(|e| {
        eprintln!("dirsync: {e}");
        exit(ExitStatus::Fatal)
    })
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("-")
}

/// `dirsync status [--json]`.
pub fn status(a: &StatusArgs) -> ExitCode {
    let path = match socket(&a.locate) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let raw = match control::request_raw(&path, "status", Some(Duration::from_secs(10))) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dirsync: {e}");
            return exit(ExitStatus::Fatal);
        }
    };
    let v = match control::parse_answer(&raw) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("dirsync: {e}");
            return exit(ExitStatus::Fatal);
        }
    };
    let Some(pairs) = v.get("pairs").and_then(Value::as_array) else {
        eprintln!("dirsync: bad answer from the daemon: {}", text(&v, "error"));
        return exit(ExitStatus::Fatal);
    };
    if a.json {
        // The daemon's bytes as they came (the same as `GET /api/pairs`:
        // a name that is not UTF-8 keeps its bytes as `\udcHH`).
        let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let mut out = std::io::stdout().lock();
        let _ = std::io::Write::write_all(&mut out, line);
        let _ = std::io::Write::write_all(&mut out, b"\n");
        return exit(ExitStatus::Ok);
    }
    println!(
        "{:<20} {:<10} {:<25} {:>8} {:>6} {:>8} {:>12}  ERROR",
        "NAME", "STATE", "LAST SYNC", "LAG MS", "QUEUE", "FILES", "BYTES"
    );
    for p in pairs {
        let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
        // The daemon is trusted as much as the user, but its text is
        // still shown escaped.
        let clean = |s: &str| {
            s.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect::<String>()
        };
        println!(
            "{:<20} {:<10} {:<25} {:>8} {:>6} {:>8} {:>12}  {}",
            clean(text(p, "name")),
            clean(text(p, "state")),
            clean(text(p, "last_sync")),
            n("lag_ms"),
            n("queue"),
            n("files"),
            n("bytes"),
            p.get("error")
                .and_then(Value::as_str)
                .map(clean)
                .unwrap_or_default()
        );
    }
    exit(ExitStatus::Ok)
}

/// `dirsync pause|resume|sync-now NAME`.
pub fn act(a: &PairArgs, action: Action) -> ExitCode {
    if a.name.is_empty() || a.name.contains(['\n', '\0']) {
        eprintln!("dirsync: bad pair name");
        return exit(ExitStatus::Usage);
    }
    let path = match socket(&a.locate) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let (verb, timeout) = match action {
        Action::Pause => ("pause", Some(Duration::from_secs(30))),
        Action::Resume => ("resume", Some(Duration::from_secs(30))),
        Action::SyncNow => ("sync-now", None),
    };
    let v = match ask(&path, &format!("{verb} {}", a.name), timeout) {
        Ok(v) => v,
        Err(c) => return c,
    };
    if v.get("ok").and_then(Value::as_bool) == Some(true) {
        let code = v.get("code").and_then(Value::as_u64).unwrap_or(3).min(3) as u8;
        return ExitCode::from(code);
    }
    eprintln!("dirsync: {}", text(&v, "error"));
    exit(ExitStatus::Usage)
}
