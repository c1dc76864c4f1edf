//! The node's vocabulary: time, consistency levels, the operations a
//! runtime asks the node to coordinate and their results, outputs,
//! configuration and counters.

use std::time::Duration;

use crate::counter::{CounterError, Delta};
use crate::peer::Envelope;
use crate::version::{NodeId, Version};

/// The time an input happens at, as the runtime (or the simulator) sees
/// it: a monotonic clock for timers and the wall clock for versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// Monotonic milliseconds (any origin); never goes backwards.
    pub mono: u64,
    /// Wall-clock milliseconds since the Unix epoch (may be skewed).
    pub wall: u64,
}

/// How many replicas a request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// One replica.
    One,
    /// The configured quorum: W for writes, R for reads.
    #[default]
    Quorum,
    /// All N replicas.
    All,
    /// Exactly this many (1..=N).
    Count(usize),
}

impl Consistency {
    /// Replicas required, given the configured quorum and N; `None` when a
    /// count is out of range.
    pub fn required(self, quorum: usize, n: usize) -> Option<usize> {
        match self {
            Consistency::One => Some(1),
            Consistency::Quorum => Some(quorum),
            Consistency::All => Some(n),
            Consistency::Count(k) if (1..=n).contains(&k) => Some(k),
            Consistency::Count(_) => None,
        }
    }

    /// Parses `ONE`, `QUORUM`, `ALL` or a number (case-insensitive).
    pub fn parse(text: &str) -> Option<Consistency> {
        match text.to_ascii_uppercase().as_str() {
            "ONE" => Some(Consistency::One),
            "QUORUM" => Some(Consistency::Quorum),
            "ALL" => Some(Consistency::All),
            number => number
                .parse()
                .ok()
                .filter(|&k| k > 0)
                .map(Consistency::Count),
        }
    }

    /// The name [`Consistency::parse`] reads back: `ONE`, `QUORUM`, `ALL`
    /// or the number.
    pub fn name(self) -> String {
        match self {
            Consistency::One => "ONE".into(),
            Consistency::Quorum => "QUORUM".into(),
            Consistency::All => "ALL".into(),
            Consistency::Count(k) => k.to_string(),
        }
    }
}

/// The runtime's handle for an operation it asks the node to coordinate,
/// echoed in the operation's reply. The node never looks inside: `call`
/// and `part` let a runtime split one client command over several keys
/// and find each part's place again without a lookup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId {
    /// The runtime's command.
    pub call: u64,
    /// Which of the command's operations.
    pub part: u32,
}

impl OpId {
    /// An operation that is the whole of its command.
    pub fn single(call: u64) -> OpId {
        OpId { call, part: 0 }
    }
}

/// An operation a runtime asks this node to coordinate. Keys and values
/// are borrowed: the node copies only what it must keep or send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// Read a key.
    Get {
        /// The key.
        key: &'a [u8],
    },
    /// Write a value.
    Put {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
        /// When it expires (unix ms), if it does.
        expires_at: Option<u64>,
    },
    /// Delete (write a tombstone).
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// Add to the counter at the key (`INCR` and its kin): no increment
    /// acknowledged is lost, whichever coordinators they went through.
    Add {
        /// The key.
        key: &'a [u8],
        /// The increment.
        delta: Delta,
    },
}

impl<'a> Op<'a> {
    /// The key the operation is about.
    pub fn key(&self) -> &'a [u8] {
        match *self {
            Op::Get { key } | Op::Put { key, .. } | Op::Delete { key } | Op::Add { key, .. } => key,
        }
    }
}

