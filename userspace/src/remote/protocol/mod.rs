//! The protocol, in layers from the bytes up:
//!
//! 1. [`frame`]: length-prefixed frames (a kind byte and a payload of at
//!    most [`frame::MAX_FRAME`] bytes), read and written in batches.
//! 2. [`layers`]: what the two sides agreed on in their hellos, inserted
//!    under the frames after the handshake: zstd compression and the
//!    `--bwlimit` rate limit. [`alive`]: `--timeout` on reads and the
//!    keepalive frames that keep an idle link from timing out.
//! 3. `fields`: how a message's fields are encoded (integers, byte
//!    strings, names checked to be one path component, metadata,
//!    attributes), and the strict decoder that refuses anything else.
//! 4. [`messages`]: the messages ([`messages::Msg`]) and what each means;
//!    their encoding to and from one frame is in `codec`, and `events`
//!    carries the engine's report events across. [`fidelity`]: what the
//!    feature bit of `-H -A -X -o -g -S` adds, and its bounds.
//!
//! The roles that speak it (client, server, agent, link, replica) are the
//! other modules of [`super`].

pub mod alive;
pub mod changes;
mod codec;
pub(crate) mod events;
pub mod fidelity;
pub(crate) mod fields;
pub mod frame;
pub mod layers;
pub mod messages;
pub mod twoway;
pub mod watch;
