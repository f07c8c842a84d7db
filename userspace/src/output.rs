//! The CLI's reporters: human lines (`-v`, the `Display` of
//! [`Event`]) and JSON lines (`--json`). This is where output is printed.
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

use dirsync::report::{Event, Reporter, Summary};

use crate::progress::ProgressLine;

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
        Event::Copied { src, dst } | Event::Cloned { src, dst } => {
            field(&mut o, "src", src.as_os_str().as_bytes());
            field(&mut o, "dst", dst.as_os_str().as_bytes());
        }
        Event::HardLinked { path, target } => {
            field(&mut o, "path", path.as_os_str().as_bytes());
            field(&mut o, "target", target.as_os_str().as_bytes());
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
        Event::Conflict {
            path,
            copy,
            message,
        } => {
            field(&mut o, "path", path.as_os_str().as_bytes());
            if let Some(c) = copy {
                field(&mut o, "copy", c.as_os_str().as_bytes());
            }
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

/// The final `--json` object: `{"action":"summary",...,"exit":N}`, one
/// field per counter of [`Summary`].
pub fn json_summary(s: &Summary, exit: i32) -> String {
    let mut o = String::from("{\"action\":\"summary\"");
    for (name, value) in s.fields() {
        o.push_str(&format!(",\"{name}\":{value}"));
    }
    o.push_str(&format!(",\"exit\":{exit}}}"));
    o
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
    progress: Option<std::sync::Arc<ProgressLine>>,
}

impl HumanReporter {
    /// A reporter at `verbosity`, clearing `progress` before each line.
    pub fn new(verbosity: Verbosity, progress: Option<std::sync::Arc<ProgressLine>>) -> Self {
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
        let mut line = event.to_string();
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
    use std::path::Path;

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
}
