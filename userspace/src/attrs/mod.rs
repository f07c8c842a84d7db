//! Metadata beyond mode and mtime, at the system call level: extended
//! attributes and POSIX ACLs ([`xattr`]), owner and group with name
//! mapping ([`owner`]), and file content that keeps holes or shares
//! extents ([`content`]: `-S`, reflinks). The engine decides when to use
//! them (`sync/fidelity.rs`, `sync/hardlink.rs`); nothing here prints.

pub mod content;
pub mod owner;
pub mod xattr;
