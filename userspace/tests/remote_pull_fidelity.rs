//! The fidelity suite (`fidelity.rs`: `-a` and each of -H -A -X -o -g -S)
//! again, with SRC on a remote host reached through a real sshd
//! (`common::sshd`: the binary's name selects the pull mode).

#[path = "fidelity.rs"]
mod fidelity;
