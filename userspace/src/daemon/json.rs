//! The one JSON encoder of the daemon: `dirsync status --json` (the
//! control socket) and `GET /api/pairs` give the same bytes
//! ([`pairs_json`]); names that are not UTF-8 keep their bytes as
//! `\udcHH` escapes, which [`lossy_surrogates`] makes readable by a
//! strict JSON parser.
//!
//! `{"pairs":[{"name","mode","state","error","last_sync","last_success",
//! "lag_ms","queue","conflicts","bytes","files", ...}]}`, in config order,
//! times RFC 3339 UTC or `null`. Beyond the pinned fields each pair also
//! has `errors`, `schedule` and `recent_conflicts` (what the page shows).

use std::time::SystemTime;

use crate::daemon::api::{Conflict, PairStatus};
pub use crate::utc::rfc3339;

/// Every pair as the JSON object `{"pairs":[...]}` (one line, no
/// trailing newline).
pub fn pairs_json(pairs: &[PairStatus]) -> String {
    let mut out = String::from("{\"pairs\":[");
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_pair(&mut out, p);
    }
    out.push_str("]}");
    out
}

fn push_pair(out: &mut String, p: &PairStatus) {
    out.push_str("{\"name\":");
    push_str(out, &p.name);
    out.push_str(",\"mode\":");
    push_str(out, p.mode.as_str());
    out.push_str(",\"state\":");
    push_str(out, p.state.as_str());
    out.push_str(",\"error\":");
    match &p.error {
        Some(e) => push_str(out, e),
        None => out.push_str("null"),
    }
    out.push_str(",\"last_sync\":");
    push_time(out, p.last_sync);
    out.push_str(",\"last_success\":");
    push_time(out, p.last_success);
    out.push_str(&format!(
        ",\"lag_ms\":{},\"queue\":{},\"conflicts\":{},\"bytes\":{},\"files\":{},\"errors\":{}",
        p.lag_ms, p.queue, p.conflicts, p.bytes, p.files, p.errors
    ));
    out.push_str(",\"schedule\":");
    push_str(out, &p.schedule);
    out.push_str(",\"recent_conflicts\":[");
    for (i, c) in p.recent_conflicts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_conflict(out, c);
    }
    out.push_str("]}");
}

fn push_conflict(out: &mut String, c: &Conflict) {
    out.push_str("{\"path\":");
    push_bytes(out, &c.path);
    out.push_str(",\"copy\":");
    push_bytes(out, &c.copy);
    out.push_str(",\"sides\":[");
    for (i, (size, mtime)) in c.sides.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{{\"size\":{size},\"mtime\":"));
        push_time(out, *mtime);
        out.push('}');
    }
    out.push_str("],\"at\":");
    push_time(out, Some(c.at));
    out.push('}');
}

fn push_time(out: &mut String, t: Option<SystemTime>) {
    match t {
        Some(t) => {
            out.push('"');
            out.push_str(&rfc3339(t));
            out.push('"');
        }
        None => out.push_str("null"),
    }
}

/// Appends `s` as a JSON string. Besides what JSON requires, `<`, `>`,
/// `&` and U+2028/U+2029 are escaped too, so that the text stays inert
/// wherever a client embeds it.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        push_char(out, c);
    }
    out.push('"');
}

/// Appends the bytes of a name as a JSON string: valid UTF-8 as is
/// (escaped as [`push_str`] does), every other byte as `\udcHH` (the
/// CLI's `--json` convention, Python's `surrogateescape`).
pub fn push_bytes(out: &mut String, mut b: &[u8]) {
    out.push('"');
    while !b.is_empty() {
        match std::str::from_utf8(b) {
            Ok(s) => {
                s.chars().for_each(|c| push_char(out, c));
                break;
            }
            Err(e) => {
                let (good, bad) = b.split_at(e.valid_up_to());
                // `good` is valid UTF-8 (`valid_up_to`): this always matches.
                if let Ok(s) = std::str::from_utf8(good) {
                    s.chars().for_each(|c| push_char(out, c));
                }
                let n = e.error_len().unwrap_or(bad.len());
                for byte in &bad[..n] {
                    out.push_str(&format!("\\udc{byte:02x}"));
                }
                b = &bad[n..];
            }
        }
    }
    out.push('"');
}

fn push_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x20
            || matches!(c, '<' | '>' | '&' | '\u{7f}' | '\u{2028}' | '\u{2029}') =>
        {
            out.push_str(&format!("\\u{:04x}", c as u32))
        }
        c => out.push(c),
    }
}

/// The JSON text `text` with every lone `\udcHH` escape (a byte of a name
/// that is not UTF-8, see [`push_bytes`]) replaced by `\ufffd`, so that a
/// strict parser (serde_json refuses lone surrogates) reads the rest.
pub fn lossy_surrogates(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    let mut after_high = false;
    while i < text.len() {
        if text[i] != b'\\' {
            out.push(text[i]);
            i += 1;
            after_high = false;
            continue;
        }
        let esc = &text[i..];
        let hex = esc
            .get(2..6)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u16::from_str_radix(h, 16).ok());
        match (esc.get(1), hex) {
            (Some(b'u'), Some(v)) => {
                let low = (0xdc00..0xe000).contains(&v);
                if low && !after_high {
                    out.extend_from_slice(b"\\ufffd");
                } else {
                    out.extend_from_slice(&esc[..6]);
                }
                after_high = (0xd800..0xdc00).contains(&v);
                i += 6;
            }
            _ => {
                // A two-character escape (or a truncated one): kept.
                out.extend_from_slice(&esc[..esc.len().min(2)]);
                i += 2;
                after_high = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        let mut o = String::new();
        push_str(&mut o, x);
        o
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(s("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
        assert_eq!(s("</script>&"), "\"\\u003c/script\\u003e\\u0026\"");
        assert_eq!(s("\u{2028}"), "\"\\u2028\"");
    }

    #[test]
    fn bytes_keep_what_is_not_utf8() {
        let mut o = String::new();
        push_bytes(&mut o, b"a\xffb\xe2\x82c\xc3\xa9");
        assert_eq!(o, "\"a\\udcffb\\udce2\\udc82cé\"");
        // A strict parser reads it once the lone surrogates are replaced.
        let v: serde_json::Value = serde_json::from_slice(&lossy_surrogates(o.as_bytes())).unwrap();
        assert_eq!(v, "a\u{fffd}b\u{fffd}\u{fffd}cé");
        assert!(serde_json::from_str::<serde_json::Value>(&o).is_err());
        // Escaped backslashes and real surrogate pairs are left alone.
        let t = br#""\\udcff \ud83d\ude00""#;
        assert_eq!(lossy_surrogates(t), t.to_vec());
    }
}
