//! Two-way sync with A on a remote host reached through a real sshd
//! (`common::sshd`; the binary's name makes `Pair::run` write A as
//! `127.0.0.1:A`): every scenario of the local suite again, the engine
//! and its archive on the side of B. (`twoway_remote` has B remote, the
//! guards and the hostile agents.)

#[path = "twoway_scenarios.rs"]
mod scenarios;
