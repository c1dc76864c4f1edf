//! Active anti-entropy: replicas converge without reads, and a node that
//! lost its data is refilled, after Riak's TictacAAE.
//!
//! The node keeps a [`TicTacTree`] per ring partition it replicates (a
//! partition is one replica set: every key in it has the same preference
//! list), updated on every entry it applies (client writes, replication,
//! read repair, hint delivery, anti-entropy itself) from the key's old and
//! new versions, and built once at start from the disk. On a timer it
//! exchanges one (partition, peer) pair, round-robin over the partitions it
//! replicates and their other replicas that are up:
//!
//! 1. it sends its branch hashes ([`Message::AaeBranches`]);
//! 2. the peer answers with its leaves under the branches that differ
//!    ([`Message::AaeLeaves`]; none: in sync, done); this is done twice,
//!    and only segments that differ both times go on, so writes still in
//!    flight between the two replicas are not taken for differences;
//! 3. it asks for the keys and versions in the segments whose leaves
//!    differ ([`Message::AaeKeysWanted`]), and the peer lists them
//!    ([`Message::AaeKeys`]);
//! 4. it pushes every entry it holds newer than the peer's (or the peer
//!    lacks) as an ordinary replicated write, which the peer applies under
//!    the same clock checks as any other (push only, as Garage: the peer's
//!    own exchanges push the other way).
//!
//! Bounds: at most [`MAX_KEYS_LISTED`] keys listed and [`MAX_REPAIR_BYTES`]
//! pushed per exchange, `--aae-max-mb-per-sec` (32) pushed per second, at
//! most one exchange every 5 ms; once a whole cycle
//! over the pairs found everything in sync, the next cycle waits for the
//! interval (`--aae-interval-ms`), so an idle cluster stays quiet while a
//! node that lost its data is refilled at full speed.

use std::collections::{BTreeMap, HashMap};

use crate::engine::Entry;
use crate::hash::{IdMap, KeyHash};
use crate::node::disk::Disk;
use crate::node::tictac::{segment_of, TicTacTree, LEAVES_PER_BRANCH, SEGMENTS};
use crate::node::Node;
use crate::peer::{Message, SharedWrite};
use crate::ring::Ring;
use crate::version::{NodeId, Version};

/// Branches whose leaves one exchange compares, at most: all of them, so
/// one exchange settles a partition (the leaves of a whole tree are 10 KiB).
pub const MAX_BRANCHES_PER_EXCHANGE: usize = 32;
/// Between two exchanges, at least (ms): at most 200 a second.
const EXCHANGE_GAP: u64 = 5;
/// Keys a peer lists in one answer, at most.
pub const MAX_KEYS_LISTED: usize = 4096;
/// Bytes of entries one exchange pushes, at most.
pub const MAX_REPAIR_BYTES: usize = 4 << 20;
/// An exchange not answered by then is given up (ms).
const EXCHANGE_TIMEOUT: u64 = 2_000;

/// The exchange a node is running, if any.
#[derive(Debug, Clone)]
struct Exchange {
    id: u64,
    partition: u32,
    peer: NodeId,
    started: u64,
    /// The segments asked about, once the leaves were compared.
    segments: Vec<u16>,
    /// The segments the first comparison found differing: the leaves are
    /// fetched twice and only segments that differ both times count, so
    /// writes still in flight between the two replicas are not repaired.
    first: Option<Vec<u16>>,
}

/// Counters and progress, for `INFO aae`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AaeStats {
    /// Exchanges started.
    pub exchanges: u64,
    /// Exchanges that found the two trees equal.
    pub exchanges_in_sync: u64,
    /// Segments found differing.
    pub segments_differing: u64,
    /// Entries pushed to a peer that lacked them or held older ones.
    pub keys_repaired: u64,
    /// Bytes of those entries (keys and values).
    pub bytes_repaired: u64,
    /// Tombstones purged once every replica was known to hold them.
    pub tombstones_purged: u64,
    /// Partitions whose last exchange with every other replica found them
    /// in sync, and partitions this node replicates.
    pub partitions_in_sync: usize,
    pub partitions: usize,
    /// Per peer: when (ms, this node's clock) a full cycle over the
    /// partitions shared with it last ended.
    pub last_cycle_per_peer: Vec<(NodeId, u64)>,
}

