//! `dirsync daemon`: many sync pairs from one config file, run as a
//! service, with a control socket and an HTTP status page.
//!
//! [`api`] is what the daemon shows and accepts, shared by the control
//! socket, the HTTP API and the status page. [`config`] reads the file
//! (every error is `FILE:LINE: what`), [`schedule`] says when a pair runs
//! and at what rate. [`http`] serves the status page, the JSON API and the
//! metrics.

pub mod api;
pub mod config;
#[cfg(test)]
mod config_tests;
pub mod control;
mod engines;
pub mod hooks;
pub mod http;
pub mod json;
pub mod log;
pub mod pair;
pub mod schedule;
pub mod sdnotify;
pub mod service;
pub mod state;
pub mod track;
mod twoway_pair;
