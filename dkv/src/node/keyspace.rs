//! Requests about the whole key space rather than one key: `FLUSHDB`
//! (a flush floor stamped here, sent to every member), and the pages of
//! `SCAN`, `KEYS`, `DBSIZE` and `RANDOMKEY`, gathered from the members
//! one at a time or all at once.
//!
//! A flush is a tombstone at version F over every key: each node records
//! F durably and drops what is at or below it, refuses writes at or below
//! it (their coordinator hears F as the version held and stamps again), and
//! answers a read of a key it lacks with a tombstone at F, so a quorum read
//! that meets one replica that flushed never returns a flushed value. A
//! flush is acknowledged once at most R - 1 members lack it (every quorum
//! read then meets a member that has it); members that were away learn F
//! when their links come up.
//!
//! A `SCAN` cursor is the member's place in the sorted member list (bits
//! 48..56) and the scan position within its keys (bits 0..48); 0 starts
//! and ends. Every member's own copies are scanned in turn, so a key is
//! returned once per replica; a member that is down is passed over, and
//! its keys come from the other replicas of each.

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::Entry;
use crate::glob::Pattern;
use crate::node::durability::Deferred;
use crate::node::{Disk, Node, OpError, OpId, OpReply};
use crate::peer::Message;
use crate::version::{NodeId, Version};

/// Bits of a cursor for the scan position within a member.
const POSITION_BITS: u32 = 48;
const POSITION_MASK: u64 = (1 << POSITION_BITS) - 1;
/// Keys a member is asked for per page when the node gathers them all
/// (`KEYS`, `RANDOMKEY`).
const PAGE: u32 = 1000;
/// Keys a member sends per page at most, whatever it was asked.
const MAX_PAGE: usize = 10_000;

/// A request about the whole key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyspaceOp<'a> {
    /// `FLUSHDB`/`FLUSHALL`.
    Flush,
    /// One `SCAN` page from `cursor`.
    Scan {
        /// The cursor the client sent (0 to start).
        cursor: u64,
        /// Keys wanted, roughly.
        count: usize,
        /// A glob pattern (empty: every key).
        pattern: &'a [u8],
    },
    /// Every key matching a pattern (`KEYS`), each once.
    Keys {
        /// The glob pattern.
        pattern: &'a [u8],
    },
    /// `DBSIZE`: the distinct live keys, estimated from every member's
    /// count of its own copies.
    Count,
    /// `RANDOMKEY`.
    RandomKey,
}

/// A keyspace request in flight.
#[derive(Debug)]
enum Pending {
    Flush {
        op: OpId,
        acked: BTreeSet<NodeId>,
        needed: usize,
    },
    /// A scan waiting for one member's page.
    Page {
        op: OpId,
        member: usize,
        pattern: Vec<u8>,
        count: u32,
        /// `KEYS`: every page of every member, gathered here.
        gather: Option<BTreeSet<Vec<u8>>>,
        /// `RANDOMKEY`: the first key found is the answer; pages left to
        /// try before answering nil.
        random: Option<usize>,
    },
    Count {
        op: OpId,
        waiting: BTreeSet<NodeId>,
        live: u64,
        answered: usize,
    },
}

/// The requests in flight, with their timeouts.
#[derive(Debug, Default)]
pub(super) struct Keyspace {
    next_request: u64,
    pending: BTreeMap<u64, (Pending, u64)>,
}

impl<D: Disk> Node<D> {
    /// Starts a request about the whole key space; its reply comes out of
    /// [`Node::poll_output`] like an operation's.
    pub fn handle_keyspace(&mut self, now: crate::node::Now, op: OpId, request: KeyspaceOp<'_>) {
        self.advance(now);
        match request {
            KeyspaceOp::Flush => self.start_flush(op),
            KeyspaceOp::Scan {
                cursor,
                count,
                pattern,
            } => {
                let member = (cursor >> POSITION_BITS) as usize;
                let count = count.clamp(1, MAX_PAGE) as u32;
                let pending = Pending::Page {
                    op,
                    member,
                    pattern: pattern.to_vec(),
                    count,
                    gather: None,
                    random: None,
                };
                self.ask_page(pending, cursor & POSITION_MASK);
            }
            KeyspaceOp::Keys { pattern } => {
                let pending = Pending::Page {
                    op,
                    member: 0,
                    pattern: pattern.to_vec(),
                    count: PAGE,
                    gather: Some(BTreeSet::new()),
                    random: None,
                };
                self.ask_page(pending, 0);
            }
            KeyspaceOp::RandomKey => {
                let members = self.settings.members.len();
                let random = self.random_u64();
                let pending = Pending::Page {
                    op,
                    member: (random >> POSITION_BITS) as usize % members.max(1),
                    pattern: Vec::new(),
                    count: 1,
                    gather: None,
                    // From a random place in a random member, then each
                    // member from its start, around once.
                    random: Some(members + 1),
                };
                self.ask_page(pending, random & POSITION_MASK);
            }
            KeyspaceOp::Count => {
                let request = self.keyspace_request();
                let mut waiting = BTreeSet::new();
                for &member in &self.settings.members.clone() {
                    if member != self.settings.id && self.detector.is_up(member) {
                        waiting.insert(member);
                        self.send(member, scan_message(request, 0, 0, &[]));
                    }
                }
                let live = self.local_live_keys();
                let pending = Pending::Count {
                    op,
                    waiting,
                    live,
                    answered: 1,
                };
                self.keyspace
                    .pending
                    .insert(request, (pending, self.deadline()));
                self.try_finish_count(request);
            }
        }
    }

