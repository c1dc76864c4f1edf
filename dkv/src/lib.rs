//! dkv: a Dynamo-style distributed in-memory key-value store.
//!
//! This crate is the core: storage, durability, replication, the node
//! server and its protocols. Layers, bottom up:
//!
//! | module        | owns                                                        |
//! |---------------|-------------------------------------------------------------|
//! | [`hash`]      | MurmurHash3 x64-128 (ring placement) and CRC-32 (records)   |
//! | [`version`]   | `(timestamp, node_id)` versions and their order             |
//! | [`clock`]     | the hybrid logical clock that stamps writes                 |
//! | [`storage`]   | the sharded Last-Write-Wins map with tombstones             |
//! | [`wal`]       | the write-ahead log: CRC'd records, group commit, recovery  |
//! | [`snapshot`]  | whole-engine snapshots that let the WAL be compacted        |
//! | [`store`]     | a node's durable store: engine + WAL + snapshots            |
//! | [`ring`]      | the consistent-hash ring: tokens, preference lists, walks   |
//! | [`peer`]      | the peer wire protocol: handshake and framed messages       |
//! | [`node`]      | the sans-IO replication core: quorums, hints, repair, failure detection |
//! | [`cluster`]   | the node's real storage: the store plus a durable hint log  |
//! | [`resp`]      | the Redis protocol (RESP2) parser and reply writer          |
//! | [`net`]       | all socket IO: the mio reactor, workers, peer links         |
//! | [`server`]    | commands, sessions, INFO, and `Node::start` to run a node   |
//! | [`config`]    | `cluster.conf`                                              |
//! | [`client`]    | a blocking Rust client: failover, per-request consistency   |
//!
//! The replication core is driven the same way in production and in the
//! simulator (`tests/simulation.rs`):
//!
//! ```
//! use dkv::node::{ClientId, ClientOp, Consistency, MemDisk, Node, NodeSettings, Now, Output};
//! use dkv::NodeId;
//!
//! let settings = NodeSettings::new(NodeId(1), vec![NodeId(1)], 1, 1, 1);
//! let mut node = Node::new(settings, MemDisk::new(), Now::default());
//! let op = ClientOp::Put { key: b"k".to_vec(), value: b"v".to_vec() };
//! node.handle_client(Now::default(), ClientId(7), op, Consistency::Quorum);
//! node.disk_mut().sync(); // the disk reports the write durable...
//! node.handle_tick(Now::default()); // ...and the node acknowledges it
//! assert!(matches!(node.poll_output(), Some(Output::Reply { client: ClientId(7), result: Ok(_) })));
//! ```
//!
//! See `../shared/DESIGN.md` for the whole design.

pub mod client;
pub mod clock;
pub mod disk;
pub mod config;
pub mod hash;
pub mod net;
pub mod node;
pub mod peer;
pub mod resp;
pub mod ring;
pub mod server;
pub mod snapshot;
pub mod engine;
pub mod store;
pub mod version;
pub mod wal;

pub use engine::{Engine, EngineStats, Entry};
pub use store::{Store, StoreConfig, StoreError};
pub use version::{NodeId, Timestamp, Version};
