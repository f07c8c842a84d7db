//! The status page in a real browser: Debian's chromium, headless, driven
//! through the DevTools protocol over `--remote-debugging-pipe` (fds 3 and
//! 4, NUL-separated JSON). A page of another site posts to the API and is
//! refused; the status page shows every pair; a real mouse click on
//! "Pause" pauses the pair (seen through the API and on the page); "Sync
//! now" shows the sync's exit code; a screenshot is saved under the test's
//! output directory. First against a fake daemon (exact figures, a refused
//! cross-site page), then against the real `dirsync daemon` (files on
//! disk: what was written while paused arrives after Resume, Sync now
//! returns when the file is there).

mod daemon_common;
mod daemon_http_common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use daemon_http_common::*;
use dirsync::daemon::api::{Action, Control};
use dirsync::daemon::http;
use serde_json::{json, Value};

/// A headless chromium and its DevTools pipe, killed when dropped.
struct Browser {
    child: Child,
    to: File,
    from: BufReader<File>,
    next_id: u64,
    session: Option<String>,
}

/// A pipe whose ends are both close-on-exec and numbered 10 or more (so
/// that the child's `dup2` onto 3 and 4 never meets them).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let high = |fd: RawFd| {
        // SAFETY: `fd` was just returned by pipe2 and is open; F_DUPFD_CLOEXEC
        // returns a new descriptor we then own, and `fd` is closed once.
        unsafe {
            let new = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
            assert!(new >= 10);
            libc::close(fd);
            OwnedFd::from_raw_fd(new)
        }
    };
    (high(fds[0]), high(fds[1]))
}