/// What the exchanges of one (partition, peer) pair found.
#[derive(Debug, Clone, Copy, Default)]
struct Verdict {
    /// The last exchange found the two trees equal.
    in_sync: bool,
    /// The cluster time (ms) an exchange last found them equal: every
    /// entry this node held then, the peer held too.
    confirmed_at: Option<u64>,
}

/// One peer's cycle over the pairs it shares with this node.
#[derive(Debug, Clone, Copy, Default)]
struct PeerCycle {
    pairs: usize,
    done: usize,
    /// When (ms, monotonic) the last whole cycle ended.
    last: Option<u64>,
}

/// Anti-entropy state of one node.
#[derive(Debug)]
pub(crate) struct Aae {
    enabled: bool,
    interval: u64,
    /// Partitions this node replicates, and their trees.
    trees: IdMap<u32, TicTacTree>,
    /// Every (partition, other replica) pair, in exchange order.
    pairs: Vec<(u32, NodeId)>,
    cursor: usize,
    next_at: u64,
    exchange: Option<Exchange>,
    next_id: u64,
    /// Per (partition, peer) pair: what its exchanges found.
    verdicts: HashMap<(u32, NodeId), Verdict>,
    /// Per peer: how far its cycle over the pairs it shares with this node
    /// has gone.
    cycle: BTreeMap<NodeId, PeerCycle>,
    /// Whether every exchange of the cycle over all pairs under way found
    /// its pair in sync.
    cycle_in_sync: bool,
    /// When tombstones were last considered for purging (ms, monotonic).
    purged_at: u64,
    /// Bytes pushed per second at most, and this second's window: when it
    /// began (ms, monotonic) and what it has pushed.
    max_bytes_per_sec: usize,
    window_start: u64,
    window_bytes: usize,
    stats: AaeStats,
}

impl Aae {
    /// The partitions `me` replicates on `ring` with `n` replicas.
    pub fn new(me: NodeId, ring: &Ring, n: usize, enabled: bool, interval_ms: u64) -> Aae {
        let mut trees = IdMap::default();
        let mut pairs = Vec::new();
        for partition in 0..ring.partition_count() as u32 {
            let replicas = ring.partition_replicas(partition, n);
            if !replicas.contains(&me) {
                continue;
            }
            trees.insert(partition, TicTacTree::default());
            for peer in replicas.into_iter().filter(|&p| p != me) {
                pairs.push((partition, peer));
            }
        }
        let mut cycle: BTreeMap<NodeId, PeerCycle> = BTreeMap::new();
        for &(_, peer) in &pairs {
            cycle.entry(peer).or_default().pairs += 1;
        }
        Aae {
            enabled,
            interval: interval_ms.max(1),
            trees,
            pairs,
            cursor: 0,
            next_at: 0,
            exchange: None,
            next_id: 1,
            verdicts: HashMap::new(),
            cycle,
            cycle_in_sync: true,
            purged_at: 0,
            max_bytes_per_sec: usize::MAX,
            window_start: 0,
            window_bytes: 0,
            stats: AaeStats::default(),
        }
    }

    /// Pushes at most `bytes` a second.
    pub fn limit_bytes_per_sec(&mut self, bytes: usize) {
        self.max_bytes_per_sec = bytes.max(1);
    }

    /// What this second's window may still push (starting a new window
    /// when a second has passed).
    fn budget(&mut self, now: u64) -> usize {
        if now >= self.window_start + 1000 {
            self.window_start = now;
            self.window_bytes = 0;
        }
        self.max_bytes_per_sec.saturating_sub(self.window_bytes)
    }

    /// Empties every tree (a flush dropped entries; the node rebuilds
    /// them from what its disk still holds).
    pub fn clear_trees(&mut self) {
        for tree in self.trees.values_mut() {
            *tree = TicTacTree::default();
        }
    }

    /// A key of `partition` (whose hash is `hash`) went from `old` to
    /// `new` here.
    pub fn record(
        &mut self,
        partition: u32,
        hash: KeyHash,
        old: Option<Version>,
        new: Option<Version>,
    ) {
        if let Some(tree) = self.trees.get_mut(&partition) {
            tree.update(hash, old, new);
        }
    }

    /// A counter of `partition` changed state here (see
    /// [`TicTacTree::update_state`]).
    pub fn record_state(&mut self, partition: u32, hash: KeyHash, old: u64, new: u64) {
        if let Some(tree) = self.trees.get_mut(&partition) {
            tree.update_state(hash, old, new);
        }
    }

