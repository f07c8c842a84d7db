//! Text from a hostile peer never reaches the user's terminal raw: its
//! version string, its refusal, its fatal error, its event texts and
//! paths are shown escaped (`\x1b`), the way local paths are. The peer is
//! a script given as `-e` that plays prerecorded frames.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

use dirsync::remote::protocol::messages::{Hello, Msg, WireEvent, PROTOCOL};

/// An OSC that sets the terminal title, and a clear screen.
const EVIL: &[u8] = b"\x1b]0;pwned\x07\x1b[2J";
const SHOWN: &str = "\\x1b]0;pwned\\x07\\x1b[2J";

/// A transport command (`-e`) that prints `bytes`, then swallows its
/// input (for at most 2 s: a real server ends at the client's goodbye,
/// this one cannot tell it).
fn fake_peer(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    prerecorded_peer(dir, name, bytes, Then::DrainFor(2))
}

fn evil(before: &str, after: &str) -> Vec<u8> {
    [before.as_bytes(), EVIL, after.as_bytes()].concat()
}

fn hello(protocol: u32) -> Msg {
    Msg::Hello(Hello {
        protocol,
        version: evil("9.9", ""),
        features: 0,
    })
}

/// Runs `dirsync -v -e FAKE args...`.
fn run_with(fake: &Path, args: &[&std::ffi::OsStr]) -> Output {
    let mut c = cmd(["-v", "-e"]);
    c.arg(fake).args(args);
    c.output().unwrap()
}

/// Exit 3, no ESC byte on stderr or stdout, and each of `needles` (the
/// escaped forms) on stderr or stdout.
#[track_caller]
fn clean_fatal(o: &Output, needles: &[&str]) {
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(!o.stderr.contains(&0x1b), "ESC on stderr: {err:?}");
    assert!(!o.stdout.contains(&0x1b), "ESC on stdout: {out:?}");
    for n in needles {
        assert!(
            err.contains(n) || out.contains(n),
            "expected {n:?} in {err:?} / {out:?}"
        );
    }
}

#[test]
fn a_version_string_with_terminal_escapes_is_shown_escaped() {
    let (t, src, dst) = pair();
    let fake = fake_peer(t.path(), "v", &frame(&hello(99)));
    let o = run_with(
        &fake,
        &[src.as_os_str(), format!("h:{}", dst.display()).as_ref()],
    );
    clean_fatal(&o, &["protocol version mismatch", &format!("9.9{SHOWN}")]);
    assert!(!dst.exists());
}

#[test]
fn a_refusal_with_terminal_escapes_is_shown_escaped() {
    let (t, src, dst) = pair();
    let bytes = [
        frame(&hello(PROTOCOL)),
        frame(&Msg::Refuse(evil("no ", " way"))),
    ]
    .concat();
    let fake = fake_peer(t.path(), "r", &bytes);
    let o = run_with(
        &fake,
        &[src.as_os_str(), format!("h:{}", dst.display()).as_ref()],
    );
    clean_fatal(&o, &[&format!("no {SHOWN} way")]);
    assert!(!dst.exists());
}

/// A pull from a server whose events (every kind with a text, paths with
/// escapes, a link target) and fatal error carry terminal escapes.
#[test]
fn event_texts_paths_and_the_fatal_error_of_a_pull_are_shown_escaped() {
    let (t, _src, dst) = pair();
    let ev = |kind: u8, a: &[u8], b: &[u8], text: &[u8]| {
        frame(&Msg::Event(WireEvent {
            kind,
            a: a.to_vec(),
            b: b.to_vec(),
            text: text.to_vec(),
            count: 1,
        }))
    };
    let p = evil("/r/p", "");
    let mut bytes = [
        frame(&hello(PROTOCOL)),
        frame(&Msg::Ready {
            created: false,
            exists: true,
        }),
    ]
    .concat();
    for kind in [0u8, 2, 6, 7, 8, 9, 11, 12] {
        bytes.extend(ev(kind, &p, &p, &evil("text", "")));
    }
    bytes.extend(frame(&Msg::Done {
        counters: vec![(evil("", ""), 1)],
        fatal: Some(evil("fatal ", "")),
    }));
    let fake = fake_peer(t.path(), "p", &bytes);
    let o = run_with(&fake, &["h:/r".as_ref(), dst.as_os_str()]);
    clean_fatal(&o, &[&format!("fatal {SHOWN}"), &format!("text{SHOWN}")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("p{SHOWN}")), "{err}");
}
