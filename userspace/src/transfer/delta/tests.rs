//! Delta transfer: random files and random edits round-trip exactly
//! (through the byte form), deltas are small where little changed, and
//! the decoders reject garbage without panicking.

use std::io::{Seek, Write};

use super::wire::{get_varint, put_varint, WireError};
use super::*;

/// xorshift64*: reproducible pseudo-random data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// Up to `max - 1` random bytes.
    fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

fn file_with(data: &[u8]) -> std::fs::File {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(data).unwrap();
    f.rewind().unwrap();
    f
}

/// Signature of `old` (through its byte form), delta of `new` (through
/// its byte form), applied: returns the result and the delta's size.
fn round_trip(old: &[u8], new: &[u8], block_len: u32) -> (Vec<u8>, usize) {
    let sl = strong_len_for(old.len().max(new.len()) as u64, block_len);
    round_trip_with(old, new, block_len, sl)
}

/// [`round_trip`] with `sl` bytes of strong hash.
fn round_trip_with(old: &[u8], new: &[u8], block_len: u32, sl: usize) -> (Vec<u8>, usize) {
    let sig = Signature::compute(old, block_len, sl).unwrap();
    let mut sig_bytes = Vec::new();
    sig.encode(&mut sig_bytes);
    let sig = Signature::decode(&sig_bytes).unwrap();
    let mut wire = Vec::new();
    let n = generate(&sig, new, |op| {
        if let Op::Literal(d) = op {
            assert!(!d.is_empty() && d.len() <= MAX_LITERAL);
        }
        op.encode(&mut wire);
        Ok(())
    })
    .unwrap();
    assert_eq!(n, new.len() as u64);
    let mut app = Applier::new(&sig, Some(file_with(old)));
    let mut out = Vec::new();
    let mut rest = &wire[..];
    while !rest.is_empty() {
        let (op, used) = Op::decode(rest).unwrap();
        app.apply(op, &mut out).unwrap();
        rest = &rest[used..];
    }
    assert!(app.is_done());
    assert_eq!(app.written(), out.len() as u64);
    (out, wire.len())
}

/// `old` with a random edit: insert, delete or change, at the start, in
/// the middle or at the end.
fn edit(rng: &mut Rng, old: &[u8]) -> Vec<u8> {
    let mut new = old.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = match rng.below(3) {
            0 => 0,
            1 => new.len(),
            _ => {
                let n = new.len() + 1;
                rng.below(n)
            }
        };
        let max = if rng.below(4) == 0 { 70_000 } else { 5_000 };
        let len = rng.below(max);
        match rng.below(3) {
            0 => {
                let ins = rng.bytes(len);
                new.splice(at..at, ins);
            }
            1 => {
                let end = (at + len).min(new.len());
                new.drain(at..end);
            }
            _ => {
                let end = (at + len).min(new.len());
                let repl = rng.bytes(end - at);
                new[at..end].copy_from_slice(&repl);
            }
        }
    }
    new
}

#[test]
fn rolling_checksum_rolls_like_a_fresh_one() {
    let mut rng = Rng(7);
    for len in [1usize, 2, 3, 64, 2048, 4099] {
        let data = rng.bytes(len + 500);
        let mut r = Rolling::new(&data[..len]);
        for pos in 0..500 {
            assert_eq!(r.digest(), Rolling::new(&data[pos..pos + len]).digest());
            r.roll(data[pos], data[pos + len]);
        }
    }
}

#[test]
fn block_length_grows_like_the_square_root_within_bounds() {
    assert_eq!(block_len_for(0), MIN_BLOCK);
    assert_eq!(block_len_for(1 << 20), MIN_BLOCK);
    assert_eq!(block_len_for(256 << 20), 32768);
    assert_eq!(block_len_for(1 << 50), MAX_BLOCK);
    let mut prev = 0;
    for shift in 0..60 {
        let b = block_len_for(1 << shift);
        assert!(b >= prev && b % 8 == 0 && (MIN_BLOCK..=MAX_BLOCK).contains(&b));
        prev = b;
    }
}

