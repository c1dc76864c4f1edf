//! The messages peers exchange: the handshake ([`Hello`], [`Proof`],
//! [`HelloReply`])
//! and, after it, [`Envelope`]s carrying a [`Message`] with the sender's id
//! and hybrid clock. Plain data; [`super::codec`] puts them on the wire.

use std::fmt;
use std::sync::Arc;

use crate::counter::{CounterError, Delta};
use crate::engine::Entry;
use crate::peer::shared_write::SharedWrite;
use crate::version::{NodeId, Timestamp, Version};

/// The version of the peer protocol this build speaks. The first two bytes
/// of every [`Hello`] payload carry it, in every version.
pub const PROTOCOL_VERSION: u16 = 6;
/// Bytes of a handshake nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes of a handshake proof (an HMAC-SHA256 tag).
pub const PROOF_LEN: usize = 32;

/// Matches a reply to its request; unique per sender while the request is
/// outstanding (the coordinator picks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The first frame on a peer connection, sent by the node that connected
/// (the dialler). It carries nothing secret and nothing about the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub protocol_version: u16,
    /// The id the dialler claims.
    pub node_id: NodeId,
    /// The id of the node it means to reach.
    pub to: NodeId,
    /// The dialler's fresh random nonce.
    pub nonce: [u8; NONCE_LEN],
}

/// The dialler's answer to a [`HelloReply::Challenge`]: it proves that it
/// knows the cluster secret without sending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// [`super::dialler_proof`] over the handshake.
    pub proof: [u8; PROOF_LEN],
}

/// What the accepting node (the listener) sends during the handshake: a
/// challenge answering the [`Hello`], then a welcome answering the
/// [`Proof`]; or a refusal at either step, after which it closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloReply {
    /// The listener's fresh nonce; the dialler must answer with a
    /// [`Proof`].
    Challenge {
        /// The listener's random nonce.
        nonce: [u8; NONCE_LEN],
    },
    /// The dialler proved itself; the listener proves itself back and
    /// names its settings, which the dialler compares with its own.
    Welcome {
        /// The accepting node's id.
        node_id: NodeId,
        /// [`super::listener_proof`] over the handshake and these settings.
        proof: [u8; PROOF_LEN],
        /// [`super::settings_digest`] of the listener's `cluster.conf`.
        settings_digest: u64,
        /// The listener's `cluster_name`.
        cluster_name: String,
    },
    /// The handshake failed. Before the dialler has proven itself the
    /// reason says nothing about the cluster.
    Refused {
        /// Why, in words.
        reason: String,
    },
}

/// Every frame after the handshake: a message with its sender and the
/// sender's hybrid-logical-clock reading, so clocks move together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sender.
    pub from: NodeId,
    /// The sender's clock when it sent this.
    pub clock: Timestamp,
    /// The message.
    pub message: Message,
}

