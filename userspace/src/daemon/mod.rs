//! `dirsync daemon`: many sync pairs from one config file, run as a
//! service, with a control socket and an HTTP status page.
//!
//! [`api`] is what the daemon shows and accepts, shared by the control
//! socket, the HTTP API and the status page; [`http`] serves the page,
//! the JSON API and the metrics.

pub mod api;
pub mod http;
