//! Two-way sync (`dirsync --two-way A B`): both trees may change; an
//! archive of the last synced state tells which side changed what, and
//! nothing anyone wrote is lost.
//!
//! * [`reconcile`]: the decision per path (a pure function) and the
//!   directory fix-up;
//! * [`archive`]: the state store (SQLite, WAL, locked);
//! * [`attrs`]: owner, group and `user.*` attributes (`-o -g -X`);
//! * [`scan`]: one pass over each tree; [`scope`]: a pass over some
//!   paths only (`watch --two-way`);
//! * [`renames`]: renames on one side replayed as renames on the other;
//! * [`conflict_name`]: the names of conflict copies;
//! * [`replica`]: a side, local or through a remote agent;
//! * [`apply`]: carrying out the decisions, re-checking each entry first;
//! * [`engine`]: [`run`], the whole run with its guards;
//! * [`watch`]: `watch --two-way`, a pass per event batch;
//! * [`spec`], [`error`]: what a run is asked, why it stopped.
//!
//! The library entry point is [`run`]: no printing, no process-global
//! state, usable from a thread (the daemon calls it per pair).

pub mod apply;
pub mod archive;
pub mod attrs;
pub mod conflict_name;
pub mod engine;
pub mod error;
pub mod reconcile;
pub mod renames;
pub mod replica;
pub mod scan;
pub mod scope;
pub mod spec;
pub mod watch;

pub use engine::{default_state_path, open_local, run, run_with};
pub use error::Error;
pub use reconcile::Policy;
pub use spec::TwoWaySpec;