/// A successful operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpReply {
    /// A read's newest answer: the value (`None`: missing, deleted or
    /// expired) and the version it had (`None`: no replica had the key at
    /// all).
    Value {
        /// The value, if live.
        value: Option<Vec<u8>>,
        /// Its version, if any replica held the key.
        version: Option<Version>,
        /// When the live value expires (unix ms), if it does.
        expires_at: Option<u64>,
    },
    /// A flush reached enough members (see `keyspace.rs`).
    Flushed,
    /// A page of keys (`SCAN`: `cursor` is where the next page starts, 0
    /// when the scan is done), or all of them (`KEYS`, `RANDOMKEY`).
    Keys {
        /// The keys.
        keys: Vec<Vec<u8>>,
        /// The next cursor; 0 when done.
        cursor: u64,
    },
    /// How many distinct live keys the cluster holds, estimated.
    Count(u64),
    /// A write reached its quorum at `version`. `existed` says whether an
    /// acknowledging replica held a live value before (what `DEL` counts).
    Written {
        /// A live value was overwritten or deleted.
        existed: bool,
        /// The write's version.
        version: Version,
    },
    /// An add reached its quorum: the counter's value after it, as the
    /// replica that added saw it, rendered (`float`: by `INCRBYFLOAT`).
    Counted {
        /// The value, in decimal.
        value: Vec<u8>,
        /// A float counter's.
        float: bool,
    },
}

/// A failed operation, with what the client needs to know. Its `Display`
/// is the RESP error line (code first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// An add to a counter was refused (not a number, overflow, ...).
    #[error("{0}")]
    Counter(CounterError),
    /// The quorum was not reached before the timeout.
    #[error("UNAVAILABLE {answered} of {required} required replicas answered ({replicas} replicas, {reachable} reachable)")]
    Unavailable {
        /// Replicas that answered in time.
        answered: usize,
        /// Replicas the consistency level required.
        required: usize,
        /// N.
        replicas: usize,
        /// Replicas believed up when the request started.
        reachable: usize,
    },
    /// A consistency count outside 1..=N.
    #[error("ERR consistency level {0} is out of range for {1} replicas")]
    BadConsistency(usize, usize),
    /// Local storage failed.
    #[error("IOERR {0}")]
    Storage(String),
    /// This node's clock is ahead of most of its peers' by more than the
    /// drift limit: its stamps would be refused, so it writes nothing.
    #[error("CLOCKSKEW this node's clock is {ahead_ms} ms ahead of most of its peers' (limit {limit_ms} ms); it takes no writes until they agree")]
    ClockAhead {
        /// By how much.
        ahead_ms: u64,
        /// `max_clock_drift`.
        limit_ms: u64,
    },
    /// This node has not heard enough of its peers' clocks since it
    /// started (or since they came back) to stamp a write it can trust.
    #[error("UNAVAILABLE this node has heard the clocks of {heard} of its {peers} reachable peers, not yet a majority; try again shortly")]
    ClockUnknown {
        /// Peers heard from recently.
        heard: usize,
        /// Peers believed up.
        peers: usize,
    },
    /// The clocks this node knows split evenly between two far apart (a
    /// member unreachable since it started, say): it cannot tell the
    /// agreed time, so it judges no expiry.
    #[error("UNAVAILABLE the clocks this node has heard disagree by {spread_ms} ms with no majority; it cannot judge an expiry until it hears more of them")]
    ClockDisputed {
        /// How far apart the two middle clocks are.
        spread_ms: u64,
    },
    /// The client's deadline had passed when the node read the request
    /// (after a pause, say): nothing was applied.
    #[error("TIMEOUT the request's deadline passed before it was read; nothing was applied")]
    DeadlinePassed,
    /// A quorum read's replicas disagreed and the newest version it found
    /// did not reach enough of them before the timeout; answering anyway
    /// could let a later quorum read see an older value.
    #[error("UNAVAILABLE the newest version is on {holding} of the {needed} replicas a quorum read must leave it on before answering")]
    RepairIncomplete {
        /// Replicas known to hold the newest version.
        holding: usize,
        /// N - R + 1.
        needed: usize,
    },
}

/// The result of an operation.
pub type OpResult = Result<OpReply, OpError>;

/// Work for the runtime, drained with [`super::Node::poll_output`].
#[derive(Debug, Clone, PartialEq)]
#[must_use = "outputs carry messages and replies that must be delivered"]
pub enum Output {
    /// Send a message to a peer.
    Send {
        /// The peer.
        to: NodeId,
        /// The message.
        envelope: Envelope,
    },
    /// Complete an operation.
    Reply {
        /// The runtime's handle for it.
        op: OpId,
        /// How it went.
        result: OpResult,
    },
}