#[test]
fn the_rolling_checksum_is_rsyncs() {
    let mut rng = Rng(5);
    for len in [0usize, 1, 63, 64, 65, 127, 128, 1000, 2048, 32768 + 17] {
        let data = rng.bytes(len);
        let (mut a, mut b) = (0u32, 0u32);
        for (i, &x) in data.iter().enumerate() {
            a = a.wrapping_add(x as u32);
            b = b.wrapping_add((len - i) as u32 * x as u32);
        }
        assert_eq!(
            Rolling::new(&data).digest(),
            (a & 0xffff) | (b << 16),
            "{len}"
        );
        // Both ways of computing it (the one without AVX2, too).
        assert_eq!(sums(&data), (a, b), "{len}");
    }
    let ff = vec![0xff; MAX_BLOCK as usize];
    let n = ff.len() as u64;
    let b = (255 * n * (n + 1) / 2) as u32;
    assert_eq!(
        Rolling::new(&ff).digest(),
        ((255 * n) as u32 & 0xffff) | (b << 16)
    );
}

#[test]
fn the_strong_hash_is_as_long_as_the_file_needs() {
    // 256 MiB in 32 KiB blocks: 24 + 28 + 13 bits, less the weak 32.
    assert_eq!(strong_len_for(256 << 20, 32768), 5);
    // 1 MiB in 2 KiB blocks: the window after a match is compared by
    // its strong hash alone, 24 + 9 bits.
    assert_eq!(strong_len_for(1 << 20, MIN_BLOCK), 5);
    assert_eq!(strong_len_for(0, MIN_BLOCK), 3);
    assert_eq!(strong_len_for(u64::MAX, MIN_BLOCK), 14);
    let mut prev = 0;
    for shift in 0..63 {
        let len = 1u64 << shift;
        let n = strong_len_for(len, block_len_for(len));
        assert!(
            n >= prev && (MIN_STRONG..=MAX_STRONG).contains(&n),
            "{shift}"
        );
        prev = n;
    }
    // Only that many bytes go on the wire, and they round-trip.
    let mut rng = Rng(8);
    let old = rng.bytes(10 * 2048 + 5);
    for sl in [MIN_STRONG, 5, MAX_STRONG] {
        let sig = Signature::compute(&old[..], MIN_BLOCK, sl).unwrap();
        assert!(sig
            .blocks()
            .iter()
            .all(|b| b.strong[sl..].iter().all(|&x| x == 0)));
        let mut enc = Vec::new();
        sig.encode(&mut enc);
        assert!(enc.len() <= 16 + 11 * (4 + sl), "{sl}: {}", enc.len());
        assert_eq!(Signature::decode(&enc), Ok(sig));
    }
    for sl in [0, 1, MAX_STRONG + 1] {
        assert!(Signature::compute(&old[..], MIN_BLOCK, sl).is_err());
    }
}

/// `block` changed so that its weak checksum stays the same (+k, -2k,
/// +k on three neighbouring bytes leaves both sums as they are) and its
/// first `sl` bytes of strong hash too: a false match of both sums,
/// found by trying such changes. `block`'s bytes must be in 70..=185.
fn colliding_block(block: &[u8], sl: usize) -> Vec<u8> {
    let want = strong(block, sl);
    let n = block.len() - 2;
    for t in 0..(1usize << 22) {
        let mut b = block.to_vec();
        for (p, k) in [(t % n, 1 + (t / n) % 30), ((t / n / 30) % n, 1)] {
            if t / n / 30 == 0 && k == 1 && p == 0 {
                continue;
            }
            b[p] += k as u8;
            b[p + 1] -= 2 * k as u8;
            b[p + 2] += k as u8;
        }
        if b != block && strong(&b, sl) == want {
            assert_eq!(Rolling::new(&b).digest(), Rolling::new(block).digest());
            return b;
        }
    }
    panic!("no collision found");
}

