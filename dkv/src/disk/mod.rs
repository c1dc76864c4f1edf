//! The node's real disk: the [`crate::node::Disk`] the replication core
//! runs on in production, and what the runtime needs to learn when it is
//! durable.
//!
//! | file            | owns                                                        |
//! |-----------------|-------------------------------------------------------------|
//! | `store_disk.rs` | [`StoreDisk`]: data in the [`crate::store::Store`], hints in the [`HintLog`] |
//! | `hint_log.rs`   | [`HintLog`]: the hints a node keeps for others, in a WAL of their own |
//! | `watch.rs`      | [`DurabilityWatch`]: the runtime's view of both logs' progress |

mod hint_log;
mod store_disk;
mod watch;

pub use hint_log::HintLog;
pub use store_disk::StoreDisk;
pub use watch::{DurabilityWatch, LogHandles, Progress};
