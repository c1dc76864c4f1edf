//! The command layer: every client command dkv answers, parsed once,
//! run once, rendered once, for a node alone and a node of a cluster
//! alike.
//!
//! A request arrives as the RESP parser's [`crate::resp::Command`]
//! (arguments only); [`Executor::execute`] looks its name up in the
//! command table, checks arity and authentication in Redis's order, parses
//! it into a typed [`Command`] and runs it. Data commands (`GET`, `SET`,
//! `DEL`, `EXISTS`, `MGET`, `MSET`) go through the replication core
//! ([`crate::node::Node`]), which the executor owns: one clock stamps
//! every write, one durability gate holds every acknowledgement, and a
//! node alone is simply a cluster of one (N = W = R = 1). Everything else
//! answers at once from the session and the node's state.
//!
//! The layer does no socket or disk IO of its own (INFO reads this
//! process's `/proc/self/statm`, nothing more): the IO layer
//! ([`crate::net`]) feeds it and drains it, and the simulator can drive
//! it the same way.
//!
//! | file          | owns                                                          |
//! |---------------|---------------------------------------------------------------|
//! | `table.rs`    | the command table: names, arity, flags, key positions         |
//! | `parse.rs`    | [`Command`]: a request validated into a typed value            |
//! | `error.rs`    | [`CommandError`]: refusals in Redis's words                    |
//! | `executor.rs` | [`Executor`]: runs commands, data ones through the node        |
//! | `parse_data.rs` | the data commands' options, numbers and expiry times        |
//! | `program.rs`  | programs: data commands that read before they write        |
//! | `strings.rs`  | string and bit operations, Redis's integer parsing            |
//! | `stats.rs`    | per-command calls, errors and latency histograms              |
//! | `reply.rs`    | the renderer of data commands' replies                        |
//! | `admin.rs`    | the non-data commands (PING, AUTH, HELLO, CLIENT, CONFIG, ...) |
//! | `info.rs`     | `INFO`                                                        |
//! | `session.rs`  | [`Session`]: one connection's authentication, name, levels     |
//! | `settings.rs` | [`Settings`] and the shared [`ServerStats`]                    |
//! | `transaction.rs` | `MULTI`'s queue; `executor/batch.rs` runs it               |

mod admin;
mod error;
mod executor;
mod info;
mod parse;
mod parse_data;
mod program;
mod reply;
mod session;
mod settings;
mod stats;
mod strings;
mod table;
mod transaction;

pub use error::CommandError;
pub use executor::{CallId, Completion, ConnId, Executed, Executor};
pub use parse::{
    ArgList, ClientRequest, Command, CommandQuery, ConfigRequest, ConsistencyRequest, Hello,
};
pub use session::Session;
pub use settings::{ServerStats, Settings};
