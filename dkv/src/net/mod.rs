//! All socket IO of a node, and nothing else: the reactor thread, client
//! connections, peer links, and the loop that drives the command layer
//! ([`crate::command::Executor`]) with what they carry.
//!
//! Bytes in, bytes out: connections frame requests with the RESP parser
//! and hand them on; peer links frame envelopes with the peer codec and
//! hand them on; what a command or a message means is decided above.
//!
//! | file         | owns                                                        |
//! |--------------|-------------------------------------------------------------|
//! | `reactor.rs` | the loop: readiness, accepts, bounded work per turn, shutdown |
//! | `conn.rs`    | one client connection: input, parser, ordered output        |
//! | `peers.rs`   | peer sockets: framing, reconnects, bounded refusal logs     |
//! | `handshake.rs` | both sides of the peer handshake, as state machines       |
//! | `rate_log.rs` | warnings strangers can trigger, logged at a bounded rate  |
//! | `tls.rs`     | TLS setup (rustls) and the plain-or-TLS socket, `Transport` |
//! | `wakeup.rs`  | waking the loop from other threads                          |

mod conn;
pub(crate) mod handshake;
pub(crate) mod peers;
mod rate_log;
pub(crate) mod reactor;
pub(crate) mod tls;
mod wakeup;
