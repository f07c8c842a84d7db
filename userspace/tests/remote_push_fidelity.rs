//! The fidelity suite (`fidelity.rs`: `-a` and each of -H -A -X -o -g -S)
//! again, with DST on a remote host reached through a real sshd
//! (`common::sshd`: the binary's name selects the push mode).

#[path = "fidelity.rs"]
mod fidelity;
