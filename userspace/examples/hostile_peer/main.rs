//! A hostile peer for the test suite: plays the remote side of a real
//! `dirsync` through `-e`, speaking the protocol with the library's own
//! frames and messages, and does what an honest peer never would.
//!
//! ```text
//! dirsync -e 'target/release/examples/hostile_peer SCENARIO' 127.0.0.1:/x DST
//! ```
//!
//! `dirsync` runs it as `hostile_peer SCENARIO HOST COMMAND...` (a
//! transport command gets the host and the remote command); everything
//! after the scenario's name is ignored. Each scenario module owns a
//! family of attacks ([`scenarios`] lists their names); a name that no
//! module knows exits 2 with a message on stderr. The tests judge
//! `dirsync` by what it did (files on disk, exit code, peak memory,
//! time), never by what this program says.
//!
//! Not part of the product: built by `cargo test` (examples are) and
//! found by `tests/common::hostile_peer`.

mod bounds;
mod fidelity;
mod peer;
mod stall;
mod twoway;
mod watch;

use std::process::ExitCode;

use peer::Peer;

/// A scenario: what the peer does once started on stdin/stdout.
pub type Scenario = fn(&mut Peer) -> std::io::Result<()>;

/// Every module's scenarios, by name.
fn scenarios() -> Vec<(&'static str, Scenario)> {
    [
        stall::SCENARIOS,
        bounds::SCENARIOS,
        fidelity::SCENARIOS,
        watch::SCENARIOS,
        twoway::SCENARIOS,
    ]
    .concat()
}

fn main() -> ExitCode {
    let Some(name) = std::env::args().nth(1) else {
        eprintln!("usage: hostile_peer SCENARIO [HOST COMMAND...]");
        return ExitCode::from(2);
    };
    let Some((_, run)) = scenarios().into_iter().find(|(n, _)| *n == name) else {
        eprintln!("hostile_peer: no scenario named {name:?}");
        return ExitCode::from(2);
    };
    match run(&mut Peer::stdio()) {
        Ok(()) => ExitCode::SUCCESS,
        // The client hung up on us: what most attacks end with.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostile_peer {name}: {e}");
            ExitCode::from(1)
        }
    }
}
