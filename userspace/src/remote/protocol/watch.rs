//! What `dirsync watch host:SRC DST` adds to the protocol: the feature
//! bit, the setup flag that asks the server to watch its SRC, and the
//! message that ends the watch (types 80 to 89 are this file's).
//!
//! The client sets [`OPT_WATCH`] in a pull's setup (role `Engine`) only
//! when the server's hello has [`FEATURE_WATCH`]: an older server is
//! refused before the setup goes out, so it never runs a one-shot pull
//! instead. The server then runs the watch engine (its own inotify) on
//! SRC with the client as the agent of DST, forwarding its events, until
//! the client sends [`Msg::WatchStop`](super::messages::Msg::WatchStop)
//! (SIGINT/SIGTERM on the client) or the link goes down; it then finishes
//! the operations in hand and ends with `Done`, as a one-shot pull does.

use super::fields::{Dec, Enc, ProtoError};
use super::messages::Msg;

pub use super::messages::FEATURE_WATCH;
/// Setup flag (with role `Engine`): watch SRC instead of one pass.
pub const OPT_WATCH: u32 = 1 << 24;
/// The type byte of [`Msg::WatchStop`]: no payload.
pub const WATCH_STOP: u8 = 80;

/// Encodes messages 80 to 89; `None`: not one of them.
pub fn encode(m: &Msg, e: &mut Enc) -> Option<u8> {
    match m {
        Msg::WatchStop => Some(WATCH_STOP),
        m => super::changes::encode(m, e),
    }
}

/// Decodes messages 80 to 89.
pub fn decode(kind: u8, d: &mut Dec<'_>) -> Result<Msg, ProtoError> {
    match kind {
        WATCH_STOP => Ok(Msg::WatchStop),
        k => super::changes::decode(k, d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_stop_round_trips_and_takes_no_payload() {
        let (k, p) = Msg::WatchStop.encode();
        assert_eq!((k, p.as_slice()), (WATCH_STOP, &[][..]));
        assert_eq!(Msg::decode(k, &p).unwrap(), Msg::WatchStop);
        // Trailing bytes are refused, as for every message.
        assert!(Msg::decode(WATCH_STOP, &[0]).is_err());
        // The rest of the range is not a message (yet).
        assert!(matches!(
            Msg::decode(83, &[]),
            Err(ProtoError::UnknownType(83))
        ));
    }

    #[test]
    fn the_bits_do_not_collide() {
        use super::super::messages::*;
        assert_eq!(FEATURES & FEATURE_WATCH, FEATURE_WATCH);
        let others = FEATURE_ZSTD | FEATURE_DELTA | FEATURE_FRESH | FEATURE_KEEPALIVE;
        assert_eq!((others | FEATURE_FIDELITY) & FEATURE_WATCH, 0);
        let opts = OPT_DRY_RUN
            | OPT_NO_DELETE
            | OPT_SIZE_ONLY
            | OPT_NO_RECURSIVE
            | OPT_CHECKSUM
            | OPT_FSYNC
            | OPT_SPECIALS
            | OPT_DST_CREATED
            | OPT_FIDELITY
            | OPT_NUMERIC_IDS;
        assert_eq!(opts & OPT_WATCH, 0);
    }
}