impl Browser {
    fn start(profile: &std::path::Path) -> Browser {
        use std::os::fd::AsRawFd;
        let (cmd_r, cmd_w) = pipe();
        let (resp_r, resp_w) = pipe();
        let (r, w) = (cmd_r.as_raw_fd(), resp_w.as_raw_fd());
        let mut cmd = Command::new("chromium");
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-pipe",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1280,720",
            "about:blank",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: between fork and exec the closure only calls dup2, which
        // is async-signal-safe; `r` and `w` are open descriptors (>= 10,
        // so never 3 or 4) held by the parent until after spawn; dup2's
        // copies on 3 and 4 are not close-on-exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("chromium could not be started ({e}): scripts/deps.sh installs it")
        });
        drop((cmd_r, resp_w));
        Browser {
            child,
            to: File::from(cmd_w),
            from: BufReader::new(File::from(resp_r)),
            next_id: 0,
            session: None,
        }
    }

    /// Sends a command (to the attached page, if any) and returns its
    /// result; events in between are skipped.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        loop {
            let mut buf = Vec::new();
            let n = self.from.read_until(0, &mut buf).unwrap();
            assert!(n > 0, "chromium closed its DevTools pipe");
            buf.pop();
            let v: Value = serde_json::from_slice(&buf).unwrap();
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is true (at most 15 s).
    fn wait_for(&mut self, expr: &str) {
        let t0 = Instant::now();
        while self.eval(expr) != json!(true) {
            assert!(t0.elapsed() < Duration::from_secs(15), "never true: {expr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Attaches to the page chromium opened.
    fn attach(&mut self) {
        let targets = self.call("Target.getTargets", json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("no page target")["targetId"]
            .clone();
        let s = self.call(
            "Target.attachToTarget",
            json!({"targetId": page, "flatten": true}),
        );
        self.session = Some(s["sessionId"].as_str().unwrap().to_owned());
        self.call("Page.enable", json!({}));
        self.call("Runtime.enable", json!({}));
    }

    /// A PNG of the page, scrolled to its top.
    fn screenshot(&mut self, path: &std::path::Path) {
        self.eval("window.scrollTo(0, 0)");
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &png).unwrap();
        assert!(std::fs::metadata(path).unwrap().len() > 10_000);
    }

    fn click(&mut self, selector: &str) {
        let at = self.eval(&format!(
            "(() => {{ const b = document.querySelector({}); b.scrollIntoView({{block: 'center'}}); \
             const r = b.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            json!(selector)
        ));
        let (x, y) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A page of another site (127.0.0.2 is another host, so another site)
/// that posts to `target` with fetch and with a form, as an attacker's
/// page would. Serves until the process ends.
fn evil_site(target: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.2:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let html = format!(
        "<!DOCTYPE html><html><body><form id=f method=POST action=\"{target}\"></form><script>\
         fetch({t}, {{method: 'POST', mode: 'no-cors'}}).catch(() => 0).then(() => {{ \
         document.title = 'fetched'; document.getElementById('f').submit(); }});</script></body></html>",
        t = json!(target)
    );
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    addr
}

/// The test's output directory (screenshots).
fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("daemon_http_browser")
}

fn api_state(addr: SocketAddr, i: usize) -> String {
    req(addr, "GET", "/api/pairs", &[]).json()["pairs"][i]["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_page_in_a_real_browser() {
    let f = fake(three_pairs(), 2);
    let control: Arc<dyn Control> = f.clone();
    let server = http::serve(TcpListener::bind("127.0.0.1:0").unwrap(), None, control).unwrap();
    let addr = server.local_addr();
    let _ = std::fs::remove_file(out_dir().join("status-page.png"));
    let profile = tempfile::tempdir().unwrap();
    let mut b = Browser::start(profile.path());
    b.attach();

    // Another site posts to the API: refused, nothing done. The form's
    // navigation lands on our 403 answer, so the request did arrive.
    let target = format!("http://{addr}/api/pairs/photos/pause");
    let evil = evil_site(&target);
    b.call("Page.navigate", json!({"url": format!("http://{evil}/")}));
    b.wait_for(&format!("location.href === {}", json!(target)));
    b.wait_for("document.readyState === 'complete'");
    let refused = b.eval("document.body.innerText");
    assert!(
        refused
            .as_str()
            .unwrap()
            .contains("cross-site request refused"),
        "{refused}"
    );
    assert!(f.calls().is_empty(), "{:?}", f.calls());
    assert_eq!(api_state(addr, 0), "watching");

    // The status page: every pair, by name, escaped (no element injected).
    b.call("Page.navigate", json!({"url": format!("http://{addr}/")}));
    b.wait_for(
        "document.readyState === 'complete' && document.querySelectorAll('tr.pair').length === 3",
    );
    let names = b.eval("[...document.querySelectorAll('tr.pair td.name')].map(e => e.textContent)");
    let want: Vec<String> = three_pairs().into_iter().map(|p| p.name).collect();
    assert_eq!(names, json!(want));
    assert_eq!(b.eval("document.querySelectorAll('img').length"), json!(0));
    assert_eq!(
        b.eval("document.querySelectorAll('button').length"),
        json!(9)
    );

    // A real click on photos' Pause: the daemon is asked, the API shows
    // it, the page's refresh shows it.
    b.click("tr.pair[data-pair='photos'] button[data-action='pause']");
    let t0 = Instant::now();
    while api_state(addr, 0) != "paused" {
        assert!(t0.elapsed() < Duration::from_secs(15), "never paused");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(f.calls(), vec![("photos".to_owned(), Action::Pause)]);
    b.wait_for("document.querySelector(\"tr.pair[data-pair='photos'] [data-f='state']\").textContent === 'paused'");

    // Sync now on the two-way pair: the page says how the sync ended.
    b.click("tr.pair[data-pair='docs two-way'] button[data-action='sync']");
    b.wait_for(
        "document.getElementById('note').textContent === 'sync docs two-way: done (exit 2)'",
    );
    assert_eq!(f.calls()[1], ("docs two-way".to_owned(), Action::SyncNow));
    b.wait_for("document.querySelector(\"tr.pair[data-pair='docs two-way'] [data-f='last_sync']\").textContent === '2026-12-07T22:40:58.000Z'");

    b.screenshot(&out_dir().join("status-page.png"));
    let _ = b.call("Browser.close", json!({}));
}

/// The status page of a real `dirsync daemon` (three local pairs, one of
/// them scheduled, one named with markup) in chromium.
#[test]
fn the_page_drives_the_real_daemon() {
    use daemon_common::{config_text, wait_for, Daemon};
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for s in ["src1", "src2", "src3"] {
        std::fs::create_dir(d.join(s)).unwrap();
        std::fs::write(d.join(s).join("first"), s).unwrap();
    }
    // A free port for the config (bound, read, released).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let odd_name = "<img src=x onerror=alert(1)> \"we'ird\" & co";
    let text = config_text(
        d,
        &format!(
            r#"
[[pair]]
name = {odd}
source = "{d}/src2"
destination = "{d}/dst2"

[[pair]]
name = "photos"
source = "{d}/src1"
destination = "{d}/dst1"

[[pair]]
name = "nightly"
source = "{d}/src3"
destination = "{d}/dst3"
schedule = "hourly"
"#,
            d = d.display(),
            odd = json!(odd_name),
        ),
    )
    .replace("[daemon]\n", &format!("[daemon]\nhttp = \"{addr}\"\n"));
    std::fs::write(Daemon::config(d), &text).unwrap();
    let dm = Daemon::start(d);
    let up = wait_for(Duration::from_secs(20), || {
        std::net::TcpStream::connect(addr).is_ok()
            && req(addr, "GET", "/api/pairs", &[]).json()["pairs"]
                .as_array()
                .is_some_and(|p| {
                    p.len() == 3
                        && p.iter()
                            .all(|p| p["state"] == "watching" || p["state"] == "scheduled")
                })
    });
    assert!(up, "daemon's HTTP side not up: {}", dm.log());
    for n in ["1", "2", "3"] {
        assert!(d.join(format!("dst{n}/first")).exists());
    }

    // The API and `dirsync status --json` (the control socket) agree on
    // the pinned fields.
    let pinned = [
        "name",
        "mode",
        "state",
        "error",
        "last_sync",
        "last_success",
        "queue",
        "conflicts",
        "bytes",
        "files",
    ];
    let agree = wait_for(Duration::from_secs(10), || {
        let api = req(addr, "GET", "/api/pairs", &[]).json();
        let Some(sock) = dm.status() else {
            return false;
        };
        (0..3).all(|i| {
            pinned
                .iter()
                .all(|k| api["pairs"][i][k] == sock["pairs"][i][k])
        })
    });
    assert!(
        agree,
        "{} vs {:?}",
        req(addr, "GET", "/api/pairs", &[]).text(),
        dm.status()
    );
    // Metrics of the real daemon: its watches and the system's limit.
    let m = req(addr, "GET", "/metrics", &[]).text();
    let max = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").unwrap();
    let want_max = format!("dirsync_inotify_watches_max {}", max.trim());
    assert!(m.lines().any(|l| l == want_max), "{m}");
    let used: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("dirsync_inotify_watches "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(used >= 2, "{m}");

    let profile = tempfile::tempdir().unwrap();
    let mut b = Browser::start(profile.path());
    b.attach();
    b.call("Page.navigate", json!({"url": format!("http://{addr}/")}));
    b.wait_for(
        "document.readyState === 'complete' && document.querySelectorAll('tr.pair').length === 3",
    );
    let names = b.eval("[...document.querySelectorAll('tr.pair td.name')].map(e => e.textContent)");
    assert_eq!(names, json!([odd_name, "photos", "nightly"]));
    assert_eq!(b.eval("document.querySelectorAll('img').length"), json!(0));

    // Pause by a click: the daemon pauses (its control socket says so).
    b.click("tr.pair[data-pair='photos'] button[data-action='pause']");
    dm.wait_state("photos", "paused", Duration::from_secs(15));
    b.wait_for("document.querySelector(\"tr.pair[data-pair='photos'] [data-f='state']\").textContent === 'paused'");
    // Written while paused; Resume rescans and copies it.
    std::fs::write(d.join("src1/while-paused"), "p").unwrap();
    b.click("tr.pair[data-pair='photos'] button[data-action='resume']");
    let copied = wait_for(Duration::from_secs(15), || {
        std::fs::read(d.join("dst1/while-paused")).is_ok_and(|c| c == b"p")
    });
    assert!(copied, "not copied after Resume: {}", dm.log());
    dm.wait_state("photos", "watching", Duration::from_secs(15));

    // Sync now on the hourly pair: the answer comes when the file is there.
    std::fs::write(d.join("src3/new"), "n").unwrap();
    b.click("tr.pair[data-pair='nightly'] button[data-action='sync']");
    b.wait_for("document.getElementById('note').textContent === 'sync nightly: done (exit 0)'");
    assert_eq!(std::fs::read(d.join("dst3/new")).unwrap(), b"n");

    b.screenshot(&out_dir().join("real-daemon.png"));
    let _ = b.call("Browser.close", json!({}));
    drop(b);
    let (code, _) = dm.stop();
    assert_eq!(code, Some(0));
}

/// With a token, the page works in a browser that sends it as HTTP Basic
/// credentials (as after the browser's own prompt): the page, its script,
/// its refresh and its buttons.
#[test]
fn a_token_protected_page_in_the_browser() {
    let f = fake(three_pairs(), 0);
    let control: Arc<dyn Control> = f.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = http::serve(listener, Some("s3cret".into()), control).unwrap();
    let addr = server.local_addr();
    let bearer = "Authorization: Bearer s3cret";
    assert_eq!(req(addr, "GET", "/", &[]).status, 401);
    let profile = tempfile::tempdir().unwrap();
    let mut b = Browser::start(profile.path());
    b.attach();
    b.call("Network.enable", json!({}));
    // u:s3cret
    b.call(
        "Network.setExtraHTTPHeaders",
        json!({"headers": {"Authorization": "Basic dTpzM2NyZXQ="}}),
    );
    b.call("Page.navigate", json!({"url": format!("http://{addr}/")}));
    b.wait_for(
        "document.readyState === 'complete' && document.querySelectorAll('tr.pair').length === 3",
    );
    b.click("tr.pair[data-pair='photos'] button[data-action='pause']");
    let t0 = Instant::now();
    while req(addr, "GET", "/api/pairs", &[bearer]).json()["pairs"][0]["state"] != "paused" {
        assert!(t0.elapsed() < Duration::from_secs(15), "never paused");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(f.calls(), vec![("photos".to_owned(), Action::Pause)]);
    b.wait_for("document.getElementById('note').textContent === 'pause photos: done (exit 0)'");
    let _ = b.call("Browser.close", json!({}));
}