    /// Whether anti-entropy runs (off for a node alone): when it does not,
    /// no tree is kept up to date.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// When the next exchange is due, if anti-entropy runs.
    pub fn next_due(&self) -> Option<u64> {
        (self.enabled && !self.pairs.is_empty()).then_some(self.next_at)
    }

    pub fn stats(&self) -> AaeStats {
        let mut stats = self.stats.clone();
        stats.partitions = self.trees.len();
        let mut synced: HashMap<u32, bool> = self.trees.keys().map(|&p| (p, true)).collect();
        for pair @ (partition, _) in &self.pairs {
            if !self.verdicts.get(pair).is_some_and(|v| v.in_sync) {
                synced.insert(*partition, false);
            }
        }
        stats.partitions_in_sync = synced.values().filter(|&&s| s).count();
        stats.last_cycle_per_peer = self
            .cycle
            .iter()
            .filter_map(|(&peer, cycle)| cycle.last.map(|at| (peer, at)))
            .collect();
        stats
    }

    /// Per partition, the cluster time since which every other replica is
    /// known to hold every entry this node held then: the oldest of its
    /// pairs' last in-sync exchanges. A partition with a pair that never
    /// had one is absent.
    fn confirmed_since(&self) -> HashMap<u32, u64> {
        let mut since: HashMap<u32, Option<u64>> = HashMap::new();
        for pair @ (partition, _) in &self.pairs {
            let at = self.verdicts.get(pair).and_then(|v| v.confirmed_at);
            let oldest = since.entry(*partition).or_insert(at);
            *oldest = oldest.zip(at).map(|(a, b)| a.min(b));
        }
        since
            .into_iter()
            .filter_map(|(partition, at)| at.map(|at| (partition, at)))
            .collect()
    }

    /// The tree of `partition`, if this node replicates it.
    pub fn tree(&self, partition: u32) -> Option<&TicTacTree> {
        self.trees.get(&partition)
    }

    /// Ends the running exchange with its verdict; `wall` is the cluster
    /// time an in-sync verdict confirms.
    fn finish(&mut self, now: u64, wall: u64, in_sync: bool) {
        let Some(exchange) = self.exchange.take() else {
            return;
        };
        let verdict = self
            .verdicts
            .entry((exchange.partition, exchange.peer))
            .or_default();
        verdict.in_sync = in_sync;
        if in_sync {
            self.stats.exchanges_in_sync += 1;
            verdict.confirmed_at = Some(wall);
        }
        if let Some(cycle) = self.cycle.get_mut(&exchange.peer) {
            cycle.done += 1;
            if cycle.done >= cycle.pairs {
                cycle.done = 0;
                cycle.last = Some(now);
            }
        }
        self.cycle_in_sync &= in_sync;
        // A whole cycle in sync: rest for the interval. Otherwise go on.
        self.next_at = if self.cursor == 0 && std::mem::replace(&mut self.cycle_in_sync, true) {
            now + self.interval
        } else {
            now + EXCHANGE_GAP
        };
    }
}

impl<D: Disk> Node<D> {
    /// Builds the trees from what the disk holds (once, at start).
    pub(super) fn build_trees(&mut self) {
        let ring = &self.ring;
        let aae = &mut self.aae;
        self.disk.for_each_version(&mut |key, version, state| {
            let hash = KeyHash::of(key);
            let partition = ring.key_partition(hash);
            aae.record(partition, hash, None, Some(version));
            aae.record_state(partition, hash, 0, state);
        });
    }

    /// Starts the next exchange if one is due (from the tick).
    pub(super) fn aae_tick(&mut self) {
        let now = self.now.mono;
        if let Some(running) = &self.aae.exchange {
            if now.saturating_sub(running.started) < EXCHANGE_TIMEOUT {
                return;
            }
            let wall = self.cluster_wall();
            self.aae.finish(now, wall, false);
        }
        if self.aae.next_due().is_none_or(|due| due > now) {
            return;
        }
        if self.aae.budget(now) == 0 {
            // This second's bytes are spent: the next window starts over.
            self.aae.next_at = self.aae.window_start + 1000;
            return;
        }
        let pairs = self.aae.pairs.len();
        for _ in 0..pairs {
            let (partition, peer) = self.aae.pairs[self.aae.cursor];
            self.aae.cursor = (self.aae.cursor + 1) % pairs;
            if !self.detector.is_up(peer) {
                continue;
            }
            let Some(tree) = self.aae.trees.get(&partition) else {
                continue;
            };
            let branches = tree.branches().to_vec();
            let id = self.aae.next_id;
            self.aae.next_id += 1;
            self.aae.exchange = Some(Exchange {
                id,
                partition,
                peer,
                started: now,
                segments: Vec::new(),
                first: None,
            });
            self.aae.stats.exchanges += 1;
            self.send(
                peer,
                Message::AaeBranches {
                    exchange: id,
                    partition,
                    branches,
                },
            );
            return;
        }
        // No peer up: try again after the interval.
        self.aae.next_at = now + self.aae.interval;
    }

