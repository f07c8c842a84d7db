//! The daemon's HTTP side against a fake daemon: the JSON of
//! `GET /api/pairs`, `/metrics`, the page, the actions and the routing.
//! (Who may do what, and the bounds: daemon_http_guard.rs; a real browser:
//! daemon_http_browser.rs.)

mod daemon_http_common;

use std::net::TcpListener;
use std::sync::Arc;

use daemon_http_common::*;
use dirsync::daemon::api::{Action, Control};
use dirsync::daemon::http::{self, HttpError};

fn start(sync_exit: u8) -> (http::HttpServer, Arc<Fake>) {
    let f = fake(three_pairs(), sync_exit);
    let control: Arc<dyn Control> = f.clone();
    let server = http::serve(TcpListener::bind("127.0.0.1:0").unwrap(), None, control).unwrap();
    (server, f)
}

#[test]
fn api_pairs_is_the_pinned_json() {
    let (server, _f) = start(0);
    let a = req(server.local_addr(), "GET", "/api/pairs", &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    // A byte that is not UTF-8 is a lone surrogate `\udcHH`.
    let text = a.text();
    assert!(
        text.contains("\"path\":\"notes/todo\\udcff.txt\""),
        "{text}"
    );
    let v = a.json();
    let pairs = v["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 3);
    let keys = [
        "name",
        "mode",
        "state",
        "error",
        "last_sync",
        "last_success",
        "lag_ms",
        "queue",
        "conflicts",
        "bytes",
        "files",
    ];
    for p in pairs {
        for k in keys {
            assert!(p.get(k).is_some(), "{k} missing in {p}");
        }
    }
    let p = &pairs[0];
    assert_eq!(p["name"], "photos");
    assert_eq!(p["mode"], "mirror");
    assert_eq!(p["state"], "watching");
    assert!(p["error"].is_null());
    assert_eq!(p["last_sync"], "2026-12-07T22:39:58.000Z");
    assert_eq!(p["last_success"], "2026-12-07T22:39:58.000Z");
    assert_eq!(p["lag_ms"], 1500);
    assert_eq!(p["queue"], 7);
    assert_eq!(p["bytes"], 123_456_789);
    assert_eq!(p["files"], 42);
    let d = &pairs[1];
    assert_eq!(d["name"], "docs two-way");
    assert_eq!(d["mode"], "two-way");
    assert_eq!(d["state"], "error");
    assert_eq!(d["error"], "nas: <host down> & \"retrying\"");
    assert_eq!(d["last_sync"], "2026-12-07T22:39:59.000Z");
    assert!(d["last_success"].is_null());
    assert_eq!(d["conflicts"], 1);
    let c = &d["recent_conflicts"][0];
    assert_eq!(c["path"], "notes/todo\\udcff.txt");
    assert_eq!(c["copy"], "notes/todo\\udcff.conflict.txt");
    assert_eq!(c["sides"][0]["size"], 1111);
    assert_eq!(c["sides"][1]["size"], 2222);
    assert_eq!(c["sides"][1]["mtime"], "2026-12-07T22:39:08.000Z");
    assert_eq!(c["at"], "2026-12-07T22:39:48.000Z");
    // The name with markup, quotes, a backslash and a newline comes back
    // exactly.
    assert_eq!(pairs[2]["name"], three_pairs()[2].name.as_str());
    assert_eq!(pairs[2]["state"], "scheduled");
    // And pairs_json (the control socket's) is the same text.
    assert_eq!(a.text(), http::pairs_json(&three_pairs()));
}

#[test]
fn metrics_are_prometheus_text() {
    let (server, _f) = start(0);
    let a = req(server.local_addr(), "GET", "/metrics", &[]);
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = a.text();
    for (name, kind) in [
        ("dirsync_pair_last_success_timestamp_seconds", "gauge"),
        ("dirsync_pair_lag_seconds", "gauge"),
        ("dirsync_pair_queue_depth", "gauge"),
        ("dirsync_pair_files_copied_total", "counter"),
        ("dirsync_pair_bytes_copied_total", "counter"),
        ("dirsync_pair_errors_total", "counter"),
        ("dirsync_pair_conflicts_total", "counter"),
        ("dirsync_inotify_watches", "gauge"),
        ("dirsync_inotify_watches_max", "gauge"),
    ] {
        assert!(
            text.contains(&format!("\n# TYPE {name} {kind}\n")),
            "{name}"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "dirsync_pair_last_success_timestamp_seconds{pair=\"photos\"} 1796683198",
        "dirsync_pair_last_success_timestamp_seconds{pair=\"docs two-way\"} 0",
        "dirsync_pair_lag_seconds{pair=\"photos\"} 1.5",
        "dirsync_pair_queue_depth{pair=\"photos\"} 7",
        "dirsync_pair_files_copied_total{pair=\"photos\"} 42",
        "dirsync_pair_bytes_copied_total{pair=\"photos\"} 123456789",
        "dirsync_pair_errors_total{pair=\"docs two-way\"} 3",
        "dirsync_pair_conflicts_total{pair=\"docs two-way\"} 1",
        "dirsync_pair_state{pair=\"docs two-way\",state=\"error\"} 1",
        "dirsync_pair_state{pair=\"docs two-way\",state=\"watching\"} 0",
        // The label value escaped per the format: \\ \" \n.
        "dirsync_pair_queue_depth{pair=\"<img src=x onerror=alert(1)>\\\"we'ird\\\\name\\n\"} 0",
        "dirsync_inotify_watches 1234",
        "dirsync_inotify_watches_max 65536",
    ] {
        assert!(lines.contains(&want), "no line {want:?} in\n{text}");
    }
    // Every line is a comment or `name{labels} value` with one value.
    for l in &lines {
        if l.starts_with('#') {
            continue;
        }
        let (series, value) = l.rsplit_once(' ').unwrap();
        assert!(series.starts_with("dirsync_"), "{l}");
        value.parse::<f64>().unwrap_or_else(|_| panic!("{l}"));
    }
}

#[test]
fn page_shows_every_pair_escaped_with_its_buttons() {
    let (server, _f) = start(0);
    let a = req(server.local_addr(), "GET", "/", &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = a.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let html = a.text();
    assert!(html.contains(">photos</td>"));
    assert!(html.contains(">docs two-way</td>"));
    assert!(html.contains(">&lt;img src=x onerror=alert(1)&gt;&quot;we&#39;ird\\name\n</td>"));
    assert!(!html.contains("<img"), "markup from a name got through");
    assert!(html.contains("nas: &lt;host down&gt; &amp; &quot;retrying&quot;"));
    // Three buttons per pair.
    for action in ["pause", "resume", "sync"] {
        assert_eq!(
            html.matches(&format!("data-action=\"{action}\"")).count(),
            3,
            "{action}"
        );
    }
    // The conflict with both versions' sizes and times.
    assert!(html.contains(
        "source 1111 bytes, 2026-12-07T22:38:18.000Z; destination 2222 bytes, 2026-12-07T22:39:08.000Z"
    ));
    // The figures.
    assert!(html.contains(">1500 ms</td>") && html.contains(">123456789</td>"));
    assert!(html.contains("inotify watches <span id=\"watches\">1234 of 65536</span>"));
    // No inline script, no fetch from elsewhere: one script, ours.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("<script src=\"/page.js\"></script>"));
    assert!(!html.contains("http://") && !html.contains("https://"));
    let js = req(server.local_addr(), "GET", "/page.js", &[]);
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(js.text().contains("/api/pairs"));
}

const SAME: &str = "Sec-Fetch-Site: same-origin";

#[test]
fn actions_change_state_and_sync_answers_with_its_exit_code() {
    let (server, f) = start(2);
    let addr = server.local_addr();
    let origin = format!("Origin: http://{addr}");
    let a = req(addr, "POST", "/api/pairs/photos/pause", &[SAME, &origin]);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["exit"], 0);
    let v = req(addr, "GET", "/api/pairs", &[]).json();
    assert_eq!(v["pairs"][0]["state"], "paused");
    let a = req(addr, "POST", "/api/pairs/photos/resume", &[SAME]);
    assert_eq!(a.status, 200);
    assert_eq!(
        req(addr, "GET", "/api/pairs", &[]).json()["pairs"][0]["state"],
        "watching"
    );
    // A percent-encoded name; sync answers with the fake sync's exit code.
    let a = req(addr, "POST", "/api/pairs/docs%20two-way/sync", &[&origin]);
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["exit"], 2);
    assert_eq!(a.json()["pair"], "docs two-way");
    assert_eq!(a.json()["action"], "sync");
    // An unknown pair: 404 and nothing done.
    let a = req(addr, "POST", "/api/pairs/nope/sync", &[SAME]);
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["error"], "no pair named 'nope'");
    assert_eq!(
        f.calls(),
        vec![
            ("photos".to_owned(), Action::Pause),
            ("photos".to_owned(), Action::Resume),
            ("docs two-way".to_owned(), Action::SyncNow),
        ]
    );
}

#[test]
fn unknown_paths_404_wrong_methods_405() {
    let (server, f) = start(0);
    let addr = server.local_addr();
    for path in [
        "/nope",
        "/api",
        "/api/pairs/photos",
        "/api/pairs/photos/delete",
        "/api/pairs//pause",
        "/api/pairs/%zz/pause",
    ] {
        assert_eq!(req(addr, "POST", path, &[SAME]).status, 404, "{path}");
        assert_eq!(req(addr, "GET", path, &[]).status, 404, "{path}");
    }
    for path in ["/", "/api/pairs", "/metrics", "/page.js"] {
        let a = req(addr, "POST", path, &[SAME]);
        assert_eq!(a.status, 405, "{path}");
        assert_eq!(a.header("allow"), Some("GET"));
        assert_eq!(req(addr, "DELETE", path, &[]).status, 405);
    }
    let a = req(addr, "GET", "/api/pairs/photos/pause", &[]);
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST"));
    assert!(f.calls().is_empty(), "{:?}", f.calls());
    // The query string is not part of the path.
    assert_eq!(req(addr, "GET", "/api/pairs?x=1", &[]).status, 200);
}

#[test]
fn non_loopback_needs_a_token_and_stop_closes_the_port() {
    let f: Arc<dyn Control> = fake(three_pairs(), 0);
    let any = TcpListener::bind("0.0.0.0:0").unwrap();
    assert!(matches!(
        http::serve(any, None, f.clone()),
        Err(HttpError::NotLoopback(_))
    ));
    let r = http::bind("0.0.0.0:0".parse().unwrap(), None, f.clone());
    assert!(matches!(r, Err(HttpError::NotLoopback(_))));
    let r = http::bind(
        "127.0.0.1:0".parse().unwrap(),
        Some(String::new()),
        f.clone(),
    );
    assert!(matches!(r, Err(HttpError::EmptyToken)));
    let server = http::bind("0.0.0.0:0".parse().unwrap(), Some("t".into()), f.clone()).unwrap();
    let addr = server.local_addr();
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()));
    assert_eq!(
        req(local, "GET", "/api/pairs", &["Authorization: Bearer t"]).status,
        200
    );
    server.stop();
    assert!(
        std::net::TcpStream::connect(local).is_err(),
        "still listening after stop"
    );
}
