//! dkv: a Dynamo-style distributed in-memory key-value store.
//!
//! This crate is the core: storage, durability, replication, the command
//! layer, the node server and its protocols. Layers, bottom up (each
//! imports only from the layers below it; `tests/module_graph.rs` fails
//! on a cycle):
//!
//! | module        | owns                                                        |
//! |---------------|-------------------------------------------------------------|
//! | [`hash`]      | MurmurHash3 x64-128 (ring placement) and CRC-32 (records)   |
//! | [`version`]   | `(timestamp, node_id)` versions and their order             |
//! | [`random`]    | kernel random bytes: handshake nonces, generated secrets    |
//! | [`clock`]     | the hybrid logical clock that stamps writes                 |
//! | [`counter`]   | the PN-counter behind `INCR`: slots merged by max            |
//! | [`engine`]    | the sharded Last-Write-Wins map with tombstones             |
//! | [`wal`]       | the write-ahead log: CRC'd records, group commit, recovery  |
//! | [`snapshot`]  | whole-engine snapshots that let the WAL be compacted        |
//! | [`store`]     | a node's durable store: engine + WAL + snapshots            |
//! | [`ring`]      | the consistent-hash ring: tokens, preference lists, walks   |
//! | [`config`]    | `cluster.conf`                                              |
//! | [`peer`]      | the peer wire protocol: handshake and framed messages       |
//! | [`resp`]      | the Redis protocol (RESP2/3) parser and reply writer        |
//! | [`node`]      | the sans-IO replication core: quorums, hints, repair, failure detection |
//! | [`disk`]      | the node's real disk: the store plus a durable hint log     |
//! | [`command`]   | the command layer: parse, run (data through the node), render |
//! | [`net`]       | all socket IO: the reactor, client connections, peer links  |
//! | [`server`]    | start-up: [`server::start`] wires a node and runs it        |
//! | [`client`]    | a blocking Rust client: failover, per-request consistency   |
//! | `allocator`   | the allocator `dkv-node` links (feature `mimalloc`)         |
//!
//! A SET, from socket to disk: the reactor reads bytes ([`net`]), the
//! RESP parser frames a request ([`resp`]), the command layer parses it
//! into `Command::Set` and hands the node an `Op::Put` ([`command`]), the
//! node stamps a version and applies it through its [`node::Disk`]
//! ([`disk`], [`store`], [`wal`]), and once the WAL reports the record
//! durable the node releases the reply, which the command layer renders
//! and the reactor writes. `docs/design.md` tells the whole design.
//!
//! The replication core is driven the same way in production and in the
//! simulator (`tests/simulation.rs`):
//!
//! ```
//! use dkv::node::{Consistency, MemDisk, Node, NodeSettings, Now, Op, OpId, Output};
//! use dkv::NodeId;
//!
//! let mut node = Node::new(NodeSettings::single(NodeId(1)), MemDisk::new(), Now::default());
//! let op = OpId::single(7);
//! let put = Op::Put { key: b"k", value: b"v", expires_at: None };
//! node.handle_request(Now::default(), op, put, Consistency::Quorum, None);
//! assert!(node.poll_output().is_none()); // the write waits for its disk...
//! for durable in node.disk_mut().sync() {
//!     node.handle_durable(Now::default(), durable); // ...which reports it durable
//! }
//! assert!(matches!(node.poll_output(), Some(Output::Reply { op: OpId { call: 7, .. }, result: Ok(_) })));
//! ```

#[cfg(feature = "mimalloc")]
pub mod allocator;
pub mod client;
pub mod clock;
pub mod command;
pub mod config;
pub mod counter;
pub mod disk;
pub mod engine;
pub mod glob;
pub mod hash;
pub mod net;
pub mod node;
pub mod peer;
pub mod random;
pub mod resp;
pub mod ring;
pub mod server;
mod slab;
pub mod snapshot;
pub mod store;
pub mod version;
pub mod wal;

pub use engine::{ApplyOutcome, Engine, EngineStats, Entry, EntryRef, ScanPage};
pub use store::{Store, StoreConfig, StoreError};
pub use version::{NodeId, Timestamp, Version};
