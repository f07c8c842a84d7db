//! Who may do what over the daemon's HTTP side, and the bounds on every
//! request: cross-site and rebinding requests refused (and the action
//! never called), tokens, oversize heads and bodies, slow clients, the
//! connection cap.

mod daemon_http_common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daemon_http_common::*;
use dirsync::daemon::api::{Action, Control};
use dirsync::daemon::http::{self, MAX_CONNECTIONS, REQUEST_DEADLINE};

fn start(token: Option<&str>) -> (http::HttpServer, Arc<Fake>) {
    let f = fake(three_pairs(), 0);
    let control: Arc<dyn Control> = f.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = http::serve(listener, token.map(str::to_owned), control).unwrap();
    (server, f)
}

fn raw(addr: SocketAddr, host: &str, method: &str, path: &str, extra: &[&str]) -> Answer {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for h in extra {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    send(addr, r.as_bytes())
}

fn states(addr: SocketAddr, auth: &[&str]) -> Vec<String> {
    let a = req(addr, "GET", "/api/pairs", auth);
    assert_eq!(a.status, 200);
    a.json()["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn cross_site_posts_are_refused_and_the_action_never_runs() {
    let (server, f) = start(None);
    let addr = server.local_addr();
    let own = format!("Origin: http://{addr}");
    let before = states(addr, &[]);
    let refused: Vec<Vec<&str>> = vec![
        vec![],
        vec!["Origin: http://evil.example"],
        vec!["Origin: null"],
        vec!["Sec-Fetch-Site: cross-site"],
        vec!["Sec-Fetch-Site: same-site"],
        vec!["Sec-Fetch-Site: none"],
        vec!["Sec-Fetch-Site: same-origin", "Origin: http://evil.example"],
        vec!["Sec-Fetch-Site: cross-site", &own],
        vec!["Origin: https://127.0.0.1"],
        vec![&own, &own],
        vec!["Sec-Fetch-Site: same-origin", "Sec-Fetch-Site: same-origin"],
    ];
    for headers in &refused {
        for action in ["pause", "resume", "sync"] {
            let a = req(
                addr,
                "POST",
                &format!("/api/pairs/photos/{action}"),
                headers,
            );
            assert_eq!(a.status, 403, "{headers:?} {action}: {}", a.text());
            assert_eq!(a.json()["error"], "cross-site request refused");
            assert!(a.json().get("exit").is_none());
        }
    }
    // DNS rebinding: a page of evil.example whose name now resolves to
    // 127.0.0.1 is "same-origin" with itself; its Host gives it away.
    let port = addr.port();
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("127.0.0.1:{}", port ^ 1),
        "localhost".to_owned(),
        String::new(),
    ] {
        let origin = format!("Origin: http://{host}");
        let a = raw(
            addr,
            &host,
            "POST",
            "/api/pairs/photos/pause",
            &["Sec-Fetch-Site: same-origin", &origin],
        );
        assert_eq!(a.status, 403, "{host}");
        // Reads too: the rebound page must not read the pairs either.
        assert_eq!(
            raw(addr, &host, "GET", "/api/pairs", &[]).status,
            403,
            "{host}"
        );
    }
    assert!(f.calls().is_empty(), "{:?}", f.calls());
    assert_eq!(states(addr, &[]), before);
    // The same requests from the page itself are done: loopback names.
    for host in [
        addr.to_string(),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
    ] {
        let origin = format!("Origin: http://{host}");
        let a = raw(addr, &host, "POST", "/api/pairs/photos/pause", &[&origin]);
        assert_eq!(a.status, 200, "{host}: {}", a.text());
    }
    let a = req(
        addr,
        "POST",
        "/api/pairs/photos/resume",
        &["Sec-Fetch-Site: same-origin"],
    );
    assert_eq!(a.status, 200);
    assert_eq!(f.calls().len(), 4);
    assert_eq!(f.calls()[3], ("photos".to_owned(), Action::Resume));
}

#[test]
fn a_token_is_required_and_compared_exactly() {
    let (server, f) = start(Some("s3cret"));
    let addr = server.local_addr();
    for auth in [
        vec![],
        vec!["Authorization: Bearer s3cre"],
        vec!["Authorization: Bearer s3cretx"],
        vec!["Authorization: Bearer S3CRET"],
        vec!["Authorization: Bearer "],
        vec!["Authorization: Token s3cret"],
        vec!["Authorization: s3cret"],
        // Basic with the wrong password (u:wrong), a bad encoding.
        vec!["Authorization: Basic dTp3cm9uZw=="],
        vec!["Authorization: Basic s3cret"],
        vec![
            "Authorization: Bearer wrong",
            "Authorization: Bearer s3cret",
        ],
    ] {
        let a = req(addr, "GET", "/api/pairs", &auth);
        assert_eq!(a.status, 401, "{auth:?}");
        let challenges: Vec<_> = a
            .headers
            .iter()
            .filter(|(n, _)| n == "www-authenticate")
            .map(|(_, v)| v.split(' ').next().unwrap().to_owned())
            .collect();
        assert_eq!(challenges, ["Bearer", "Basic"]);
        for path in ["/", "/metrics"] {
            assert_eq!(req(addr, "GET", path, &auth).status, 401, "{path} {auth:?}");
        }
        let mut same = auth.clone();
        same.push("Sec-Fetch-Site: same-origin");
        assert_eq!(
            req(addr, "POST", "/api/pairs/photos/sync", &same).status,
            401
        );
    }
    assert!(f.calls().is_empty());
    let bearer = "Authorization: Bearer s3cret";
    // u:s3cret, as a browser sends what its prompt was given.
    let basic = "Authorization: Basic dTpzM2NyZXQ=";
    // With a token the server may be reached under any name.
    let a = raw(addr, "nas.example:8385", "GET", "/api/pairs", &[bearer]);
    assert_eq!(a.status, 200);
    assert_eq!(
        raw(addr, "nas.example:8385", "GET", "/", &[basic]).status,
        200
    );
    // An API client with the token needs no Origin.
    assert_eq!(
        req(addr, "POST", "/api/pairs/photos/pause", &[bearer]).status,
        200
    );
    // The browser's Basic credentials are sent cross-site too: not enough.
    for extra in [
        vec![],
        vec!["Origin: http://evil.example"],
        vec!["Sec-Fetch-Site: cross-site"],
    ] {
        let mut h = vec![basic];
        h.extend(extra);
        assert_eq!(
            req(addr, "POST", "/api/pairs/photos/resume", &h).status,
            403,
            "{h:?}"
        );
    }
    let a = req(
        addr,
        "POST",
        "/api/pairs/photos/resume",
        &[basic, "Sec-Fetch-Site: same-origin"],
    );
    assert_eq!(a.status, 200);
    assert_eq!(
        f.calls(),
        vec![
            ("photos".to_owned(), Action::Pause),
            ("photos".to_owned(), Action::Resume)
        ]
    );
}

#[test]
fn oversize_and_malformed_requests_are_refused() {
    let (server, f) = start(None);
    let addr = server.local_addr();
    let big = format!("X-Big: {}", "a".repeat(9000));
    assert_eq!(
        req(
            addr,
            "POST",
            "/api/pairs/photos/pause",
            &[&big, "Sec-Fetch-Site: same-origin"]
        )
        .status,
        431
    );
    let many: Vec<String> = (0..40).map(|i| format!("X-{i}: v")).collect();
    let mut many: Vec<&str> = many.iter().map(String::as_str).collect();
    many.push("Sec-Fetch-Site: same-origin");
    assert_eq!(
        req(addr, "POST", "/api/pairs/photos/pause", &many).status,
        431
    );
    // A head that never ends within the bound, sent without pause.
    let endless = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nX: {}",
        "b".repeat(20_000)
    );
    assert_eq!(send(addr, endless.as_bytes()).status, 431);
    let same = "Sec-Fetch-Site: same-origin";
    assert_eq!(
        req(
            addr,
            "POST",
            "/api/pairs/photos/pause",
            &[same, "Content-Length: 5000"]
        )
        .status,
        413
    );
    assert_eq!(
        req(
            addr,
            "POST",
            "/api/pairs/photos/pause",
            &[same, "Content-Length: 99999999999999999999999"]
        )
        .status,
        400
    );
    assert_eq!(
        req(
            addr,
            "POST",
            "/api/pairs/photos/pause",
            &[same, "Content-Length: -1"]
        )
        .status,
        400
    );
    assert_eq!(
        req(
            addr,
            "POST",
            "/api/pairs/photos/pause",
            &[same, "Content-Length: 1", "Content-Length: 2"]
        )
        .status,
        400
    );
    assert_eq!(
        req(
            addr,
            "POST",
            "/api/pairs/photos/pause",
            &[same, "Transfer-Encoding: chunked"]
        )
        .status,
        400
    );
    assert_eq!(send(addr, b"\x00\x01garbage\r\n\r\n").status, 400);
    assert_eq!(send(addr, b"GET / HTTP/2.0\r\n\r\n").status, 400);
    assert!(f.calls().is_empty(), "{:?}", f.calls());
    // A small body is read and the request done.
    let r = format!("POST /api/pairs/photos/pause HTTP/1.1\r\nHost: {addr}\r\n{same}\r\nContent-Length: 4\r\n\r\n{{}}\r\n");
    assert_eq!(send(addr, r.as_bytes()).status, 200);
    assert_eq!(f.calls().len(), 1);
}

