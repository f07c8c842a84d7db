//! `on_error` / `on_conflict`: a program run with `DIRSYNC_PAIR`,
//! `DIRSYNC_EVENT` and `DIRSYNC_MESSAGE`, in a thread of its own (a slow
//! hook never holds a pair up), killed after [`HOOK_TIMEOUT`].

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::LogLevel;
use super::log::Logger;

/// How long a hook may run.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest `DIRSYNC_MESSAGE` passed (longer ones are cut).
const MAX_MESSAGE: usize = 4096;

/// Runs `argv` for `pair`'s `event` (`error`, `recovered`, `conflict`);
/// an empty `argv` does nothing.
pub fn run(argv: &[String], pair: &str, event: &str, message: &str, log: &Arc<Logger>) {
    let Some((prog, args)) = argv.split_first() else {
        return;
    };
    let mut msg = message.to_string();
    if msg.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
    }
    // An environment value cannot hold a NUL.
    let msg = msg.replace('\0', " ");
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env("DIRSYNC_PAIR", pair)
        .env("DIRSYNC_EVENT", event)
        .env("DIRSYNC_MESSAGE", msg)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let (log, pair, prog) = (log.clone(), pair.to_string(), prog.clone());
    std::thread::spawn(move || {
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                log.log(
                    LogLevel::Error,
                    Some(&pair),
                    &format!("hook {prog}: cannot run: {e}"),
                );
                return;
            }
        };
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(st)) if !st.success() => {
                    log.log(LogLevel::Warn, Some(&pair), &format!("hook {prog}: {st}"));
                    return;
                }
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if start.elapsed() > HOOK_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    log.log(
                        LogLevel::Warn,
                        Some(&pair),
                        &format!("hook {prog}: killed after {} s", HOOK_TIMEOUT.as_secs()),
                    );
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
}
