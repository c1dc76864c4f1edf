//! dkv: a Dynamo-style distributed in-memory key-value store.
//!
//! This crate is the core: storage, durability, and (in later layers) the
//! node and its client. Layers, bottom up:
//!
//! | module        | owns                                                        |
//! |---------------|-------------------------------------------------------------|
//! | [`hash`]      | MurmurHash3 x64-128 (ring placement) and CRC-32 (records)   |
//! | [`version`]   | `(timestamp, node_id)` versions and their order             |
//! | [`clock`]     | the hybrid logical clock that stamps writes                 |
//! | [`ring`]      | the consistent-hash ring: tokens, preference lists, walks   |
//! | [`storage`]   | the sharded Last-Write-Wins map with tombstones             |
//! | [`wal`]       | the write-ahead log: CRC'd records, group commit, recovery  |
//! | [`snapshot`]  | whole-engine snapshots that let the WAL be compacted        |
//! | [`store`]     | a node's durable store: engine + WAL + snapshots            |
//! | [`config`]    | `cluster.conf`                                              |
//! | [`peer`]      | the peer wire protocol: handshake and framed messages       |
//! | [`server`]    | the node: a store and its cluster served over RESP2         |
//! | [`client`]    | a blocking Rust client: failover, per-request consistency   |
//!
//! See `../shared/DESIGN.md` for the whole design.

pub mod client;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod hash;
pub mod net;
pub mod node;
pub mod peer;
pub mod resp;
pub mod ring;
pub mod server;
pub mod snapshot;
pub mod storage;
pub mod store;
pub mod version;
pub mod wal;

pub use storage::{Engine, EngineStats, Entry};
pub use store::{Store, StoreConfig, StoreError};
pub use version::{NodeId, Timestamp, Version};