/// Sends `first`, then one more line every 200 ms (the pace at which a
/// slow-loris client keeps each read's timeout from firing) until the
/// server answers or closes; returns the answer and when it came.
fn trickle(addr: SocketAddr, first: &str, line: &str) -> (Vec<u8>, Duration) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(first.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < Duration::from_secs(30) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if !got.is_empty() || s.write_all(line.as_bytes()).is_err() {
                    continue;
                }
            }
            Err(_) => break,
        }
    }
    (got, t0.elapsed())
}

#[test]
fn slow_clients_are_cut_off_at_the_deadline() {
    let (server, f) = start(None);
    let addr = server.local_addr();
    let head = format!(
        "POST /api/pairs/photos/pause HTTP/1.1\r\nHost: {addr}\r\nSec-Fetch-Site: same-origin\r\n"
    );
    let cases = [
        // Nothing at all.
        (String::new(), String::new()),
        // A header line every 200 ms, forever.
        (head.clone(), "X-a: b\r\n".to_owned()),
        // A whole head, then the body one byte every 200 ms.
        (
            format!("{head}Content-Length: 1000\r\n\r\n"),
            "x".to_owned(),
        ),
    ];
    let threads: Vec<_> = cases
        .into_iter()
        .map(|(first, line)| std::thread::spawn(move || trickle(addr, &first, &line)))
        .collect();
    for t in threads {
        let (got, took) = t.join().unwrap();
        let a = parse_answer(&got);
        assert_eq!(a.status, 408);
        assert!(
            took >= REQUEST_DEADLINE - Duration::from_millis(100),
            "{took:?}"
        );
        assert!(took < REQUEST_DEADLINE + Duration::from_secs(2), "{took:?}");
    }
    assert!(f.calls().is_empty());
}

