//! A `mode = "two-way"` pair in the daemon: changes on either side reach
//! the other, a conflict is counted, kept in the status and reported to
//! `on_conflict` once per batch.

mod common;
mod daemon_common;

use std::path::Path;
use std::time::Duration;

use daemon_common::{config_text, wait_for, Daemon};

const LONG: Duration = Duration::from_secs(40);

fn write(p: &Path, s: &str) {
    std::fs::write(p, s).unwrap();
}

fn has(p: &Path, s: &str) -> bool {
    std::fs::read_to_string(p).is_ok_and(|c| c == s)
}

#[test]
fn two_way_pair() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for s in ["a", "b"] {
        std::fs::create_dir(d.join(s)).unwrap();
    }
    write(&d.join("a/x"), "from a");
    write(&d.join("b/y"), "from b");
    let hook = d.join("hook.sh");
    let lines = d.join("hook.lines");
    common::write_script(
        &hook,
        format!(
            "#!/bin/sh\necho \"$DIRSYNC_PAIR $DIRSYNC_EVENT\" >> '{}'\n",
            lines.display()
        ),
    );
    let text = config_text(
        d,
        &format!(
            "on_conflict = [\"{h}\"]\n[[pair]]\nname = \"tw\"\nsource = \"{d}/a\"\ndestination = \"{d}/b\"\nmode = \"two-way\"\n",
            h = hook.display(),
            d = d.display()
        ),
    );
    write(&Daemon::config(d), &text);
    let dm = Daemon::start(d);
    dm.wait_state("tw", "watching", LONG);
    assert!(
        wait_for(LONG, || has(&d.join("b/x"), "from a")),
        "{}",
        dm.log()
    );
    assert!(
        wait_for(LONG, || has(&d.join("a/y"), "from b")),
        "{}",
        dm.log()
    );
    assert_eq!(dm.pair("tw").unwrap()["mode"], "two-way");
    // The source side is watched.
    write(&d.join("a/x2"), "a2");
    assert!(wait_for(LONG, || has(&d.join("b/x2"), "a2")));
    // The destination side is caught by the periodic run.
    write(&d.join("b/y2"), "b2");
    assert!(wait_for(LONG, || has(&d.join("a/y2"), "b2")));

    // A conflict: both sides change one file while paused.
    assert!(dm.ctl(&["pause", "tw"]).status.success());
    dm.wait_state("tw", "paused", LONG);
    write(&d.join("a/x"), "changed in a");
    write(&d.join("b/x"), "changed in b, longer");
    assert!(dm.ctl(&["resume", "tw"]).status.success());
    assert!(
        wait_for(LONG, || dm.pair("tw").unwrap()["conflicts"].as_u64()
            >= Some(1)),
        "{:?}\n{}",
        dm.pair("tw"),
        dm.log()
    );
    assert!(wait_for(LONG, || std::fs::read_to_string(&lines)
        .is_ok_and(|s| s == "tw conflict\n")));
    // Both versions survive somewhere, on both sides.
    let all = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
            .collect()
    };
    assert!(wait_for(LONG, || {
        let (a, b) = (all(&d.join("a")), all(&d.join("b")));
        ["changed in a", "changed in b, longer"]
            .iter()
            .all(|v| a.iter().any(|x| x == v) && b.iter().any(|x| x == v))
    }));
    assert_eq!(dm.stop().0, Some(0));
}

