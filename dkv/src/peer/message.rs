//! The messages peers exchange: the handshake ([`Hello`], [`HelloReply`])
//! and, after it, [`Envelope`]s carrying a [`Message`] with the sender's id
//! and hybrid clock. Plain data; [`super::codec`] puts them on the wire.

use std::fmt;

use crate::engine::Entry;
use crate::version::{NodeId, Timestamp, Version};

/// The version of the peer protocol this build speaks. The first two bytes
/// of every [`Hello`] payload carry it, in every version.
pub const PROTOCOL_VERSION: u16 = 2;

/// Matches a reply to its request; unique per sender while the request is
/// outstanding (the coordinator picks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The first frame on a peer connection, sent by the node that connected.
#[derive(Clone, PartialEq, Eq)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub protocol_version: u16,
    /// `cluster_name` from the sender's `cluster.conf`.
    pub cluster_name: String,
    /// The sender's id.
    pub node_id: NodeId,
    /// [`super::settings_digest`] of the sender's `cluster.conf`.
    pub settings_digest: u64,
    /// The shared secret (`--cluster-secret`); empty when none is set.
    pub secret: Vec<u8>,
}

impl fmt::Debug for Hello {
    /// Shows the secret's length, never its bytes, so a logged `Hello`
    /// gives nothing away.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hello")
            .field("protocol_version", &self.protocol_version)
            .field("cluster_name", &self.cluster_name)
            .field("node_id", &self.node_id)
            .field(
                "settings_digest",
                &format_args!("{:#018x}", self.settings_digest),
            )
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .finish()
    }
}

/// The accepting node's answer to a [`Hello`]. After `Refused` it closes the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloReply {
    /// The handshake passed; envelopes may flow both ways.
    Welcome {
        /// The accepting node's id.
        node_id: NodeId,
    },
    /// The handshake failed, for this reason (for the peer's log).
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
        /// The key.
        key: Vec<u8>,
        /// The write.
        entry: Entry,
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
        /// The key.
        key: Vec<u8>,
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
}

impl Message {
    /// The request this message belongs to, if any.
    pub fn request(&self) -> Option<RequestId> {
        match self {
            Message::Replicate { request, .. }
            | Message::ReplicateAck { request, .. }
            | Message::Read { request, .. }
            | Message::ReadReply { request, .. } => Some(*request),
            Message::Heartbeat => None,
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
        }
    }
}
