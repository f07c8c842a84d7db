//! Table-driven tests of the config file: each bad file gives its line
//! and what is wrong.

use std::path::Path;

use super::api::Mode;
use super::config::{parse_str, LogLevel, When};
use super::schedule::{Bwlimit, Schedule};

fn dirs() -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    for s in ["a", "b", "c"] {
        std::fs::create_dir(d.path().join(s)).unwrap();
    }
    let p = d.path().display().to_string();
    (d, p)
}

#[test]
fn good_file() {
    let (_d, p) = dirs();
    let text = format!(
        r#"
[daemon]
control = "/run/x/control.sock"
http = "127.0.0.1:8385"
log = "debug"
on_error = ["/usr/local/bin/notify", "--urgent"]

[[pair]]
name = "photos"
source = "{p}/a"
destination = "backup@nas:/srv/photos"
mode = "mirror"
watch = true
exclude = ["*.tmp", "/cache/"]
archive = true
bwlimit = "1M"

[[pair]]
name = "docs"
source = "{p}/b"
destination = "{p}/out"
schedule = "every 15m"
bwlimit = [{{ from = "08:00", to = "18:00", rate = "200K" }}]

[[pair]]
name = "tw"
source = "{p}/c"
destination = "{p}/out2"
mode = "two-way"
"#
    );
    let c = parse_str(Path::new("/etc/d.toml"), &text).unwrap();
    assert_eq!(c.log, LogLevel::Debug);
    assert_eq!(c.on_error, ["/usr/local/bin/notify", "--urgent"]);
    assert_eq!(c.pairs.len(), 3);
    assert_eq!(c.pairs[0].when, When::Watch);
    assert_eq!(c.pairs[0].bwlimit, Bwlimit::Rate(1 << 20));
    assert!(c.pairs[0].archive);
    assert_eq!(
        c.pairs[1].when,
        When::Schedule(Schedule::Every(std::time::Duration::from_secs(900)))
    );
    assert!(matches!(c.pairs[1].bwlimit, Bwlimit::Windows(ref w) if w[0].rate == 200 * 1024));
    assert_eq!(c.pairs[2].mode, Mode::TwoWay);
    assert_eq!(c.pairs[2].when, When::Watch);
}

/// (file body, line expected, words of the message).
const BAD: &[(&str, usize, &str)] = &[
    ("[daemon]\ncolour = 1\n", 2, "unknown field"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/o\"\nfoo = 1\n", 5, "unknown field"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/o\"\n[[pair]]\nname = \"x\"\nsource = \"P/b\"\ndestination = \"P/o2\"\n", 6, "duplicate pair name"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/o\"\n[[pair]]\nname = \"y\"\nsource = \"P/b\"\ndestination = \"P/a/inside\"\n", 8, "overlaps"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/b/in\"\n[[pair]]\nname = \"y\"\nsource = \"P/b\"\ndestination = \"P/o\"\n", 8, "overlaps"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/a/sub\"\n", 4, "overlaps its own"),
    ("[[pair]]\nname = \"x\"\n\nsource = \"P/missing\"\ndestination = \"P/o\"\n", 4, "missing"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/o\"\nwatch = true\nschedule = \"hourly\"\n", 5, "exclude each other"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/o\"\nschedule = \"every 5d\"\n", 5, "bad schedule"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/o\"\nschedule = \"daily 25:00\"\n", 5, "bad schedule"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/o\"\nbwlimit = \"fast\"\n", 5, "bad rate"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/o\"\nbwlimit = [{ from = \"8\", to = \"18:00\", rate = \"1M\" }]\n", 5, "bad time"),
    ("[daemon]\nhttp = \"0.0.0.0:8385\"\n", 2, "needs a token"),
    ("[daemon]\nhttp = \"nonsense\"\n", 2, "bad http address"),
    ("[daemon]\nlog = \"loud\"\n", 2, "bad log level"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/o\"\nmode = \"sideways\"\n", 5, "bad mode"),
    ("[[pair]]\nname = \"x\"\ndestination = \"P/o\"\n", 1, "missing field `source`"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/o\"\n[pair.inner]\nname = \"y\"\n", 5, "unknown field"),
    ("[[pair]]\nname = \"x\"\nname = \"y\"\n", 3, "duplicate key"),
    ("[[pair]]\nname = \"x\"\nsource = \"P/a\"\ndestination = \"P/o\"\nwatch = false\n", 5, "needs a schedule"),
];

#[test]
fn bad_files_name_their_line() {
    let (_d, p) = dirs();
    for (body, line, words) in BAD {
        let text = body.replace("P/", &format!("{p}/"));
        let e = parse_str(Path::new("/etc/d.toml"), &text).expect_err(body);
        assert_eq!(e.line, Some(*line), "{body}: {e}");
        assert!(e.msg.contains(words), "{body}: {e}");
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("/etc/d.toml:{line}: ")),
            "{shown}"
        );
    }
}

#[test]
fn token_allows_other_addresses() {
    let c = parse_str(
        Path::new("/x"),
        "[daemon]\nhttp = \"0.0.0.0:80\"\ntoken = \"s3cret\"\n",
    )
    .unwrap();
    assert_eq!(c.http.unwrap().port(), 80);
}