/// The bytes of the first JSON string after `"key":` in `text`, with the
/// `\udcHH` escapes of the daemon's encoder turned back into bytes.
fn json_bytes_of(text: &[u8], key: &str) -> Option<Vec<u8>> {
    let pat = format!("\"{key}\":\"");
    let start = text.windows(pat.len()).position(|w| w == pat.as_bytes())? + pat.len();
    let mut out = Vec::new();
    let mut i = start;
    loop {
        match *text.get(i)? {
            b'"' => return Some(out),
            b'\\' => {
                let e = *text.get(i + 1)?;
                match e {
                    b'u' => {
                        let h = std::str::from_utf8(text.get(i + 2..i + 6)?).ok()?;
                        let v = u32::from_str_radix(h, 16).ok()?;
                        if (0xdc80..=0xdcff).contains(&v) {
                            out.push((v - 0xdc00) as u8);
                        } else {
                            let c = char::from_u32(v)?;
                            out.extend_from_slice(c.to_string().as_bytes());
                        }
                        i += 6;
                    }
                    b'n' => {
                        out.push(b'\n');
                        i += 2;
                    }
                    other => {
                        out.push(other);
                        i += 2;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

#[test]
fn status_json_keeps_a_conflict_name_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for s in ["a", "b"] {
        std::fs::create_dir(d.join(s)).unwrap();
    }
    let name: &[u8] = b"x\xffy";
    let rel = std::ffi::OsStr::from_bytes(name);
    write(&d.join("a").join(rel), "v0");
    let text = config_text(
        d,
        &format!(
            "[[pair]]\nname = \"tw\"\nsource = \"{d}/a\"\ndestination = \"{d}/b\"\nmode = \"two-way\"\n",
            d = d.display()
        ),
    );
    write(&Daemon::config(d), &text);
    let dm = Daemon::start(d);
    assert!(
        wait_for(LONG, || has(&d.join("b").join(rel), "v0")),
        "{}",
        dm.log()
    );
    assert!(dm.ctl(&["pause", "tw"]).status.success());
    assert!(wait_for(LONG, || {
        let o = dm.ctl(&["status", "--json"]);
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("\"paused\"")
    }));
    write(&d.join("a").join(rel), "changed in a");
    write(&d.join("b").join(rel), "changed in b, longer");
    assert!(dm.ctl(&["resume", "tw"]).status.success());
    let mut raw = Vec::new();
    let seen = wait_for(LONG, || {
        let o = dm.ctl(&["status", "--json"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        raw = o.stdout;
        let lossy = String::from_utf8_lossy(&raw).replace("\\udc", "\\u00");
        let v: serde_json::Value = serde_json::from_str(&lossy).unwrap();
        json_bytes_of(&raw, "path").is_some() && v["pairs"][0]["conflicts"].as_u64() >= Some(1)
    });
    assert!(seen, "{}\n{}", String::from_utf8_lossy(&raw), dm.log());
    // The name comes back byte for byte, and the rest of the answer is
    // the pinned JSON (a lenient reader of the escapes parses it).
    assert_eq!(json_bytes_of(&raw, "path").unwrap(), name);
    let lossy = String::from_utf8_lossy(&raw).replace("\\udc", "\\u00");
    let v: serde_json::Value = serde_json::from_str(&lossy).unwrap();
    assert!(v["pairs"][0]["conflicts"].as_u64() >= Some(1));
    assert_eq!(
        v["pairs"][0]["recent_conflicts"].as_array().unwrap().len(),
        1
    );
    assert_eq!(dm.stop().0, Some(0));
}

fn lines_of(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// The contents of the regular files directly in `dir`.
fn contents(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .collect();
    v.sort();
    v
}

/// A watched two-way pair whose destination is `127.0.0.1:PATH` over the
/// test sshd: edits on both sides converge, a conflict runs `on_conflict`
/// once, the sshd stopped then started again puts the pair in the error
/// state (`on_error` once) and back (`recovered` once), and nothing
/// written on either side meanwhile is lost.
#[test]
fn remote_two_way_pair() {
    use common::sshd::Sshd;
    const LONG: Duration = Duration::from_secs(60);
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for s in ["a", "b"] {
        std::fs::create_dir(d.join(s)).unwrap();
    }
    write(&d.join("a/x"), "from a");
    write(&d.join("b/y"), "from b");
    let hook = d.join("hook.sh");
    let lines = d.join("hook.lines");
    common::write_script(
        &hook,
        format!(
            "#!/bin/sh\necho \"$DIRSYNC_PAIR $DIRSYNC_EVENT\" >> '{}'\n",
            lines.display()
        ),
    );
    let mut sshd = Sshd::start();
    let text = config_text(
        d,
        &format!(
            "on_conflict = [\"{h}\"]\non_error = [\"{h}\"]\n[[pair]]\nname = \"tw\"\n\
             source = \"{d}/a\"\ndestination = \"127.0.0.1:{d}/b\"\nmode = \"two-way\"\n\
             rsh = \"{rsh}\"\nremote_path = \"{bin}\"\ntimeout = 10\n",
            h = hook.display(),
            d = d.display(),
            rsh = sshd.rsh(),
            bin = daemon_common::bin().display()
        ),
    );
    write(&Daemon::config(d), &text);
    let dm = Daemon::start(d);
    dm.wait_state("tw", "watching", LONG);
    assert!(
        wait_for(LONG, || has(&d.join("b/x"), "from a")),
        "{}",
        dm.log()
    );
    assert!(
        wait_for(LONG, || has(&d.join("a/y"), "from b")),
        "{}",
        dm.log()
    );
    // The archive is in the daemon's state directory.
    assert!(d.join("state/twoway-tw.sqlite").is_file());
    // Edits on both sides.
    write(&d.join("a/x2"), "a2");
    write(&d.join("b/y2"), "b2");
    assert!(
        wait_for(LONG, || has(&d.join("b/x2"), "a2")),
        "{}",
        dm.log()
    );
    assert!(
        wait_for(LONG, || has(&d.join("a/y2"), "b2")),
        "{}",
        dm.log()
    );

    // A conflict: both sides change one file while paused.
    assert!(dm.ctl(&["pause", "tw"]).status.success());
    dm.wait_state("tw", "paused", LONG);
    write(&d.join("a/x"), "changed in a");
    write(&d.join("b/x"), "changed in b, longer");
    assert!(dm.ctl(&["resume", "tw"]).status.success());
    assert!(
        wait_for(LONG, || dm.pair("tw").unwrap()["conflicts"].as_u64()
            == Some(1)),
        "{:?}\n{}",
        dm.pair("tw"),
        dm.log()
    );
    assert!(wait_for(LONG, || lines_of(&lines) == ["tw conflict"]));
    let both = ["changed in a", "changed in b, longer"];
    assert!(wait_for(LONG, || {
        let (a, b) = (contents(&d.join("a")), contents(&d.join("b")));
        both.iter()
            .all(|v| a.iter().any(|x| x == v) && b.iter().any(|x| x == v))
    }));

    // The link lost: sshd stopped, edits on both sides meanwhile.
    // (A session already open when sshd stops may still finish its run:
    // the edits are made once a run has failed, the runs are serial.)
    sshd.pause();
    write(&d.join("a/trigger"), "t");
    dm.wait_state("tw", "error", LONG);
    write(&d.join("a/z"), "written in a during the outage");
    write(&d.join("b/w"), "written in b during the outage");
    let errors = || {
        dm.pair("tw")
            .and_then(|p| p["errors"].as_u64())
            .unwrap_or(0)
    };
    let e0 = errors();
    // Retried: more failed runs, one hook line for them.
    assert!(wait_for(LONG, || errors() >= e0 + 2), "{:?}", dm.pair("tw"));
    assert_eq!(lines_of(&lines), ["tw conflict", "tw error"]);
    assert!(!d.join("b/z").exists(), "{}", dm.log());
    sshd.resume();
    dm.wait_state("tw", "watching", LONG);
    assert!(
        wait_for(LONG, || has(
            &d.join("b/z"),
            "written in a during the outage"
        ) && has(
            &d.join("a/w"),
            "written in b during the outage"
        )),
        "{}",
        dm.log()
    );
    assert!(wait_for(LONG, || lines_of(&lines).len() == 3));
    assert_eq!(
        lines_of(&lines),
        ["tw conflict", "tw error", "tw recovered"]
    );
    // Nothing lost, and both sides the same.
    let (a, b) = (contents(&d.join("a")), contents(&d.join("b")));
    assert_eq!(a, b);
    // ("from a" was replaced by the user: "changed in a".)
    for v in ["from b", "a2", "b2", "t"].iter().chain(&both) {
        assert!(a.iter().any(|x| x == v), "{v} lost: {a:?}");
    }
    assert_eq!(dm.pair("tw").unwrap()["conflicts"].as_u64(), Some(1));
    assert_eq!(dm.stop().0, Some(0));
}
