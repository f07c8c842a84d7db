//! Two-way sync with B on a remote host reached through a real sshd
//! (`common::sshd`; the binary's name makes `Pair::run` write B as
//! `127.0.0.1:B`): every scenario and guard of the local suites again,
//! then what only a remote side has (the agent's re-check, hostile
//! agents, an agent without the feature).

#[path = "twoway_scenarios.rs"]
mod scenarios;

#[path = "twoway_guards.rs"]
mod guards;
