//! The CLI's reporters: human lines (`-v`), JSON lines (`--json`), and the
//! formatting of byte paths for both.
//!
//! Human output prints names as UTF-8; bytes that are not valid UTF-8 and
//! control characters (newline, tab, ...) are shown as `\xHH`.
//!
//! JSON output is one object per line. Paths are JSON strings; a byte that
//! is not part of valid UTF-8 is written as the escape `\udcHH` (a lone
//! low surrogate: Python's `surrogateescape` convention, so
//! `json.loads(s).encode("utf-8", "surrogateescape")` gives the exact
//! bytes back).

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::report::{Event, Reporter};
use crate::sync::Summary;

/// Appends `bytes` for humans: UTF-8 as is, control characters and invalid
/// bytes as `\xHH`.
pub fn push_human(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
}

fn human_path(p: &Path) -> String {
    let mut s = String::new();
    push_human(&mut s, p.as_os_str().as_bytes());
    s
}

/// The `-v` line of an event (no trailing newline), e.g.
/// `Copied: src/a -> dst/a`.
pub fn human_line(event: &Event<'_>) -> String {
    match *event {
        Event::Copied { src, dst } => {
            format!("Copied: {} -> {}", human_path(src), human_path(dst))
        }
        Event::CreatedDir { path } => format!("Created directory: {}", human_path(path)),
        Event::Linked { path, target } => {
            let mut t = String::new();
            push_human(&mut t, target);
            format!("Linked: {} -> {}", human_path(path), t)
        }
        Event::Deleted { path } => format!("Deleted: {}", human_path(path)),
        Event::Attrs { path } => format!("Updated attributes: {}", human_path(path)),
        Event::Renamed { from, to } => {
            format!("Renamed: {} -> {}", human_path(from), human_path(to))
        }
        Event::Special { path, kind } => format!("Created {}: {}", kind, human_path(path)),
        Event::Skipped { path, message } => {
            format!("Skipped: {}: {}", human_path(path), message)
        }
        Event::Warning { path, message } => {
            format!("warning: {}: {}", human_path(path), message)
        }
        Event::Error { path, message } => format!("error: {}: {}", human_path(path), message),
        Event::Watching { dir } => format!("Watching: {}", human_path(dir)),
        Event::Notify { kind, path } => format!("Event: {} {}", kind, human_path(path)),
        Event::Rescan {
            reason,
            path,
            count,
        } => format!("Rescan: {} {} (#{})", reason, human_path(path), count),
    }
}

/// Appends a JSON string literal (with quotes) for `bytes`; invalid UTF-8
/// bytes become `\udcHH`.
pub fn push_json_bytes(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\udc{b:02x}"));
        }
    }
    out.push('"');
}

/// Appends a JSON string literal for a `str`.
pub fn push_json_str(out: &mut String, s: &str) {
    push_json_bytes(out, s.as_bytes())
}

/// The `--json` object of an event (no trailing newline).
pub fn json_line(event: &Event<'_>) -> String {
    let mut o = String::from("{\"action\":");
    push_json_str(&mut o, event.action());
    let field = |o: &mut String, k: &str, v: &[u8]| {
        o.push(',');
        push_json_str(o, k);
        o.push(':');
        push_json_bytes(o, v);
    };
    match *event {
        Event::Copied { src, dst } => {
            field(&mut o, "src", src.as_os_str().as_bytes());
            field(&mut o, "dst", dst.as_os_str().as_bytes());
        }
        Event::CreatedDir { path } | Event::Deleted { path } | Event::Attrs { path } => {
            field(&mut o, "path", path.as_os_str().as_bytes());
        }
        Event::Linked { path, target } => {
            field(&mut o, "path", path.as_os_str().as_bytes());
            field(&mut o, "target", target);
        }
        Event::Special { path, kind } => {
            field(&mut o, "path", path.as_os_str().as_bytes());
            field(&mut o, "kind", kind.as_bytes());
        }
        Event::Renamed { from, to } => {
            field(&mut o, "from", from.as_os_str().as_bytes());
            field(&mut o, "to", to.as_os_str().as_bytes());
        }
        Event::Skipped { path, message }
        | Event::Warning { path, message }
        | Event::Error { path, message } => {
            field(&mut o, "path", path.as_os_str().as_bytes());
            field(&mut o, "message", message.as_bytes());
        }
        Event::Watching { dir } => {
            field(&mut o, "path", dir.as_os_str().as_bytes());
        }
        Event::Notify { kind, path } => {
            field(&mut o, "kind", kind.as_bytes());
            field(&mut o, "path", path.as_os_str().as_bytes());
        }
        Event::Rescan {
            reason,
            path,
            count,
        } => {
            field(&mut o, "reason", reason.as_bytes());
            field(&mut o, "path", path.as_os_str().as_bytes());
            o.push_str(&format!(",\"count\":{count}"));
        }
    }
    o.push('}');
    o
}

