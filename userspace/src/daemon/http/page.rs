//! The status page (`GET /`), rendered by the server: every pair's name,
//! state, last sync and success, lag, queue, counters, error and latest
//! conflicts (both versions' sizes and times), and its pause, resume and
//! sync-now buttons. Everything from a config file or a peer is escaped.
//! Its script (`GET /page.js`, [`SCRIPT`]; no inline script, no fetch from
//! anywhere else: the `Content-Security-Policy` says so) refreshes the
//! figures from `/api/pairs` and posts the buttons' actions.

use std::fmt::Write;
use std::time::SystemTime;

use crate::daemon::api::{PairStatus, Watches};
use crate::utc::rfc3339;

/// The page's `Content-Security-Policy`: its own script and nothing else.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
                       connect-src 'self'; img-src 'self'; base-uri 'none'; \
                       form-action 'none'; frame-ancestors 'none'";

/// The page's script, served as `/page.js`.
pub const SCRIPT: &str = include_str!("page.js");

const STYLE: &str = "body{font:14px/1.4 sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}\
th{background:#f3f3f3}.state{font-weight:bold}\
.st-error{color:#b00}.st-paused{color:#a60}.st-watching,.st-scheduled{color:#070}\
.err{color:#b00;white-space:pre-wrap}button{margin-right:.3em}\
.conflicts{font-size:.9em;margin:.3em 0 0 0}#note{color:#555}tr.pair td{white-space:nowrap}tr.pair td.name{white-space:normal;overflow-wrap:anywhere;max-width:16em}tr.detail[hidden]{display:none}";

/// The whole page for these pairs.
pub fn render(pairs: &[PairStatus], watches: Watches) -> String {
    let mut out = String::with_capacity(4096 + pairs.len() * 1024);
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>dirsync</title><style>",
    );
    out.push_str(STYLE);
    out.push_str("</style></head><body><h1>dirsync</h1>");
    let _ = write!(
        out,
        "<p>{} pairs; inotify watches <span id=\"watches\">{} of {}</span>. \
         <span id=\"note\" role=\"status\"></span></p>",
        pairs.len(),
        watches.used,
        watches.max
    );
    out.push_str(
        "<table><thead><tr><th>pair</th><th>mode</th><th>runs</th><th>state</th>\
         <th>last sync</th><th>last success</th><th>lag</th><th>queue</th>\
         <th>files</th><th>bytes</th><th>errors</th><th>conflicts</th><th></th>\
         </tr></thead><tbody id=\"pairs\">",
    );
    for p in pairs {
        row(&mut out, p);
    }
    out.push_str("</tbody></table><script src=\"/page.js\"></script></body></html>\n");
    out
}

fn row(out: &mut String, p: &PairStatus) {
    let name = escape(&p.name);
    let state = p.state.as_str();
    let _ = write!(
        out,
        "<tr class=\"pair\" data-pair=\"{name}\"><td class=\"name\">{name}</td>\
         <td>{}</td><td>{}</td><td class=\"state st-{state}\" data-f=\"state\">{state}</td>\
         <td data-f=\"last_sync\">{}</td><td data-f=\"last_success\">{}</td>\
         <td data-f=\"lag_ms\">{} ms</td><td data-f=\"queue\">{}</td><td data-f=\"files\">{}</td>\
         <td data-f=\"bytes\">{}</td><td data-f=\"errors\">{}</td><td data-f=\"conflicts\">{}</td><td>",
        p.mode.as_str(),
        escape(&p.schedule),
        time(p.last_sync),
        time(p.last_success),
        p.lag_ms,
        p.queue,
        p.files,
        p.bytes,
        p.errors,
        p.conflicts,
    );
    for (action, label) in [
        ("pause", "Pause"),
        ("resume", "Resume"),
        ("sync", "Sync now"),
    ] {
        let _ = write!(
            out,
            "<button type=\"button\" data-action=\"{action}\" data-pair=\"{name}\">{label}</button>"
        );
    }
    out.push_str("</td></tr>");
    // The error and the conflicts get a row of their own below the pair.
    let _ = write!(
        out,
        "<tr class=\"detail\" data-pair=\"{name}\"{}><td></td><td colspan=\"12\">\
         <div class=\"err\" data-f=\"error\">{}</div>",
        if p.error.is_none() && p.recent_conflicts.is_empty() {
            " hidden"
        } else {
            ""
        },
        p.error.as_deref().map(escape).unwrap_or_default()
    );
    out.push_str("<ul class=\"conflicts\" data-f=\"recent_conflicts\">");
    for c in &p.recent_conflicts {
        let _ = write!(
            out,
            "<li>conflict at {}: <code>{}</code> (source {} bytes, {}; destination {} bytes, {}), \
             other version kept as <code>{}</code></li>",
            rfc3339(c.at),
            escape(&String::from_utf8_lossy(&c.path)),
            c.sides[0].0,
            time(c.sides[0].1),
            c.sides[1].0,
            time(c.sides[1].1),
            escape(&String::from_utf8_lossy(&c.copy)),
        );
    }
    out.push_str("</ul></td></tr>");
}

fn time(t: Option<SystemTime>) -> String {
    t.map_or_else(|| "never".to_owned(), rfc3339)
}

/// `s` with `& < > " '` as character references: safe as element text and
/// as a quoted attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<img src=x onerror='a()'>&\""),
            "&lt;img src=x onerror=&#39;a()&#39;&gt;&amp;&quot;"
        );
    }
}
