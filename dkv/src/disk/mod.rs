//! The cluster runtime: what connects the sans-IO [`crate::node::Node`] to
//! real disks and sockets.

pub mod hint_log;
pub mod store_disk;

pub use hint_log::HintLog;
pub use store_disk::StoreDisk;