#[test]
fn connections_beyond_the_cap_get_503_and_the_slots_come_back() {
    let (server, _f) = start(None);
    let addr = server.local_addr();
    // MAX_CONNECTIONS clients that send nothing hold every slot.
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let a = read_answer(&mut s);
    assert_eq!(a.status, 503);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    drop(idle);
    // Their threads see the close and give the slots back.
    let t0 = Instant::now();
    loop {
        let a = req(addr, "GET", "/api/pairs", &[]);
        if a.status == 200 {
            break;
        }
        assert_eq!(a.status, 503);
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "slots not given back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_client_that_reads_slowly_is_cut_off_at_the_write_deadline() {
    // A page of some MB: more than the socket buffers hold.
    let mut pairs = Vec::new();
    for i in 0..5000 {
        let mut p = three_pairs().remove(0);
        p.name = format!("pair-{i:05}");
        pairs.push(p);
    }
    let f = fake(pairs, 0);
    let control: Arc<dyn Control> = f.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = http::serve(listener, None, control).unwrap();
    let addr = server.local_addr();
    let full = req(addr, "GET", "/", &[]).body.len();
    assert!(full > 4 << 20, "{full}");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    // Reads 1 KiB every 100 ms (10 KiB/s: the page would take minutes).
    let t0 = Instant::now();
    let mut got = 0;
    let mut buf = [0u8; 1024];
    let ended = loop {
        if t0.elapsed() > http::WRITE_TIMEOUT + Duration::from_secs(10) {
            break None;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break Some(t0.elapsed()),
            Ok(n) => got += n,
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = ended.expect("the server kept writing past its deadline");
    assert!(
        took >= http::WRITE_TIMEOUT - Duration::from_millis(500),
        "{took:?}"
    );
    assert!(got < full, "{got} of {full}");
}