    /// A number for `RANDOMKEY`, from this node's time and requests (the
    /// node is deterministic for the simulator).
    fn random_u64(&mut self) -> u64 {
        let request = self.keyspace_request();
        let mut seed = [0u8; 16];
        seed[..8].copy_from_slice(&request.to_le_bytes());
        seed[8..].copy_from_slice(&self.now.wall.to_le_bytes());
        crate::hash::ring_position(&seed)
    }

    fn keyspace_request(&mut self) -> u64 {
        self.keyspace.next_request += 1;
        self.keyspace.next_request
    }

    /// The live keys this node holds (its own copies).
    fn local_live_keys(&self) -> u64 {
        self.disk.stats().engine.keys as u64
    }

    // ------------------------------------------------------------ flush

    fn start_flush(&mut self, op: OpId) {
        let floor = Version::new(self.clock.tick(self.reference_wall()), self.settings.id);
        if let Err(e) = self.raise_floor(floor) {
            self.reply(op, Err(OpError::Storage(e.to_string())));
            return;
        }
        let members = self.settings.members.len();
        let needed = members - (self.settings.read_quorum.min(members) - 1);
        let request = self.keyspace_request();
        let mut acked = BTreeSet::new();
        acked.insert(self.settings.id);
        for &member in &self.settings.members.clone() {
            if member != self.settings.id {
                self.send(member, Message::Flush { request, floor });
            }
        }
        let pending = Pending::Flush { op, acked, needed };
        self.keyspace
            .pending
            .insert(request, (pending, self.deadline()));
        self.try_finish_flush(request);
    }

    /// Records `floor` here (durably, before anything is acknowledged),
    /// drops what it covers and rebuilds the anti-entropy trees.
    fn raise_floor(
        &mut self,
        floor: Version,
    ) -> Result<Option<crate::node::Ticket>, crate::node::DiskError> {
        if floor <= self.floor {
            return Ok(None);
        }
        self.clock.advance_to(floor.timestamp);
        let ticket = self.disk.raise_floor(floor)?;
        self.floor = floor;
        self.aae.clear_trees();
        self.build_trees();
        Ok(ticket)
    }

    /// A peer's flush (or, with request 0, a peer saying what its floor is
    /// as a link comes up).
    pub(super) fn on_flush(&mut self, from: NodeId, request: u64, floor: Version) {
        match self.raise_floor(floor) {
            Ok(ticket) if request != 0 => {
                let message = Message::FlushAck { request };
                self.defer(ticket, Deferred::Send { to: from, message })
            }
            Ok(_) => {}
            Err(e) => log::error!("node {}: flush failed here: {e}", self.settings.id),
        }
    }

    pub(super) fn on_flush_ack(&mut self, from: NodeId, request: u64) {
        if let Some((Pending::Flush { acked, .. }, _)) = self.keyspace.pending.get_mut(&request) {
            acked.insert(from);
        }
        self.try_finish_flush(request);
    }

    fn try_finish_flush(&mut self, request: u64) {
        let done = matches!(
            self.keyspace.pending.get(&request),
            Some((Pending::Flush { acked, needed, .. }, _)) if acked.len() >= *needed
        );
        if done {
            if let Some((Pending::Flush { op, .. }, _)) = self.keyspace.pending.remove(&request) {
                self.reply(op, Ok(OpReply::Flushed));
            }
        }
    }

    /// When a link comes up: the peer learns this node's floor.
    pub(super) fn announce_floor(&mut self, peer: NodeId) {
        let floor = self.floor;
        if floor > Version::default() {
            self.send(peer, Message::Flush { request: 0, floor });
        }
    }

    /// This node's copy of `key` as a read sees it: a key it lacks reads
    /// as a tombstone at the flush floor, once there is one.
    pub(super) fn local_entry(&self, key: &[u8]) -> Option<Entry> {
        let floor = self.floor;
        self.disk
            .get(key)
            .or_else(|| (floor > Version::default()).then(|| Entry::tombstone(floor)))
    }