/// What peers say to each other once connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Store this write (a value or a tombstone) and acknowledge it.
    Replicate {
        /// Echoed in the [`Message::ReplicateAck`].
        request: RequestId,
        /// The key and the entry written to it.
        write: SharedWrite,
        /// When set, the receiver stands in for this owner (sloppy quorum):
        /// it keeps the write as a hint and hands it to the owner later.
        hint_for: Option<NodeId>,
    },
    /// The answer to a [`Message::Replicate`].
    ReplicateAck {
        /// The request answered.
        request: RequestId,
        /// Whether the write was stored (durably, per the receiver's fsync
        /// mode).
        ok: bool,
        /// Whether the receiver held a live value for the key before this
        /// write (so `DEL` can count the keys it removed).
        was_live: bool,
        /// The version the receiver held for the key before this write, if
        /// any. A coordinator counts a copy towards W only when its write
        /// is at least as new: a replica that held something newer was not
        /// superseded, and the write must be stamped again.
        held: Option<Version>,
    },
    /// Send back this node's own copy of `key`.
    Read {
        /// Echoed in the [`Message::ReadReply`].
        request: RequestId,
        /// The key, shared with the coordinator's record of the read.
        key: Arc<[u8]>,
    },
    /// The answer to a [`Message::Read`].
    ReadReply {
        /// The request answered.
        request: RequestId,
        /// The replica's entry (a tombstone included), or `None` when it has
        /// none.
        entry: Option<Entry>,
    },
    /// Liveness only; the envelope's clock still counts.
    Heartbeat,
    /// Anti-entropy, from the node that starts an exchange: the branch
    /// hashes of its tree for one ring partition.
    AaeBranches {
        /// Echoed by the answers.
        exchange: u64,
        /// The partition (index of its token on the ring).
        partition: u32,
        /// The tree's branch hashes, in order.
        branches: Vec<u64>,
    },
    /// The answer to [`Message::AaeBranches`]: the receiver's leaves under
    /// the branches that differ (none: the trees agree).
    AaeLeaves {
        /// The exchange answered.
        exchange: u64,
        /// The partition.
        partition: u32,
        /// `(segment, leaf hash)` pairs.
        leaves: Vec<(u16, u64)>,
    },
    /// The starting node asks for the keys and versions in these segments.
    AaeKeysWanted {
        /// The exchange.
        exchange: u64,
        /// The partition.
        partition: u32,
        /// The segments whose leaves differ.
        segments: Vec<u16>,
    },
    /// The answer to [`Message::AaeKeysWanted`]: every key the receiver
    /// holds in those segments, tombstones included, with its version.
    /// The starting node then pushes what it holds newer as ordinary
    /// writes ([`Message::Replicate`]).
    AaeKeys {
        /// The exchange answered.
        exchange: u64,
        /// The partition.
        partition: u32,
        /// `(key, version)` pairs.
        keys: Vec<(Vec<u8>, Version)>,
    },
    /// `FLUSHDB`: drop every entry at or below `floor` (and refuse writes
    /// at or below it from now on), then acknowledge. Also sent, with
    /// request 0 and no acknowledgement wanted, whenever a link comes up,
    /// so a node that was away learns of a flush it missed.
    Flush {
        /// Echoed in the [`Message::FlushAck`]; 0 asks for none.
        request: u64,
        /// The flush's version.
        floor: Version,
    },
    /// The answer to a [`Message::Flush`]: the floor is durable here.
    FlushAck {
        /// The request answered.
        request: u64,
    },
    /// `SCAN`, `KEYS`, `DBSIZE`, `RANDOMKEY`: one page of the receiver's
    /// own live keys.
    Scan {
        /// Echoed in the [`Message::ScanReply`].
        request: u64,
        /// The scan position to start from.
        from: u64,
        /// Keys wanted at most (0: none, only the count of live keys).
        count: u32,
        /// A glob pattern the keys must match (empty: every key).
        pattern: Vec<u8>,
    },
    /// The answer to a [`Message::Scan`].
    ScanReply {
        /// The request answered.
        request: u64,
        /// Where the next page starts; `None` when this was the last.
        next: Option<u64>,
        /// How many live keys the receiver holds (its own copies).
        live_keys: u64,
        /// The page's keys.
        keys: Vec<Vec<u8>>,
    },
    /// `INCR` and its kin, from a coordinator that holds no copy of the
    /// key to a replica that does: add `delta` to the counter in this
    /// node's own slot, durably, and send back the new state.
    CounterAdd {
        /// Echoed in the [`Message::CounterAdded`].
        request: RequestId,
        /// The key.
        key: Vec<u8>,
        /// The increment.
        delta: Delta,
    },
    /// The answer to a [`Message::CounterAdd`]: the counter's new state,
    /// durable on the sender (the coordinator replicates it), or why the
    /// add was refused.
    CounterAdded {
        /// The request answered.
        request: RequestId,
        /// The new entry, or the refusal.
        result: Result<Entry, CounterError>,
    },
}

impl Message {
    /// The request this message belongs to, if any.
    pub fn request(&self) -> Option<RequestId> {
        match self {
            Message::Replicate { request, .. }
            | Message::ReplicateAck { request, .. }
            | Message::Read { request, .. }
            | Message::ReadReply { request, .. }
            | Message::CounterAdd { request, .. }
            | Message::CounterAdded { request, .. } => Some(*request),
            Message::Heartbeat
            | Message::Flush { .. }
            | Message::FlushAck { .. }
            | Message::Scan { .. }
            | Message::ScanReply { .. }
            | Message::AaeBranches { .. }
            | Message::AaeLeaves { .. }
            | Message::AaeKeysWanted { .. }
            | Message::AaeKeys { .. } => None,
        }
    }

    /// A short name for logs: `"replicate"`, `"read-reply"`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Message::Replicate { .. } => "replicate",
            Message::ReplicateAck { .. } => "replicate-ack",
            Message::Read { .. } => "read",
            Message::ReadReply { .. } => "read-reply",
            Message::Heartbeat => "heartbeat",
            Message::AaeBranches { .. } => "aae-branches",
            Message::AaeLeaves { .. } => "aae-leaves",
            Message::AaeKeysWanted { .. } => "aae-keys-wanted",
            Message::AaeKeys { .. } => "aae-keys",
            Message::Flush { .. } => "flush",
            Message::FlushAck { .. } => "flush-ack",
            Message::Scan { .. } => "scan",
            Message::ScanReply { .. } => "scan-reply",
            Message::CounterAdd { .. } => "counter-add",
            Message::CounterAdded { .. } => "counter-added",
        }
    }
}