    /// The exchange `id` with `from` about `partition`, if it is the one
    /// running.
    fn aae_running(&self, from: NodeId, id: u64, partition: u32) -> bool {
        self.aae
            .exchange
            .as_ref()
            .is_some_and(|e| e.id == id && e.peer == from && e.partition == partition)
    }

    /// Step 2, on the peer: the leaves under the branches that differ.
    pub(super) fn on_aae_branches(
        &mut self,
        from: NodeId,
        exchange: u64,
        partition: u32,
        branches: &[u64],
    ) {
        let leaves = match self.aae.trees.get(&partition) {
            // Not a replica of it here: an empty tree answers.
            None => Vec::new(),
            Some(tree) => tree
                .branches_differing(branches)
                .into_iter()
                .take(MAX_BRANCHES_PER_EXCHANGE)
                .flat_map(|branch| {
                    let first = branch as usize * LEAVES_PER_BRANCH;
                    tree.leaves_of(branch as usize)
                        .iter()
                        .enumerate()
                        .map(move |(i, leaf)| ((first + i) as u16, *leaf))
                })
                .collect(),
        };
        self.send(
            from,
            Message::AaeLeaves {
                exchange,
                partition,
                leaves,
            },
        );
    }

    /// Step 3, on the node that started: the segments that differ.
    pub(super) fn on_aae_leaves(
        &mut self,
        from: NodeId,
        exchange: u64,
        partition: u32,
        leaves: &[(u16, u64)],
    ) {
        if !self.aae_running(from, exchange, partition) {
            return;
        }
        let differing = match self.aae.trees.get(&partition) {
            Some(tree) => tree.segments_differing(leaves),
            None => Vec::new(),
        };
        if differing.is_empty() {
            let wall = self.cluster_wall();
            self.aae.finish(self.now.mono, wall, leaves.is_empty());
            return;
        }
        // Compare twice: the first time, ask for the leaves again.
        let first = self.aae.exchange.as_mut().and_then(|e| e.first.take());
        let Some(first) = first else {
            let branches = self
                .aae
                .trees
                .get(&partition)
                .map(|t| t.branches().to_vec());
            if let (Some(running), Some(branches)) = (self.aae.exchange.as_mut(), branches) {
                let mut differing = differing;
                differing.sort_unstable();
                running.first = Some(differing);
                self.send(
                    from,
                    Message::AaeBranches {
                        exchange,
                        partition,
                        branches,
                    },
                );
            }
            return;
        };
        let segments: Vec<u16> = differing
            .into_iter()
            .filter(|s| first.binary_search(s).is_ok())
            .collect();
        if segments.is_empty() {
            // Only writes in flight differed: nothing to repair, and no
            // confirmation either.
            let wall = self.cluster_wall();
            self.aae.finish(self.now.mono, wall, false);
            return;
        }
        self.aae.stats.segments_differing += segments.len() as u64;
        if let Some(running) = self.aae.exchange.as_mut() {
            running.segments.clone_from(&segments);
        }
        self.send(
            from,
            Message::AaeKeysWanted {
                exchange,
                partition,
                segments,
            },
        );
    }

    /// Step 3, on the peer: its keys and versions in those segments.
    pub(super) fn on_aae_keys_wanted(
        &mut self,
        from: NodeId,
        exchange: u64,
        partition: u32,
        segments: &[u16],
    ) {
        // A replica that holds nothing of the partition (a node refilling)
        // answers without a scan.
        let empty = self.aae.trees.get(&partition).is_none_or(|t| t.keys() == 0);
        let keys = if empty {
            Vec::new()
        } else {
            self.keys_in(partition, segments, MAX_KEYS_LISTED)
        };
        self.send(
            from,
            Message::AaeKeys {
                exchange,
                partition,
                keys: keys.into_iter().map(|(k, v, _)| (k, v)).collect(),
            },
        );
    }