    // ------------------------------------------------------------ scans

    /// Asks member `member` (of the sorted members) of a page scan for its
    /// page from `from`, passing over members that are down; answers when
    /// none is left.
    fn ask_page(&mut self, mut pending: Pending, mut from: u64) {
        let members = self.sorted_members();
        loop {
            let Pending::Page { member, .. } = &mut pending else {
                return;
            };
            let Some(&target) = members.get(*member) else {
                return self.finish_page(pending, 0);
            };
            if target == self.settings.id {
                // This node's own page: handled in this loop, so a scan of
                // many local pages never recurses.
                let (next, keys) = match &pending {
                    Pending::Page { pattern, count, .. } => self.page(from, *count, pattern),
                    _ => return,
                };
                match self.on_page(pending, next, &keys) {
                    Some((more, at)) => {
                        pending = more;
                        from = at;
                        continue;
                    }
                    None => return,
                }
            }
            if self.detector.is_up(target) {
                let Pending::Page { pattern, count, .. } = &pending else {
                    return;
                };
                let request = self.keyspace_request();
                let message = scan_message(request, from, *count, pattern);
                self.send(target, message);
                self.keyspace
                    .pending
                    .insert(request, (pending, self.deadline()));
                return;
            }
            *member += 1;
            from = 0;
        }
    }

    /// One page of this node's live keys matching `pattern`.
    fn page(&self, from: u64, count: u32, pattern: &[u8]) -> (Option<u64>, Vec<Vec<u8>>) {
        let now = self.expiry_now();
        let glob = (!pattern.is_empty()).then(|| Pattern::new(pattern));
        let glob = glob.filter(|g| !g.matches_everything());
        let page = self.disk.scan(from, count as usize, &mut |key, entry| {
            entry.live_at(now) && glob.as_ref().is_none_or(|g| g.matches(key))
        });
        (page.next, page.keys)
    }

    /// A page came (from this node or a member): answers, or returns the
    /// scan to go on with and where (for [`Node::ask_page`]).
    #[must_use]
    fn on_page(
        &mut self,
        pending: Pending,
        next: Option<u64>,
        keys: &[Vec<u8>],
    ) -> Option<(Pending, u64)> {
        let Pending::Page {
            op,
            member,
            pattern,
            count,
            gather,
            random,
        } = pending
        else {
            return None;
        };
        let members = self.settings.members.len();
        let (next_member, next_from) = match next {
            Some(position) => (member, position),
            None => (member + 1, 0),
        };
        if let Some(tries) = random {
            if let Some(key) = keys.first() {
                let keys = vec![key.clone()];
                self.reply(op, Ok(OpReply::Keys { keys, cursor: 0 }));
                return None;
            }
            if tries == 0 {
                let keys = Vec::new();
                self.reply(op, Ok(OpReply::Keys { keys, cursor: 0 }));
                return None;
            }
            let pending = Pending::Page {
                op,
                member: next_member % members.max(1),
                pattern,
                count,
                gather: None,
                random: Some(tries - 1),
            };
            return Some((pending, next_from));
        }
        match gather {
            Some(mut all) => {
                all.extend(keys.iter().cloned());
                let pending = Pending::Page {
                    op,
                    member: next_member,
                    pattern,
                    count,
                    gather: Some(all),
                    random,
                };
                Some((pending, next_from))
            }
            None if keys.is_empty() && next_member < members => {
                // Nothing here: go on to the next member rather than
                // answer an empty page.
                let pending = Pending::Page {
                    op,
                    member: next_member,
                    pattern,
                    count,
                    gather: None,
                    random,
                };
                Some((pending, next_from))
            }
            None => {
                let cursor = if next_member >= members {
                    0
                } else {
                    ((next_member as u64) << POSITION_BITS) | next_from
                };
                let keys = keys.to_vec();
                self.reply(op, Ok(OpReply::Keys { keys, cursor }));
                None
            }
        }
    }

    /// A scan ran past the last member.
    fn finish_page(&mut self, pending: Pending, _cursor: u64) {
        if let Pending::Page { op, gather, .. } = pending {
            let keys = gather
                .map(|all| all.into_iter().collect())
                .unwrap_or_default();
            self.reply(op, Ok(OpReply::Keys { keys, cursor: 0 }));
        }
    }

    /// A peer asks for a page of this node's keys.
    pub(super) fn on_scan(
        &mut self,
        from: NodeId,
        request: u64,
        start: u64,
        count: u32,
        pattern: &[u8],
    ) {
        let live_keys = self.local_live_keys();
        let (next, keys) = if count == 0 {
            (None, Vec::new())
        } else {
            self.page(start, count.min(MAX_PAGE as u32), pattern)
        };
        let reply = Message::ScanReply {
            request,
            next,
            live_keys,
            keys,
        };
        self.defer(
            self.data_barrier,
            Deferred::Send {
                to: from,
                message: reply,
            },
        );
    }

