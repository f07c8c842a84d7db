//! The sender's side: the delta of a new file against a [`Signature`].

use std::collections::HashMap;
use std::io::{self, Read};

use super::{strong, DeltaError, Op, Rolling, Signature, MAX_LITERAL, MAX_STRONG};

/// Bytes read from the new file at a time.
const READ_CHUNK: usize = 1024 * 1024;
/// Most blocks with the same weak checksum compared with a window.
const MAX_CANDIDATES: usize = 64;
/// End of a chain in [`Index::next`].
const NONE: u32 = u32::MAX;
/// The most bytes one [`Op::Copy`] stands for: a long run of unchanged
/// blocks goes as several, so that the receiver can copy them while the
/// sender is still matching the rest (a few bytes of ops per 8 MiB).
pub const MAX_COPY_RUN: u64 = 8 << 20;

/// Full-length blocks by weak checksum (chained, in block order).
struct Index<'s> {
    sig: &'s Signature,
    first: HashMap<u32, u32>,
    next: Vec<u32>,
}

impl<'s> Index<'s> {
    fn new(sig: &'s Signature) -> Self {
        let full = (sig.file_len / sig.block_len as u64) as usize;
        let mut first = HashMap::with_capacity(full);
        let mut next = vec![NONE; full];
        for i in (0..full).rev() {
            if let Some(old) = first.insert(sig.blocks[i].weak, i as u32) {
                next[i] = old;
            }
        }
        Index { sig, first, next }
    }

    /// The block matching `window` (whose weak checksum is `weak`, and
    /// strong hash `hash` if known), trying `hint` (the block after the
    /// last match) first.
    fn find(
        &self,
        weak: u32,
        window: &[u8],
        hint: Option<u32>,
        mut hash: Option<[u8; MAX_STRONG]>,
    ) -> Option<u32> {
        let mut cand = *self.first.get(&weak)?;
        let mut same = |i: u32| {
            let h = hash.get_or_insert_with(|| strong(window, self.sig.strong_len));
            self.sig.blocks[i as usize].strong == *h
        };
        if let Some(h) = hint.filter(|&h| (h as usize) < self.next.len()) {
            if self.sig.blocks[h as usize].weak == weak && same(h) {
                return Some(h);
            }
        }
        for _ in 0..MAX_CANDIDATES {
            if same(cand) {
                return Some(cand);
            }
            cand = self.next[cand as usize];
            if cand == NONE {
                return None;
            }
        }
        None
    }
}

/// What has been emitted so far, with the pending copy run.
struct Out<F> {
    emit: F,
    hasher: blake3::Hasher,
    len: u64,
    copy: Option<(u32, u32)>,
    /// The most blocks of one copy op ([`MAX_COPY_RUN`] bytes).
    max_run: u32,
}

impl<F: FnMut(Op<'_>) -> io::Result<()>> Out<F> {
    fn flush_copy(&mut self) -> io::Result<()> {
        if let Some((start, count)) = self.copy.take() {
            (self.emit)(Op::Copy { start, count })?;
        }
        Ok(())
    }

    fn literal(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.flush_copy()?;
        for chunk in data.chunks(MAX_LITERAL) {
            self.hasher.update(chunk);
            self.len += chunk.len() as u64;
            (self.emit)(Op::Literal(chunk))?;
        }
        Ok(())
    }

    fn block(&mut self, i: u32, data: &[u8]) -> io::Result<()> {
        self.hasher.update(data);
        self.len += data.len() as u64;
        match &mut self.copy {
            Some((start, count)) if *start + *count == i && *count < self.max_run => *count += 1,
            _ => {
                self.flush_copy()?;
                self.copy = Some((i, 1));
            }
        }
        Ok(())
    }
}

