//! The one-shot semantics suite (`sync_semantics.rs`) again, with the
//! DST on a remote host reached through a real sshd
//! (`common::sshd`: the binary's name selects the push mode).

#[path = "sync_semantics.rs"]
mod semantics;
