//! What each path answers:
//!
//! | method | path | answer |
//! |---|---|---|
//! | `GET` | `/` | the status page |
//! | `GET` | `/page.js` | its script |
//! | `GET` | `/api/pairs` | [`super::pairs_json`] |
//! | `GET` | `/metrics` | Prometheus text format 0.0.4 |
//! | `POST` | `/api/pairs/NAME/pause`, `.../resume`, `.../sync` | `{"pair","action","exit"}` (`exit`: the sync's exit code, 0 for pause and resume); 404 `{"error"}` for an unknown pair, 503 while the daemon stops |
//!
//! `NAME` is percent-encoded (UTF-8). Any other path is 404, another
//! method on a known path 405 (with `Allow`); the [`Guard`] decides first.

use super::guard::{Denied, Guard};
use super::request::{Request, Response};
use super::{metrics, page};
use crate::daemon::api::{Action, ActionError, Control};
use crate::daemon::json;

enum Route {
    Page,
    Script,
    Pairs,
    Metrics,
    Act(String, Action),
}

/// The answer to `req`.
pub fn handle(req: &Request, guard: &Guard, control: &dyn Control) -> Response {
    let path = req.target.split('?').next().unwrap_or_default();
    let Some(route) = route(path) else {
        // Do not tell a stranger which paths exist either.
        return match guard.check_read(req) {
            Err(d) => denied(d),
            Ok(()) => Response::error(404, "Not Found", "no such path"),
        };
    };
    let allow = if matches!(route, Route::Act(..)) {
        "POST"
    } else {
        "GET"
    };
    if req.method != allow {
        let mut r = Response::error(405, "Method Not Allowed", "method not allowed");
        r.headers.push(("Allow", allow.to_owned()));
        return r;
    }
    let checked = match route {
        Route::Act(..) => guard.check_write(req),
        _ => guard.check_read(req),
    };
    if let Err(d) = checked {
        return denied(d);
    }
    match route {
        Route::Page => {
            let body = page::render(&control.pairs(), control.watches());
            let mut r = Response::ok("text/html; charset=utf-8", body);
            r.headers
                .push(("Content-Security-Policy", page::CSP.to_owned()));
            r
        }
        Route::Script => Response::ok("text/javascript; charset=utf-8", page::SCRIPT.to_owned()),
        Route::Pairs => Response::json(200, "OK", json::pairs_json(&control.pairs())),
        Route::Metrics => Response::ok(
            metrics::CONTENT_TYPE,
            metrics::render(&control.pairs(), control.watches()),
        ),
        Route::Act(name, action) => act(control, &name, action),
    }
}

fn act(control: &dyn Control, name: &str, action: Action) -> Response {
    let word = match action {
        Action::Pause => "pause",
        Action::Resume => "resume",
        Action::SyncNow => "sync",
    };
    match control.act(name, action) {
        Ok(exit) => {
            let mut body = String::from("{\"pair\":");
            json::push_str(&mut body, name);
            body.push_str(&format!(",\"action\":\"{word}\",\"exit\":{exit}}}"));
            Response::json(200, "OK", body)
        }
        Err(e @ ActionError::NoSuchPair(_)) => Response::error(404, "Not Found", &e.to_string()),
        Err(e @ ActionError::Stopping) => {
            Response::error(503, "Service Unavailable", &e.to_string())
        }
    }
}

fn denied(d: Denied) -> Response {
    match d {
        Denied::Host => Response::error(403, "Forbidden", "Host is not this server"),
        Denied::CrossSite => Response::error(403, "Forbidden", "cross-site request refused"),
        Denied::Unauthorized => {
            let mut r = Response::error(401, "Unauthorized", "a token is required");
            r.headers
                .push(("WWW-Authenticate", "Bearer realm=\"dirsync\"".to_owned()));
            r.headers.push((
                "WWW-Authenticate",
                "Basic realm=\"dirsync\", charset=\"UTF-8\"".to_owned(),
            ));
            r
        }
    }
}

fn route(path: &str) -> Option<Route> {
    match path {
        "/" => return Some(Route::Page),
        "/page.js" => return Some(Route::Script),
        "/api/pairs" => return Some(Route::Pairs),
        "/metrics" => return Some(Route::Metrics),
        _ => {}
    }
    let rest = path.strip_prefix("/api/pairs/")?;
    let (name, action) = rest.rsplit_once('/')?;
    let action = match action {
        "pause" => Action::Pause,
        "resume" => Action::Resume,
        "sync" => Action::SyncNow,
        _ => return None,
    };
    let name = percent_decode(name)?;
    if name.is_empty() {
        return None;
    }
    Some(Route::Act(name, action))
}

/// `%XX`-decoded `s`, which must then be UTF-8 (pair names are).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_decoded() {
        assert_eq!(percent_decode("a%20b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert!(
            matches!(route("/api/pairs/a%2Fb/sync"), Some(Route::Act(n, Action::SyncNow)) if n == "a/b")
        );
        assert!(route("/api/pairs//pause").is_none());
        assert!(route("/api/pairs/x/delete").is_none());
    }
}