#[test]
fn a_false_block_match_is_caught_by_the_whole_file_hash() {
    let mut rng = Rng(21);
    let old: Vec<u8> = rng.bytes(3 * 2048).iter().map(|x| 70 + x % 116).collect();
    let sl = MIN_STRONG;
    let mut new = old.clone();
    let forged = colliding_block(&old[2048..4096], sl);
    new[2048..4096].copy_from_slice(&forged);
    assert_ne!(new, old);
    let sig = Signature::compute(&old[..], MIN_BLOCK, sl).unwrap();
    let mut ops = Vec::new();
    generate(&sig, &new[..], |op| {
        op.encode(&mut ops);
        Ok(())
    })
    .unwrap();
    // The sender took the forged block for old block 1: all copied.
    let (op, used) = Op::decode(&ops).unwrap();
    assert_eq!(op, Op::Copy { start: 0, count: 3 });
    assert!(matches!(Op::decode(&ops[used..]), Ok((Op::End { .. }, _))));
    // The receiver assembles the old file, which is not the sender's.
    let mut app = Applier::new(&sig, Some(file_with(&old)));
    let mut out = Vec::new();
    let mut rest = &ops[..];
    let mut result = Ok(());
    while !rest.is_empty() && result.is_ok() {
        let (op, used) = Op::decode(rest).unwrap();
        result = app.apply(op, &mut out);
        rest = &rest[used..];
    }
    assert!(matches!(result, Err(DeltaError::Mismatch)), "{result:?}");
    assert!(!app.is_done());
    // With a longer strong hash the block is literal: exact.
    let (got, _) = round_trip_with(&old, &new, MIN_BLOCK, 8);
    assert!(got == new);
}

#[test]
fn edge_cases_round_trip() {
    let mut rng = Rng(11);
    let base = rng.bytes(3 * 2048 + 123);
    let other = rng.bytes(5000);
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (vec![], vec![]),
        (vec![], base.clone()),
        (base.clone(), vec![]),
        (base.clone(), base.clone()),
        (base[..100].to_vec(), base[..100].to_vec()),
        (base[..100].to_vec(), base.clone()),
        (base.clone(), base[..2048].to_vec()),
        (base.clone(), base[1..].to_vec()),
        (base.clone(), [&other[..], &base[..]].concat()),
        (base.clone(), [&base[..], &other[..]].concat()),
        (
            base.clone(),
            [&base[..4000], &other[..], &base[4000..]].concat(),
        ),
        (base.clone(), [&base[2048..], &base[..2048]].concat()),
        (vec![0; 10 * 2048], vec![0; 13 * 2048 + 5]),
        (other.clone(), base.clone()),
    ];
    for (i, (old, new)) in cases.iter().enumerate() {
        let (got, _) = round_trip(old, new, MIN_BLOCK);
        assert!(got == *new, "case {i}: wrong result");
    }
}

#[test]
fn random_files_and_edits_round_trip() {
    let mut rng = Rng(0x5eed);
    for case in 0..300 {
        let old = rng.some_bytes(250_000);
        let new = if case % 10 == 0 {
            rng.some_bytes(50_000)
        } else {
            edit(&mut rng, &old)
        };
        let block_len = match rng.below(3) {
            0 => MIN_BLOCK,
            1 => {
                let k = rng.below(100) as u32;
                4096 + 8 * k
            }
            _ => block_len_for(old.len() as u64),
        };
        let (got, _) = round_trip(&old, &new, block_len);
        assert!(
            got == new,
            "case {case}: {} -> {} bytes, block {block_len}",
            old.len(),
            new.len()
        );
    }
}

#[test]
fn a_small_change_in_a_large_file_gives_a_small_delta() {
    let mut rng = Rng(42);
    let old = rng.bytes(32 << 20);
    let mut new = old.clone();
    let mid = old.len() / 2 + 777;
    let changed = rng.bytes(1 << 20);
    new[mid..mid + changed.len()].copy_from_slice(&changed);
    let bl = block_len_for(old.len() as u64);
    let (got, delta) = round_trip(&old, &new, bl);
    assert!(got == new);
    // The changed MiB, at most two partly changed blocks, a few ops.
    assert!(
        delta < (1 << 20) + 2 * bl as usize + 4096,
        "delta {delta} bytes"
    );
    let (_, same) = round_trip(&old, &old, bl);
    assert!(same < 100, "unchanged file: {same} bytes of delta");
    let mut sig = Vec::new();
    Signature::compute(&old[..], bl, strong_len_for(old.len() as u64, bl))
        .unwrap()
        .encode(&mut sig);
    assert!(sig.len() < old.len() / 200, "signature {} bytes", sig.len());
}

