//! The receiving side of a delta: a delta whose result does not match
//! the sender's hash (here the basis changed after its signature, as a
//! false block match would do) is refused, and the whole file that the
//! sender then sends is what gets the final name.

use std::ffi::CString;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::*;
use crate::stat::Statx;
use crate::sync::local::LocalReplica;
use crate::sync::{Attrs, Over};
use crate::transfer::delta::generate;

/// `len` reproducible pseudo-random bytes.
fn bytes(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn a_delta_that_does_not_match_is_refused_and_the_whole_file_taken() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("f");
    let old = bytes(3 << 20, 1);
    std::fs::write(&path, &old).unwrap();
    let mut new = old.clone();
    new[1000..1100].copy_from_slice(&bytes(100, 7));
    let root = LocalReplica::new(sys_root(t.path()), Arc::new(Statx), false);
    let dir = Arc::new(root.root_dir().unwrap());
    let name = CString::new("f").unwrap();
    let mut file = dir.receive_shared(&name, false).unwrap();
    let mut rx = Receiver::new(dir.clone(), name.clone());
    let sig = rx.plan(&mut file, new.len() as u64).expect("a signature");
    let sig = Signature::decode(&sig).unwrap();
    // The basis changes after its signature, in a block the sender
    // will tell the receiver to copy.
    let basis = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    basis.write_all_at(b"changed", 2 << 20).unwrap();
    let mut ops = Vec::new();
    let n = generate(&sig, &new[..], |op| {
        op.encode(&mut ops);
        Ok(())
    })
    .unwrap();
    assert_eq!(n, new.len() as u64);
    assert!(
        ops.len() < 40_000,
        "a delta, not the whole file: {}",
        ops.len()
    );
    assert!(rx.apply(&ops, file.as_mut(), u64::MAX).is_ok());
    assert!(!rx.end(&mut file).unwrap(), "the assembled file is refused");
    // The sender then sends the whole file (`delta::send_file` gives
    // `None`), into a file that starts again empty.
    file.write(&new).unwrap();
    file.commit(&Attrs::default(), false, Over::Entry).unwrap();
    assert!(std::fs::read(&path).unwrap() == new, "the replica is exact");
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["f"], "no partial file left");
}

fn sys_root(p: &std::path::Path) -> std::os::fd::OwnedFd {
    crate::sys::open_root(p).unwrap()
}
