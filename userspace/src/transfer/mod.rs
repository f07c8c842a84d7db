//! Moving file content between two machines efficiently: the building
//! blocks the remote protocol stacks on its byte stream. Independent of
//! the engine and of the remote code (this module uses nothing else of the
//! crate), so each piece is tested on its own.
//!
//! * [`delta`]: rsync-style delta transfer. The receiver sends a
//!   [`delta::Signature`] of its old copy (per block a rolling weak
//!   checksum and a strong hash), the sender streams [`delta::Op`]s (copy
//!   these old blocks / these literal bytes) and a whole-file hash, the
//!   receiver assembles the new file into a temporary with
//!   [`delta::Applier`] and refuses it when the hash differs.
//! * [`compress`]: zstd stream adapters whose `flush()` makes everything
//!   written so far decodable by the peer (for a pipelined protocol).
//! * [`bwlimit`]: a token bucket on a writer (`--bwlimit RATE`) and the
//!   rsync-compatible rate parser.

pub mod bwlimit;
pub mod compress;
pub mod delta;