/// The replication settings of one node.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// This node.
    pub id: NodeId,
    /// Every member, this node included.
    pub members: Vec<NodeId>,
    /// N.
    pub replication_factor: usize,
    /// W.
    pub write_quorum: usize,
    /// R.
    pub read_quorum: usize,
    /// Tokens per node.
    pub virtual_nodes: usize,
    /// A request that has not reached its quorum by then fails.
    pub request_timeout: Duration,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// A peer silent for this long is down.
    pub failure_timeout: Duration,
    /// Hints kept per target at most; the oldest go first.
    pub max_hints_per_target: usize,
    /// Bytes of hints kept per target at most (the oldest are dropped).
    pub max_hint_bytes_per_target: usize,
    /// Hints older than this are dropped (read repair catches up).
    pub max_hint_age: Duration,
    /// Hints sent to a recovered target at once.
    pub hint_batch: usize,
    /// Whether active anti-entropy runs.
    pub aae_enabled: bool,
    /// Bytes of entries anti-entropy may push per second, at most.
    pub aae_max_bytes_per_sec: usize,
    /// A tombstone is purged only once it is this old and anti-entropy has
    /// since found every replica of its key holding it (never by age
    /// alone). At least the longest a write can be delivered late (the hint
    /// age): a stale value arriving after the purge would come back.
    pub tombstone_grace: Duration,
    /// How long anti-entropy waits after an exchange that found a pair in
    /// sync (one that repaired something is followed at once).
    pub aae_interval: Duration,
    /// Timestamps further ahead of the wall clock are refused.
    pub max_clock_drift: Duration,
    /// A read asks only the replicas it must hear; one that has not
    /// answered after this long asks the other reachable replicas too.
    pub read_hedge_after: Duration,
}

impl NodeSettings {
    /// Defaults for `id` among `members` with N, W, R.
    pub fn new(id: NodeId, members: Vec<NodeId>, n: usize, w: usize, r: usize) -> NodeSettings {
        NodeSettings {
            id,
            members,
            replication_factor: n,
            write_quorum: w,
            read_quorum: r,
            virtual_nodes: 128,
            request_timeout: Duration::from_millis(2000),
            read_hedge_after: Duration::from_millis(20),
            heartbeat_interval: Duration::from_millis(250),
            failure_timeout: Duration::from_millis(1500),
            max_hints_per_target: 1_000_000,
            max_hint_bytes_per_target: 256 << 20,
            max_hint_age: Duration::from_secs(3 * 3600),
            hint_batch: 256,
            aae_enabled: true,
            aae_max_bytes_per_sec: 32 << 20,
            tombstone_grace: Duration::from_secs(10 * 24 * 3600),
            aae_interval: Duration::from_millis(200),
            max_clock_drift: crate::clock::DEFAULT_MAX_DRIFT,
        }
    }

    /// A node alone: one member, N = W = R = 1.
    pub fn single(id: NodeId) -> NodeSettings {
        NodeSettings::new(id, vec![id], 1, 1, 1)
    }
}

/// Counters for INFO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Replicas sent the newest version after a read found them stale.
    pub read_repairs: u64,
    /// Spare replicas asked because a read was slow to answer.
    pub read_hedges: u64,
    /// Requests that failed for want of replicas.
    pub quorum_failures: u64,
    /// Hints delivered to their owner.
    pub hints_delivered: u64,
    /// Hints dropped by the count or age limit.
    pub hints_dropped: u64,
    /// Messages or writes refused for a runaway clock.
    pub clock_refusals: u64,
    /// Writes stamped again because a replica held a newer version.
    pub restamps: u64,
    /// Writes this node refused to coordinate because its clock is ahead.
    pub clock_ahead_refusals: u64,
    /// Requests refused because their deadline had passed.
    pub deadlines_passed: u64,
}
