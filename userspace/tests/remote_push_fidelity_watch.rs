//! The watch fidelity suite (`fidelity_watch.rs`: setfacl, setfattr,
//! chown, ln, `truncate -s` under `watch -a`) again, with DST on a remote
//! host reached through a real sshd (`common::sshd`: the binary's name
//! selects the push mode).

#[path = "fidelity_watch.rs"]
mod fidelity_watch;
