//! `kill -9` at random points of two-way runs with large files, then a
//! rerun: the pair converges to the expected trees, nothing is lost, no
//! temporary is left, and each real conflict has exactly one conflict
//! copy (no spurious ones from the interrupted runs).

mod common;
mod twoway_util;

use std::time::{Duration, Instant};
use twoway_util::*;

fn big(tag: &str, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        v.extend_from_slice(tag.as_bytes());
        v.extend_from_slice(&(v.len() as u64).to_le_bytes());
    }
    v.truncate(n);
    v
}

const MB: usize = 1 << 20;

fn scenario(seed: u64) {
    let p = Pair::new();
    for i in 0..6 {
        put(
            &p.a,
            &format!("common/c{i}"),
            &big(&format!("c{i}"), 2 * MB),
        );
    }
    put(&p.a, "k.txt", b"base of a conflict");
    put(&p.a, "gone", b"to delete");
    p.converge();
    // Edits on both sides: new large files, modifications, a deletion,
    // a rename, one real conflict.
    for i in 0..5 {
        put(
            &p.a,
            &format!("from_a/a{i}"),
            &big(&format!("a{i}"), 3 * MB),
        );
        put(
            &p.b,
            &format!("from_b/b{i}"),
            &big(&format!("b{i}"), 3 * MB),
        );
    }
    put(&p.a, "common/c0", &big("c0 edited on a", 3 * MB));
    put(&p.b, "common/c1", &big("c1 edited on b", 3 * MB));
    put(&p.a, "k.txt", b"a's edit");
    put(&p.b, "k.txt", b"b's edit, newer");
    mtime(&p.a, "k.txt", 1_000);
    mtime(&p.b, "k.txt", 2_000);
    std::fs::remove_file(p.b.join("gone")).unwrap();
    std::fs::rename(p.a.join("common/c2"), p.a.join("c2-moved")).unwrap();

    // Interrupted runs, killed after a random delay.
    let mut rng = seed;
    let mut killed = 0;
    for _ in 0..8 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_micros(rng % 120_000);
        let mut c = common::cmd(["--two-way", "--state"]);
        c.arg(&p.state).arg(&p.a).arg(&p.b);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        let start = Instant::now();
        while start.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
    }
    let snap = p.converge();
    assert!(killed > 0, "no run was interrupted");
    for i in 0..5 {
        assert_eq!(
            snap[&format!("from_a/a{i}")],
            Node::File(big(&format!("a{i}"), 3 * MB), 0o644)
        );
        assert_eq!(
            snap[&format!("from_b/b{i}")],
            Node::File(big(&format!("b{i}"), 3 * MB), 0o644)
        );
    }
    assert_eq!(
        snap["common/c0"],
        Node::File(big("c0 edited on a", 3 * MB), 0o644)
    );
    assert_eq!(
        snap["common/c1"],
        Node::File(big("c1 edited on b", 3 * MB), 0o644)
    );
    assert_eq!(snap["c2-moved"], Node::File(big("c2", 2 * MB), 0o644));
    assert!(!snap.contains_key("common/c2") && !snap.contains_key("gone"));
    assert_eq!(
        snap["k.txt"],
        Node::File(b"b's edit, newer".to_vec(), 0o644)
    );
    let copies: Vec<_> = snap
        .keys()
        .filter(|k| k.contains(".sync-conflict-"))
        .collect();
    assert_eq!(copies.len(), 1, "seed {seed}: {copies:?}");
    assert_eq!(snap[copies[0]], Node::File(b"a's edit".to_vec(), 0o644));
    assert!(
        !snap.keys().any(|k| k.contains(".dirsync-tmp.")),
        "seed {seed}: temporaries left"
    );
    // common/ + 5, from_a/ + 5, from_b/ + 5, c2-moved, k.txt, its copy.
    assert_eq!(
        snap.len(),
        6 + 6 + 6 + 1 + 2,
        "seed {seed}: {:?}",
        snap.keys().collect::<Vec<_>>()
    );
}

#[test]
fn kill_9_at_random_points_then_a_rerun_converges() {
    for seed in [0x5eed_u64, 0xdead_beef, 12_345, 987_654_321] {
        scenario(seed);
    }
}
