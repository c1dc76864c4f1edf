//! The client protocol codec: RESP2 requests in, RESP2 replies out, no IO.
//!
//! This module owns the bytes of the client port and nothing else: the
//! reactor hands it a connection's read buffer and gets back whole
//! [`Command`]s and how many bytes they took; command handlers write their
//! replies with [`reply`]. It reads no socket, clock or global state.
//!
//! | file          | owns                                                           |
//! |---------------|----------------------------------------------------------------|
//! | `parser.rs`   | [`Parser`], [`parse_command`]: incremental multibulk + inline  |
//! | `inline.rs`   | splitting an inline line with Redis's `sdssplitargs` rules     |
//! | `command.rs`  | [`Command`]: binary-safe arguments in one buffer               |
//! | `limits.rs`   | [`Limits`]: bulk length, argument count, line and request size |
//! | `error.rs`    | [`ProtocolError`]: Redis's messages, and whether to resync     |
//! | [`reply`]     | the append-only reply writer and [`Reply`]                     |
//!
//! Invariants:
//! - The parser never panics, whatever the bytes: every length is checked
//!   before use and every index is bounds-checked.
//! - Memory is bounded: a request is refused as soon as a header declares
//!   more than [`Limits`] allow, before its data is buffered, so one
//!   unfinished request never holds more than about
//!   `max_request_len + max_inline_len` bytes.
//! - Splitting is invisible: feeding a stream in any number of pieces
//!   yields the same commands, the same `consumed` counts and the same
//!   errors as feeding it whole.
//! - Protocol errors: Redis replies `-ERR Protocol error: ...` and closes the
//!   connection. [`ProtocolError::skip`] is `Some` only for an inline line
//!   read whole (unbalanced quotes, too many arguments), which a server may
//!   skip and go on; for the rest it should reply and close.
//!
//! A reactor's read loop:
//!
//! ```
//! use dkv::resp::{reply, Limits, Parser};
//!
//! let mut parser = Parser::new(Limits::default());
//! let mut inbuf = b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n*1\r\n$4\r\nPI".to_vec();
//! let mut out = Vec::new();
//! loop {
//!     match parser.parse(&inbuf) {
//!         Ok(Some((command, consumed))) => {
//!             inbuf.drain(..consumed);
//!             match command.name() {
//!                 Some(b"PING") => reply::simple(&mut out, "PONG"),
//!                 Some(b"ECHO") => reply::bulk(&mut out, command.get(1).unwrap_or_default()),
//!                 _ => reply::error(&mut out, reply::code::ERR, "unknown command"),
//!             }
//!         }
//!         Ok(None) => break, // read more, then call again
//!         Err(err) => {
//!             reply::protocol_error(&mut out, &err);
//!             break; // and close once `out` is written
//!         }
//!     }
//! }
//! assert_eq!(out, b"$2\r\nhi\r\n+PONG\r\n");
//! assert_eq!(inbuf, b"*1\r\n$4\r\nPI"); // the start of the next command
//! ```

mod command;
mod error;
mod inline;
mod limits;
mod parser;
pub mod reply;

#[cfg(test)]
mod parser_tests;
#[cfg(test)]
mod proptests;

pub use command::{Args, Command};
pub use error::{ProtocolError, ProtocolErrorKind};
pub use limits::Limits;
pub use parser::{parse_command, Parser};
pub use reply::Reply;
