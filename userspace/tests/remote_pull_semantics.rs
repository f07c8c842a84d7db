//! The one-shot semantics suite (`sync_semantics.rs`) again, with the
//! SRC on a remote host reached through a real sshd
//! (`common::sshd`: the binary's name selects the pull mode).

#[path = "sync_semantics.rs"]
mod semantics;