#[test]
fn an_old_file_changed_since_its_signature_is_a_mismatch() {
    let mut rng = Rng(3);
    let old = rng.bytes(20_000);
    let new = edit(&mut rng, &old);
    let sig = Signature::compute(&old[..], MIN_BLOCK, MAX_STRONG).unwrap();
    let mut ops = Vec::new();
    generate(&sig, &new[..], |op| {
        op.encode(&mut ops);
        Ok(())
    })
    .unwrap();
    let mut changed = old.clone();
    changed[5000] ^= 1;
    let mut app = Applier::new(&sig, Some(file_with(&changed)));
    let mut out = Vec::new();
    let mut rest = &ops[..];
    let mut result = Ok(());
    while !rest.is_empty() && result.is_ok() {
        let (op, used) = Op::decode(rest).unwrap();
        result = app.apply(op, &mut out);
        rest = &rest[used..];
    }
    assert!(matches!(result, Err(DeltaError::Mismatch)), "{result:?}");
}

#[test]
fn the_applier_refuses_ops_that_do_not_fit() {
    let old = vec![1u8; 5000];
    let sig = Signature::compute(&old[..], MIN_BLOCK, MAX_STRONG).unwrap();
    let bad = [
        Op::Copy { start: 2, count: 2 },
        Op::Copy { start: 0, count: 0 },
        Op::Literal(&[]),
    ];
    let mut out = Vec::new();
    for op in bad {
        let mut app = Applier::new(&sig, Some(file_with(&old)));
        let r = app.apply(op, &mut out);
        assert!(matches!(r, Err(DeltaError::BadOp(_))), "{op:?}");
    }
    let mut app = Applier::new(&sig, None);
    assert!(app
        .apply(Op::Copy { start: 0, count: 1 }, &mut out)
        .is_err());
    let mut app = Applier::new(&sig, Some(file_with(&old)));
    assert!(!app.is_done(), "no end op yet");
    let end = Op::End {
        len: 0,
        hash: *blake3::hash(b"").as_bytes(),
    };
    app.apply(end, &mut out).unwrap();
    assert!(app.is_done());
    let r = app.apply(Op::Literal(b"x"), &mut out);
    assert!(r.is_err(), "op after the end");
    assert!(out.is_empty());
}

#[test]
fn varints_round_trip_and_overlong_ones_are_refused() {
    for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
        let mut b = Vec::new();
        put_varint(&mut b, v);
        assert_eq!(get_varint(&b), Ok((v, b.len())));
        assert_eq!(get_varint(&b[..b.len() - 1]), Err(WireError::Truncated));
    }
    assert!(matches!(
        get_varint(&[0xff; 11]),
        Err(WireError::Invalid(_))
    ));
    assert!(matches!(
        get_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
        Err(WireError::Invalid(_))
    ));
}

#[test]
fn truncated_encodings_are_truncated_and_garbage_never_panics() {
    let mut rng = Rng(99);
    let old = rng.bytes(9000);
    let sig = Signature::compute(&old[..], MIN_BLOCK, 5).unwrap();
    let mut enc = Vec::new();
    sig.encode(&mut enc);
    for cut in 0..enc.len() {
        assert_eq!(
            Signature::decode(&enc[..cut]),
            Err(WireError::Truncated),
            "cut {cut}"
        );
    }
    enc.push(0);
    assert!(matches!(
        Signature::decode(&enc),
        Err(WireError::Invalid(_))
    ));
    let lit = [7u8; 300];
    let ops = [
        Op::Copy { start: 3, count: 9 },
        Op::Literal(&lit),
        Op::End {
            len: 5,
            hash: [9; 32],
        },
    ];
    for op in ops {
        let mut b = Vec::new();
        op.encode(&mut b);
        assert_eq!(Op::decode(&b), Ok((op, b.len())));
        for cut in 0..b.len() {
            assert_eq!(Op::decode(&b[..cut]), Err(WireError::Truncated));
        }
    }
    // Random bytes, and valid encodings with random bytes flipped.
    let mut decoded = 0;
    for i in 0..200_000 {
        let mut buf = if i % 2 == 0 {
            rng.some_bytes(64)
        } else {
            enc.clone()
        };
        if i % 2 == 1 {
            for _ in 0..1 + rng.below(4) {
                let n = buf.len();
                let at = rng.below(n);
                buf[at] = rng.next() as u8;
            }
            let n = buf.len() + 1;
            buf.truncate(rng.below(n));
        }
        decoded += Signature::decode(&buf).is_ok() as u32;
        if let Ok((op, used)) = Op::decode(&buf) {
            assert!(used <= buf.len());
            if let Op::Literal(d) = op {
                assert!(!d.is_empty() && d.len() <= MAX_LITERAL);
            }
        }
    }
    assert!(decoded < 200_000);
}