/// The final `--json` object: `{"action":"summary",...,"exit":N}`.
pub fn json_summary(s: &Summary, exit: i32) -> String {
    format!(
        "{{\"action\":\"summary\",\"copied\":{},\"bytes\":{},\"dirs_created\":{},\"links\":{},\"deleted\":{},\"attrs\":{},\"renamed\":{},\"skipped\":{},\"specials\":{},\"errors\":{},\"exit\":{}}}",
        s.copied,
        s.bytes,
        s.dirs_created,
        s.links,
        s.deleted,
        s.attrs,
        s.renamed,
        s.skipped,
        s.specials,
        s.errors,
        exit
    )
}

/// The `-v` closing line.
pub fn human_summary(s: &Summary) -> String {
    format!(
        "Summary: {} copied ({} bytes), {} directories created, {} links, {} deleted, {} attributes updated, {} special files, {} skipped, {} errors",
        s.copied, s.bytes, s.dirs_created, s.links, s.deleted, s.attrs, s.specials, s.skipped, s.errors
    )
}

/// How chatty the human reporter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Default: warnings and errors on stderr.
    Normal,
    /// `-v`: plus one line per action on stdout.
    Verbose,
}

/// Human output: actions on stdout with `-v`, problems on stderr.
#[derive(Debug)]
pub struct HumanReporter {
    verbosity: Verbosity,
    progress: Option<std::sync::Arc<crate::progress::ProgressLine>>,
}

impl HumanReporter {
    /// A reporter at `verbosity`, clearing `progress` before each line.
    pub fn new(
        verbosity: Verbosity,
        progress: Option<std::sync::Arc<crate::progress::ProgressLine>>,
    ) -> Self {
        HumanReporter {
            verbosity,
            progress,
        }
    }
}

impl Reporter for HumanReporter {
    fn event(&self, event: &Event<'_>) {
        let to_stderr = match event {
            Event::Error { .. } => true,
            Event::Warning { .. } | Event::Skipped { .. } => {
                if self.verbosity == Verbosity::Quiet {
                    return;
                }
                true
            }
            _ => {
                if self.verbosity != Verbosity::Verbose {
                    return;
                }
                false
            }
        };
        let mut line = human_line(event);
        line.push('\n');
        if let Some(p) = &self.progress {
            p.clear();
        }
        if to_stderr {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        } else {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        }
    }
}

/// `--json`: every event as one JSON object per line on stdout.
#[derive(Debug, Default)]
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn event(&self, event: &Event<'_>) {
        let mut line = json_line(event);
        line.push('\n');
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn p(b: &[u8]) -> &Path {
        Path::new(OsStr::from_bytes(b))
    }

    #[test]
    fn json_escapes_everything() {
        let mut s = String::new();
        push_json_bytes(&mut s, b"a\"b\\c\nd\x01e\xffz\xc3\xa9");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001e\\udcffz\u{e9}\"");
    }

    #[test]
    fn json_event_lines() {
        let e = Event::Copied {
            src: p(b"s/\xfe"),
            dst: p(b"d/-x"),
        };
        assert_eq!(
            json_line(&e),
            "{\"action\":\"copied\",\"src\":\"s/\\udcfe\",\"dst\":\"d/-x\"}"
        );
        let e = Event::Error {
            path: p(b"a"),
            message: "Permission denied",
        };
        assert_eq!(
            json_line(&e),
            "{\"action\":\"error\",\"path\":\"a\",\"message\":\"Permission denied\"}"
        );
    }

    #[test]
    fn human_lines_escape_control_and_invalid_bytes() {
        let e = Event::Deleted {
            path: p(b"d/new\nline\xff"),
        };
        assert_eq!(human_line(&e), "Deleted: d/new\\x0aline\\xff");
        let e = Event::Copied {
            src: p(b"a"),
            dst: p(b"b"),
        };
        assert_eq!(human_line(&e), "Copied: a -> b");
    }
}
