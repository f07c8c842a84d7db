//! What a two-way run is asked to do ([`TwoWaySpec`]).

use std::path::PathBuf;

use super::reconcile::Policy;

/// What a two-way run is asked to do (the options of a mirror, in
/// [`crate::sync::Options`], come beside it).
#[derive(Clone, Debug, Default)]
pub struct TwoWaySpec {
    /// The first root.
    pub a: PathBuf,
    /// The second root.
    pub b: PathBuf,
    /// The archive (`None`: [`default_state_path`]).
    pub state: Option<PathBuf>,
    /// `--conflict`.
    pub policy: Policy,
    /// `--conflict-delete-loser`: the loser of a conflict is not kept.
    pub delete_loser: bool,
    /// `--max-delete`: more deletions than this percentage of the archived
    /// entries stop the run (100: no limit).
    pub max_delete: u8,
    /// `--force`: run even though a root is empty or its device changed.
    pub force: bool,
}