    pub(super) fn on_scan_reply(
        &mut self,
        from: NodeId,
        request: u64,
        next: Option<u64>,
        live_keys: u64,
        keys: Vec<Vec<u8>>,
    ) {
        let Some((pending, _)) = self.keyspace.pending.remove(&request) else {
            return;
        };
        match pending {
            Pending::Count {
                op,
                mut waiting,
                live,
                answered,
            } => {
                let counted = waiting.remove(&from);
                let pending = Pending::Count {
                    op,
                    waiting,
                    live: live + if counted { live_keys } else { 0 },
                    answered: answered + usize::from(counted),
                };
                self.keyspace
                    .pending
                    .insert(request, (pending, self.deadline()));
                self.try_finish_count(request);
            }
            page @ Pending::Page { .. } => {
                if let Some((more, at)) = self.on_page(page, next, &keys) {
                    self.ask_page(more, at);
                }
            }
            other => {
                self.keyspace
                    .pending
                    .insert(request, (other, self.deadline()));
            }
        }
    }

    /// A page or count request could not be sent to `to`: as if it had
    /// timed out, at once.
    pub(super) fn on_scan_undeliverable(&mut self, to: NodeId, request: u64) {
        match self.keyspace.pending.get_mut(&request) {
            Some((Pending::Count { waiting, .. }, _)) => {
                waiting.remove(&to);
                self.try_finish_count(request);
            }
            Some((Pending::Page { .. }, expires)) => {
                *expires = self.now.mono;
                self.expire_keyspace();
            }
            _ => {}
        }
    }

    fn try_finish_count(&mut self, request: u64) {
        let done = matches!(
            self.keyspace.pending.get(&request),
            Some((Pending::Count { waiting, .. }, _)) if waiting.is_empty()
        );
        if done {
            if let Some((pending, _)) = self.keyspace.pending.remove(&request) {
                self.finish_count(pending);
            }
        }
    }

    /// `DBSIZE`: the copies counted, scaled to every member, divided by N.
    fn finish_count(&mut self, pending: Pending) {
        if let Pending::Count {
            op, live, answered, ..
        } = pending
        {
            let members = self.settings.members.len() as u64;
            let n = self.settings.replication_factor.max(1) as u64;
            let answered = answered.max(1) as u64;
            let estimate = (live * members + answered * n / 2) / (answered * n);
            self.reply(op, Ok(OpReply::Count(estimate)));
        }
    }

    /// Keyspace requests whose time is up: a flush without enough
    /// acknowledgements fails, a count answers with what it has, a page
    /// whose member went silent moves on to the next member.
    pub(super) fn expire_keyspace(&mut self) {
        let now = self.now.mono;
        let due: Vec<u64> = self
            .keyspace
            .pending
            .iter()
            .filter(|(_, (_, expires))| *expires <= now)
            .map(|(&request, _)| request)
            .collect();
        for request in due {
            let Some((pending, _)) = self.keyspace.pending.remove(&request) else {
                continue;
            };
            match pending {
                Pending::Flush { op, acked, needed } => {
                    let error = OpError::Unavailable {
                        answered: acked.len(),
                        required: needed,
                        replicas: self.settings.members.len(),
                        reachable: self.reachable_members(),
                    };
                    self.reply(op, Err(error));
                }
                count @ Pending::Count { .. } => self.finish_count(count),
                Pending::Page {
                    op,
                    member,
                    pattern,
                    count,
                    gather,
                    random,
                } => {
                    let next = Pending::Page {
                        op,
                        member: member + 1,
                        pattern,
                        count,
                        gather,
                        random: random.map(|tries| tries.saturating_sub(1)),
                    };
                    self.ask_page(next, 0);
                }
            }
        }
    }

    /// The earliest keyspace timeout, if any is pending.
    pub(super) fn keyspace_timeout(&self) -> Option<u64> {
        self.keyspace.pending.values().map(|(_, at)| *at).min()
    }

    fn reachable_members(&self) -> usize {
        self.settings
            .members
            .iter()
            .filter(|&&m| m == self.settings.id || self.detector.is_up(m))
            .count()
    }

    fn sorted_members(&self) -> Vec<NodeId> {
        let mut members = self.settings.members.clone();
        members.sort();
        members
    }
}

fn scan_message(request: u64, from: u64, count: u32, pattern: &[u8]) -> Message {
    Message::Scan {
        request,
        from,
        count,
        pattern: pattern.to_vec(),
    }
}
