//! Configuration files: `cluster.conf` (shared by every node).

pub mod cluster_conf;

pub use cluster_conf::{ClusterConf, ConfError, NodeAddr};
