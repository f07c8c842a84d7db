//! The safety suite (`sync_safety.rs`) again, with the DST on a remote
//! host reached through a real sshd (`common::sshd`: the binary's name
//! selects the push mode).

#[path = "sync_safety.rs"]
mod safety;