    /// Step 4, on the node that started: push what it holds newer.
    pub(super) fn on_aae_keys(
        &mut self,
        from: NodeId,
        exchange: u64,
        partition: u32,
        theirs: Vec<(Vec<u8>, Version)>,
    ) {
        if !self.aae_running(from, exchange, partition) {
            return;
        }
        let segments = self
            .aae
            .exchange
            .as_ref()
            .map(|e| e.segments.clone())
            .unwrap_or_default();
        let theirs: HashMap<Vec<u8>, Version> = theirs.into_iter().collect();
        // Every key this side holds in the segments asked about: those the
        // peer lacks are pushed too.
        let mine = self.keys_in(partition, &segments, usize::MAX);
        let budget = self.aae.budget(self.now.mono).min(MAX_REPAIR_BYTES);
        let mut pushed_bytes = 0;
        for (key, version, state) in mine {
            // A counter the peer holds at the same version may still lack
            // some of the increments this copy has: merging is idempotent,
            // so it goes too.
            let counter = state != 0;
            if theirs
                .get(&key)
                .is_some_and(|&v| v > version || (v == version && !counter))
            {
                continue;
            }
            let Some(entry) = self.disk.get(&key) else {
                continue;
            };
            pushed_bytes += key.len() + entry.value.as_ref().map_or(0, Vec::len);
            self.aae.stats.keys_repaired += 1;
            // Only what is durable here goes out (as read replies do).
            self.defer(
                self.data_barrier,
                crate::node::durability::Deferred::Push {
                    to: from,
                    key,
                    entry,
                },
            );
            if pushed_bytes >= budget {
                break;
            }
        }
        self.aae.window_bytes += pushed_bytes;
        self.aae.stats.bytes_repaired += pushed_bytes as u64;
        let wall = self.cluster_wall();
        self.aae.finish(self.now.mono, wall, false);
    }

    /// Purges the tombstones every replica is known to hold (at most every
    /// tenth of the grace period, between 100 ms and a minute): a tombstone
    /// goes once it is older than the grace period and an in-sync exchange
    /// with every other replica of its partition happened after that. A
    /// replica away longer than the grace period holds the purge back until
    /// it is back and in sync, so it cannot bring the deleted key back.
    pub(super) fn purge_confirmed_tombstones(&mut self) {
        let grace = self.settings.tombstone_grace.as_millis() as u64;
        let every = (grace / 10).clamp(100, 60_000);
        let now = self.now.mono;
        if !self.aae.enabled || now < self.aae.purged_at + every {
            return;
        }
        self.aae.purged_at = now;
        let wall = self.cluster_wall();
        let confirmed_since = self.aae.confirmed_since();
        for (key, version) in self.disk.tombstones() {
            let stamped = version.timestamp.millis();
            let old_enough = stamped.saturating_add(grace) < wall;
            let hash = KeyHash::of(&key);
            let partition = self.ring.key_partition(hash);
            let confirmed = confirmed_since
                .get(&partition)
                .is_some_and(|&since| since > stamped.saturating_add(grace));
            if old_enough && confirmed && self.disk.purge_tombstone(&key, version) {
                self.aae.record(partition, hash, Some(version), None);
                self.aae.stats.tombstones_purged += 1;
            }
        }
    }

    /// Sends `entry` for `key` to `to` as a replicated write whose
    /// acknowledgement nobody waits for.
    pub(super) fn push_repair(&mut self, to: NodeId, key: Vec<u8>, entry: Entry) {
        let request = self.ids.read().repair().into();
        self.send(
            to,
            Message::Replicate {
                request,
                write: SharedWrite::new(&key, entry.as_ref()),
                hint_for: None,
            },
        );
    }

    /// This node's keys and versions in `segments` of `partition`, at most
    /// `limit` of them.
    fn keys_in(
        &self,
        partition: u32,
        segments: &[u16],
        limit: usize,
    ) -> Vec<(Vec<u8>, Version, u64)> {
        let mut wanted = [false; SEGMENTS];
        for &s in segments {
            if let Some(slot) = wanted.get_mut(s as usize) {
                *slot = true;
            }
        }
        let ring = &self.ring;
        let mut keys = Vec::new();
        self.disk.for_each_version(&mut |key, version, state| {
            if keys.len() >= limit {
                return;
            }
            let hash = KeyHash::of(key);
            if wanted[segment_of(hash) as usize] && ring.key_partition(hash) == partition {
                keys.push((key.to_vec(), version, state));
            }
        });
        keys
    }
}
