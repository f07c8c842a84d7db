//! Two-way sync (`dirsync --two-way A B`): both trees may change; an
//! archive of the last synced state tells which side changed what.
//!
//! * [`reconcile`]: the decision per path (a pure function);

pub mod reconcile;
