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
