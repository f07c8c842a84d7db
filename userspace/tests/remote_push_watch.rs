//! The watch suite (`watch.rs`) again, with DST on a remote host reached
//! through a real sshd (`common::sshd`: the binary's name selects it).

#[path = "watch.rs"]
mod watch;