/// Streams the delta of `new` (read to its end) against `sig` to `emit`:
/// [`Op::Copy`] and [`Op::Literal`] ops in file order, then one
/// [`Op::End`]. Returns the length of `new`. An error of `emit` stops it
/// and is returned.
pub fn generate<R, F>(sig: &Signature, mut new: R, emit: F) -> Result<u64, DeltaError>
where
    R: Read,
    F: FnMut(Op<'_>) -> io::Result<()>,
{
    let index = Index::new(sig);
    let bl = sig.block_len as usize;
    let mut out = Out {
        emit,
        hasher: blake3::Hasher::new(),
        len: 0,
        copy: None,
        max_run: (MAX_COPY_RUN / sig.block_len as u64).max(1) as u32,
    };
    // buf[lit..pos] is the pending literal, buf[pos..pos + bl] the window.
    let mut buf: Vec<u8> = Vec::with_capacity(MAX_LITERAL + bl + READ_CHUNK);
    let (mut lit, mut pos) = (0usize, 0usize);
    let mut eof = false;
    let mut roll: Option<Rolling> = None;
    let mut hint: Option<u32> = None;
    loop {
        if buf.len() - pos <= bl && !eof {
            buf.drain(..lit);
            pos -= lit;
            lit = 0;
            eof = fill(&mut new, &mut buf, pos + bl + 1)?;
        }
        if buf.len() - pos < bl || index.next.is_empty() {
            break;
        }
        let window = &buf[pos..pos + bl];
        // A fresh window (after a match) is most likely the block after
        // the matched one: its strong hash alone decides (it has enough
        // bits for that, see `strong_len_for`), which spares the weak
        // checksum of every window of an unchanged run.
        let mut hash = None;
        if roll.is_none() {
            if let Some(h) = hint.filter(|&h| (h as usize) < index.next.len()) {
                let s = strong(window, sig.strong_len);
                if sig.blocks[h as usize].strong == s {
                    out.literal(&buf[lit..pos])?;
                    out.block(h, &buf[pos..pos + bl])?;
                    pos += bl;
                    lit = pos;
                    hint = Some(h + 1);
                    continue;
                }
                hash = Some(s);
            }
        }
        let weak = roll.get_or_insert_with(|| Rolling::new(window)).digest();
        if let Some(i) = index.find(weak, window, hint, hash) {
            out.literal(&buf[lit..pos])?;
            out.block(i, &buf[pos..pos + bl])?;
            pos += bl;
            lit = pos;
            roll = None;
            hint = Some(i + 1);
            continue;
        }
        if pos + bl < buf.len() {
            if let Some(r) = &mut roll {
                r.roll(buf[pos], buf[pos + bl]);
            }
        } else {
            roll = None;
        }
        pos += 1;
        if pos - lit >= MAX_LITERAL {
            out.literal(&buf[lit..pos])?;
            lit = pos;
        }
    }
    // The tail (shorter than a block, or all of it when the old file has
    // no full block): the old file's short last block, or literal.
    if !eof {
        buf.drain(..lit);
        pos -= lit;
        lit = 0;
        while !fill(&mut new, &mut buf, 0)? {
            out.literal(&buf[lit..])?;
            buf.clear();
            pos = 0;
        }
    }
    let tail = &buf[pos..];
    let last = sig.blocks.len().checked_sub(1).map(|i| i as u32);
    let short = last.filter(|&i| {
        let (_, len) = sig.block_range(i);
        len == tail.len()
            && len > 0
            && sig.blocks[i as usize].weak == Rolling::new(tail).digest()
            && sig.blocks[i as usize].strong == strong(tail, sig.strong_len)
    });
    match short {
        Some(i) => {
            out.literal(&buf[lit..pos])?;
            out.block(i, &buf[pos..])?;
        }
        None => out.literal(&buf[lit..])?,
    }
    out.flush_copy()?;
    let hash = *out.hasher.finalize().as_bytes();
    (out.emit)(Op::End { len: out.len, hash })?;
    Ok(out.len)
}

/// Reads into `buf` until it holds `want` bytes; true at the end of `r`.
fn fill<R: Read>(r: &mut R, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let want = want.max(buf.len() + READ_CHUNK);
    while buf.len() < want {
        let old = buf.len();
        buf.resize(want, 0);
        match r.read(&mut buf[old..]) {
            Ok(0) => {
                buf.truncate(old);
                return Ok(true);
            }
            Ok(n) => buf.truncate(old + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(old),
            Err(e) => {
                buf.truncate(old);
                return Err(e);
            }
        }
    }
    Ok(false)
}
