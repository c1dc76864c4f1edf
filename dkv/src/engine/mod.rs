//! The in-memory storage engine: a map split into shards, Last-Write-Wins.
//!
//! [`Engine`] owns every key of a node. Keys are spread over a power-of-two
//! number of shards (32 by default), each a hash table behind a
//! `parking_lot::RwLock`, so readers of one shard never block writers of
//! another and a snapshot can copy one shard at a time.
//!
//! Every entry is a value (with an absolute expiry, or none) or a tombstone,
//! with its [`Version`]. [`Engine::apply`]
//! keeps the entry with the larger version, so applying one set of writes in
//! any order, any number of times, yields the same contents: replicas
//! converge and WAL replay, hint delivery and read repair are idempotent.
//! Tombstones are dropped by [`Engine::purge_tombstones`] once older than the
//! grace period, never before, so a late replica cannot resurrect a key.
//!
//! Expiry: an entry whose expiry has passed is, to every reader, a
//! tombstone at the same version ([`EntryRef::live_at`]); the engine has no
//! clock, and its callers judge with theirs. [`Engine::expire_shard`] turns
//! such entries into tombstones (or drops them) to give their memory back;
//! the version stays, so replicas and anti-entropy trees agree whether or
//! not a copy was turned yet.

mod slot;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;
use parking_lot::RwLock;

use crate::version::{Timestamp, Version};
use slot::Slot;
pub use slot::MAX_KEY_LEN;

/// Default number of shards.
pub const DEFAULT_SHARDS: usize = 32;

/// A stored entry as handed to and from the engine: a value or a tombstone,
/// with the version of the write that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The version of the write.
    pub version: Version,
    /// The value; `None` is a tombstone (the key was deleted).
    pub value: Option<Vec<u8>>,
    /// When the value expires, in milliseconds since the Unix epoch; from
    /// then on it reads as a tombstone at the same version. Always `None`
    /// on a tombstone.
    pub expires_at: Option<u64>,
    /// The value is a counter's encoded state ([`crate::counter`]), not
    /// the bytes a client reads: copies at one version merge.
    pub counter: bool,
}

impl Entry {
    /// A live value that does not expire.
    pub fn value(version: Version, value: impl Into<Vec<u8>>) -> Entry {
        Entry {
            version,
            value: Some(value.into()),
            expires_at: None,
            counter: false,
        }
    }

    /// A tombstone.
    pub fn tombstone(version: Version) -> Entry {
        Entry {
            version,
            value: None,
            expires_at: None,
            counter: false,
        }
    }

    /// Whether this entry records a delete.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// The entry, borrowed.
    pub fn as_ref(&self) -> EntryRef<'_> {
        EntryRef {
            version: self.version,
            value: self.value.as_deref(),
            expires_at: self.expires_at,
            counter: self.counter,
        }
    }

    /// Whether a reader at `now_ms` (unix ms) sees a value.
    pub fn live_at(&self, now_ms: u64) -> bool {
        self.as_ref().live_at(now_ms)
    }

    /// The value as a client reads it: a counter's rendered, other values
    /// as stored; `None` for a tombstone.
    pub fn into_readable_value(self) -> Option<Vec<u8>> {
        match self.counter {
            true => self.value.as_deref().map(crate::counter::render_encoded),
            false => self.value,
        }
    }
}

/// An [`Entry`] borrowed: what a write stores, as every layer passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The version of the write.
    pub version: Version,
    /// The value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// When the value expires (unix ms), if it does; ignored on a tombstone.
    pub expires_at: Option<u64>,
    /// The value is a counter's encoded state (see [`Entry::counter`]).
    pub counter: bool,
}

impl<'a> EntryRef<'a> {
    /// A value that does not expire.
    pub fn value(version: Version, value: &'a [u8]) -> EntryRef<'a> {
        EntryRef {
            version,
            value: Some(value),
            expires_at: None,
            counter: false,
        }
    }

    /// A tombstone.
    pub fn tombstone(version: Version) -> EntryRef<'a> {
        EntryRef {
            version,
            value: None,
            expires_at: None,
            counter: false,
        }
    }

    /// A value (`Some`) or a tombstone (`None`), with its expiry.
    pub fn new(version: Version, value: Option<&'a [u8]>, expires_at: Option<u64>) -> Self {
        EntryRef {
            version,
            value,
            expires_at: value.and(expires_at),
            counter: false,
        }
    }

    /// A counter's encoded `state`, with its expiry.
    pub fn counter(version: Version, state: &'a [u8], expires_at: Option<u64>) -> Self {
        EntryRef {
            version,
            value: Some(state),
            expires_at,
            counter: true,
        }
    }

    /// What anti-entropy adds for a counter's state besides its version
    /// (copies of one version may differ in it): a hash of the state, 0
    /// for anything else.
    pub fn state_digest(&self) -> u64 {
        match (self.counter, self.value) {
            (true, Some(state)) => (crate::hash::murmur3_x64_128(state, 0x5747) as u64).max(1),
            _ => 0,
        }
    }

    /// Whether a reader at `now_ms` (unix ms) sees a value: not a tombstone
    /// and not expired (an entry expires at the first millisecond at or
    /// past its expiry, as Redis's keys do).
    pub fn live_at(&self, now_ms: u64) -> bool {
        self.value.is_some() && self.expires_at.is_none_or(|at| now_ms < at)
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Entry {
        Entry {
            version: self.version,
            value: self.value.map(<[u8]>::to_vec),
            expires_at: self.value.and(self.expires_at),
            counter: self.value.is_some() && self.counter,
        }
    }
}

/// Whether a write replaces what a key holds: a newer version does, an
/// older does not; at the same version a counter supersedes a plain value
/// or tombstone (it was built on that very write), and two counters merge.
pub enum Supersedes {
    /// The held entry stays.
    No,
    /// The write replaces it whole.
    Whole,
    /// The merged counter state and expiry, when it differs from the held.
    Merged(Vec<u8>, Option<u64>),
}

pub fn supersedes(held: EntryRef<'_>, write: EntryRef<'_>) -> Supersedes {
    use std::cmp::Ordering::*;
    match write.version.cmp(&held.version) {
        Greater => Supersedes::Whole,
        Less => Supersedes::No,
        Equal => match (held.counter, write.counter, held.value, write.value) {
            (false, true, _, _) => Supersedes::Whole,
            (true, true, Some(ours), Some(theirs)) if ours != theirs => {
                match crate::counter::merge_encoded(ours, theirs) {
                    // No expiry counts as the latest, so both sides pick the
                    // same when (against the rules) they differ.
                    Some(state) if state != ours => {
                        let expiry = |at: Option<u64>| at.unwrap_or(u64::MAX);
                        let later = expiry(held.expires_at).max(expiry(write.expires_at));
                        Supersedes::Merged(state, (later != u64::MAX).then_some(later))
                    }
                    _ => Supersedes::No,
                }
            }
            _ => Supersedes::No,
        },
    }
}

/// What [`Engine::apply_with_outcome`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// The write's version beat the stored one (or the key was new).
    pub won: bool,
    /// The key held a value (not a tombstone) before this write; it may
    /// have expired, see `held_expires_at`.
    pub was_live: bool,
    /// The expiry of the value held before this write, if it had one.
    pub held_expires_at: Option<u64>,
    /// The version the key held before this write, if any.
    pub previous: Option<Version>,
    /// [`EntryRef::state_digest`] of the entry held before, and of the
    /// one held after (they differ when a counter's state changed).
    pub held_state: u64,
    /// See `held_state`.
    pub state: u64,
}

/// Counters the engine reports (INFO, the C ABI, benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Live keys (tombstones not counted).
    pub keys: usize,
    /// Tombstones waiting for their grace period to pass.
    pub tombstones: usize,
    /// Values with an expiry (INFO's `expires`), expired ones not yet
    /// reclaimed included.
    pub expiring: usize,
    /// Bytes held: every entry's allocation plus the hash tables' buckets.
    pub bytes: usize,
}

/// The keyed hash of the engine's tables: SipHash-1-3 under a key drawn
/// at random per engine, as std's `HashMap` uses, so that clients cannot
/// choose keys that collide. Over the key's bytes alone, without the
/// length prefix `Hash for [u8]` adds (a table's keys are whole byte
/// strings, and SipHash takes the length into its last block): a
/// quarter fewer instructions for a 16-byte key.
struct KeyHasher(RandomState);

impl KeyHasher {
    fn of(&self, key: &[u8]) -> u64 {
        let mut hasher = self.0.build_hasher();
        hasher.write(key);
        hasher.finish()
    }
}

/// The sharded LWW map.
pub struct Engine {
    shards: Box<[RwLock<Shard>]>,
    hasher: KeyHasher,
    shard_shift: u32,
}

#[derive(Default)]
struct Shard {
    table: HashTable<Slot>,
    tombstones: usize,
    expiring: usize,
    entry_bytes: usize,
    /// Every key reads as a tombstone at this version unless it holds a
    /// newer one (`FLUSHDB`): writes at or below it are refused. The same
    /// in every shard; kept per shard so a write checks it under the lock
    /// it already holds.
    floor: Version,
}

impl Shard {
    fn find(&self, hash: u64, key: &[u8]) -> Option<&Slot> {
        self.table.find(hash, |slot| slot.key() == key)
    }

    fn bytes(&self) -> usize {
        self.entry_bytes + self.table.num_buckets() * (std::mem::size_of::<Slot>() + 1)
    }

    /// Gives back the table's memory when most of it is empty (after
    /// expiry or a flush dropped entries), keeping room to double.
    fn shrink_if_sparse(&mut self, hasher: &KeyHasher) {
        let len = self.table.len();
        if len * 8 < self.table.capacity() {
            self.table.shrink_to(len * 2, |slot| hasher.of(slot.key()));
        }
    }

    /// Counts `slot` in (`sign` true) or out of the shard's totals.
    fn count(&mut self, slot: &Slot, sign: bool) {
        let (tomb, expiring, bytes) = (
            usize::from(slot.is_tombstone()),
            usize::from(slot.expires_at().is_some()),
            slot.heap_bytes(),
        );
        if sign {
            self.tombstones += tomb;
            self.expiring += expiring;
            self.entry_bytes += bytes;
        } else {
            self.tombstones -= tomb;
            self.expiring -= expiring;
            self.entry_bytes -= bytes;
        }
    }
}

/// One page of [`Engine::scan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// The keys, in position order.
    pub keys: Vec<Vec<u8>>,
    /// Where the next page starts; `None` when the scan is done.
    pub next: Option<u64>,
}

/// A key's place in a scan: 48 bits of its MurmurHash3, the same in every
/// process and on every node, so a cursor stays valid across a restart.
pub fn scan_position(key: &[u8]) -> u64 {
    crate::hash::ring_position(key) >> 16
}

/// What [`Engine::expire_shard`] does with an entry past its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiredEntries {
    /// Keep a tombstone at the entry's version (a replica: its peers may
    /// still hold older versions that must not come back).
    Tombstone,
    /// Drop it (a node alone: nothing can bring an older version back but
    /// its own log, whose replay meets the same expiry).
    Drop,
}

/// An engine configuration error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shard count must be a power of two between 1 and 65536, got {0}")]
pub struct ShardCountError(pub usize);

impl Engine {
    /// An empty engine with `shards` shards (a power of two, 1..=65536).
    pub fn new(shards: usize) -> Result<Engine, ShardCountError> {
        if !shards.is_power_of_two() || shards > 65536 {
            return Err(ShardCountError(shards));
        }
        Ok(Engine {
            shards: (0..shards).map(|_| RwLock::new(Shard::default())).collect(),
            hasher: KeyHasher(RandomState::new()),
            shard_shift: 64 - shards.trailing_zeros(),
        })
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn locate(&self, key: &[u8]) -> (u64, &RwLock<Shard>) {
        let hash = self.hasher.of(key);
        // The top bits pick the shard; the table uses the low bits and the
        // top 7 for its control bytes, so both stay well spread.
        let index = hash.checked_shr(self.shard_shift).unwrap_or(0) as usize;
        (hash, &self.shards[index])
    }

    /// The entry for `key`, tombstones included.
    pub fn get(&self, key: &[u8]) -> Option<Entry> {
        let (hash, shard) = self.locate(key);
        let shard = shard.read();
        shard.find(hash, key).map(|slot| slot.entry().to_owned())
    }

    /// The version stored for `key`, tombstones included.
    pub fn version_of(&self, key: &[u8]) -> Option<Version> {
        let (hash, shard) = self.locate(key);
        let shard = shard.read();
        shard.find(hash, key).map(Slot::version)
    }

    /// Stores a value at `version` unless a newer version is held.
    pub fn put(&self, key: &[u8], value: &[u8], version: Version) -> bool {
        self.apply(key, EntryRef::value(version, value))
    }

    /// Stores a tombstone at `version` unless a newer version is held.
    pub fn delete(&self, key: &[u8], version: Version) -> bool {
        self.apply(key, EntryRef::tombstone(version))
    }

    /// Applies a write (value or tombstone), keeping whichever of it and
    /// the stored entry has the larger version. Returns whether the write
    /// won. Keys longer than [`MAX_KEY_LEN`] are rejected (returns false);
    /// callers bound keys far below that.
    pub fn apply(&self, key: &[u8], entry: EntryRef<'_>) -> bool {
        self.apply_with_outcome(key, entry).won
    }

    /// [`Engine::apply`], also reporting whether the key held a live value
    /// just before (what `DEL` counts), found in the same lookup.
    pub fn apply_with_outcome(&self, key: &[u8], entry: EntryRef<'_>) -> ApplyOutcome {
        let version = entry.version;
        if key.len() > MAX_KEY_LEN {
            return ApplyOutcome {
                won: false,
                was_live: false,
                held_expires_at: None,
                previous: None,
                held_state: 0,
                state: 0,
            };
        }
        let (hash, shard) = self.locate(key);
        let mut guard = shard.write();
        let shard = &mut *guard;
        if version <= shard.floor {
            // Flushed: the key holds nothing newer than the floor, which
            // beats this write as a tombstone would.
            return ApplyOutcome {
                won: false,
                was_live: false,
                held_expires_at: None,
                previous: Some(shard.floor),
                held_state: 0,
                state: 0,
            };
        }
        let hasher = &self.hasher;
        match shard
            .table
            .entry(hash, |slot| slot.key() == key, |slot| hasher.of(slot.key()))
        {
            hashbrown::hash_table::Entry::Occupied(mut occupied) => {
                let slot = occupied.get_mut();
                let held_state = slot.state_digest();
                let mut outcome = ApplyOutcome {
                    won: false,
                    was_live: !slot.is_tombstone(),
                    held_expires_at: slot.expires_at(),
                    previous: Some(slot.version()),
                    held_state,
                    state: held_state,
                };
                let merged;
                // Only a tie needs the held entry unpacked.
                let entry = match version.cmp(&slot.version()) {
                    std::cmp::Ordering::Less => return outcome,
                    std::cmp::Ordering::Greater => entry,
                    std::cmp::Ordering::Equal => match supersedes(slot.entry(), entry) {
                        Supersedes::No => return outcome,
                        Supersedes::Whole => entry,
                        Supersedes::Merged(state, expires_at) => {
                            merged = state;
                            EntryRef::counter(version, &merged, expires_at)
                        }
                    },
                };
                let (tombstones, expiring, bytes) = (
                    usize::from(slot.is_tombstone()),
                    usize::from(slot.expires_at().is_some()),
                    slot.heap_bytes(),
                );
                slot.overwrite(entry);
                shard.tombstones = shard.tombstones - tombstones + usize::from(slot.is_tombstone());
                shard.expiring =
                    shard.expiring - expiring + usize::from(slot.expires_at().is_some());
                shard.entry_bytes = shard.entry_bytes - bytes + slot.heap_bytes();
                outcome.won = true;
                outcome.state = slot.state_digest();
                outcome
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                let slot = Slot::new(key, entry);
                let state = entry.state_digest();
                shard.tombstones += usize::from(slot.is_tombstone());
                shard.expiring += usize::from(slot.expires_at().is_some());
                shard.entry_bytes += slot.heap_bytes();
                vacant.insert(slot);
                ApplyOutcome {
                    won: true,
                    was_live: false,
                    held_expires_at: None,
                    previous: None,
                    held_state: 0,
                    state,
                }
            }
        }
    }

    /// Applies an owned [`Entry`]; see [`Engine::apply`].
    pub fn apply_entry(&self, key: &[u8], entry: &Entry) -> bool {
        self.apply(key, entry.as_ref())
    }

    /// Gives back the memory of shard `index`'s entries that expired
    /// before `now_ms`: each becomes a tombstone at its version, or is
    /// dropped, as `what` says. Returns how many. A shard with no expiring
    /// entry is passed over without a scan.
    ///
    /// # Panics
    /// If `index >= self.shard_count()`.
    pub fn expire_shard(&self, index: usize, now_ms: u64, what: ExpiredEntries) -> usize {
        if self.shards[index].read().expiring == 0 {
            return 0;
        }
        let mut guard = self.shards[index].write();
        let shard = &mut *guard;
        let expired = |slot: &Slot| slot.expires_at().is_some_and(|at| at <= now_ms);
        let (mut freed, mut count, mut tombstones) = (0, 0, 0);
        match what {
            ExpiredEntries::Drop => shard.table.retain(|slot| {
                let gone = expired(slot);
                if gone {
                    freed += slot.heap_bytes();
                    count += 1;
                }
                !gone
            }),
            ExpiredEntries::Tombstone => {
                for slot in shard.table.iter_mut().filter(|slot| expired(slot)) {
                    freed += slot.heap_bytes();
                    count += 1;
                    slot.overwrite(EntryRef::tombstone(slot.version()));
                    freed -= slot.heap_bytes();
                    tombstones += 1;
                }
            }
        }
        shard.expiring -= count;
        shard.tombstones += tombstones;
        shard.entry_bytes -= freed;
        shard.shrink_if_sparse(&self.hasher);
        count
    }

    /// The flush floor: every key reads as a tombstone at this version
    /// unless it holds a newer one (`Version::default()` before any flush).
    pub fn floor(&self) -> Version {
        self.shards[0].read().floor
    }

    /// Raises the flush floor to `floor` (never lowers it) and drops every
    /// entry at or below it; returns how many were dropped. One shard's
    /// write lock at a time: a write to a shard already done is checked
    /// against the new floor, one to a shard not yet done is dropped when
    /// its turn comes.
    pub fn raise_floor(&self, floor: Version) -> usize {
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut guard = shard.write();
            let shard = &mut *guard;
            if floor <= shard.floor {
                continue;
            }
            shard.floor = floor;
            let (mut freed, mut tombstones, mut expiring, mut count) = (0, 0, 0, 0);
            shard.table.retain(|slot| {
                let gone = slot.version() <= floor;
                if gone {
                    freed += slot.heap_bytes();
                    tombstones += usize::from(slot.is_tombstone());
                    expiring += usize::from(slot.expires_at().is_some());
                    count += 1;
                }
                !gone
            });
            shard.entry_bytes -= freed;
            shard.tombstones -= tombstones;
            shard.expiring -= expiring;
            dropped += count;
            shard.shrink_if_sparse(&self.hasher);
        }
        dropped
    }

    /// One page of a scan: up to `count` keys whose [`scan_position`] is at
    /// least `from` and that `keep` accepts, in position order, and the
    /// position to go on from (`None`: the scan is done). Keys sharing a
    /// position come in one page, so a page may hold a few more than
    /// `count`. A key present for the whole scan is returned exactly once
    /// whatever is written meanwhile; the cost is a pass over every entry.
    pub fn scan(
        &self,
        from: u64,
        count: usize,
        mut keep: impl FnMut(&[u8], EntryRef<'_>) -> bool,
    ) -> ScanPage {
        let count = count.max(1);
        // First pass: the positions of every candidate, to find the
        // `count`-th lowest; second pass: the keys up to it.
        let mut positions = Vec::new();
        self.for_each(|key, entry| {
            let position = scan_position(key);
            if position >= from && keep(key, entry) {
                positions.push(position);
            }
        });
        if positions.is_empty() {
            return ScanPage::default();
        }
        let last = if positions.len() > count {
            *positions.select_nth_unstable(count - 1).1
        } else {
            u64::MAX
        };
        let done = positions.iter().all(|&p| p <= last);
        let mut keys = Vec::with_capacity(count);
        self.for_each(|key, entry| {
            let position = scan_position(key);
            if (from..=last).contains(&position) && keep(key, entry) {
                keys.push((position, key.to_vec()));
            }
        });
        keys.sort_unstable();
        ScanPage {
            next: if done { None } else { last.checked_add(1) },
            keys: keys.into_iter().map(|(_, key)| key).collect(),
        }
    }

    /// Drops the tombstone of `key` if it still has `version` (anti-entropy
    /// found every replica holding it). Returns whether it was dropped.
    pub fn purge_tombstone(&self, key: &[u8], version: Version) -> bool {
        let (hash, shard) = self.locate(key);
        let mut guard = shard.write();
        let shard = &mut *guard;
        let Ok(occupied) = shard.table.find_entry(hash, |slot| slot.key() == key) else {
            return false;
        };
        if !occupied.get().is_tombstone() || occupied.get().version() != version {
            return false;
        }
        let (slot, _) = occupied.remove();
        shard.count(&slot, false);
        true
    }

    /// Drops tombstones whose timestamp is older than `before`. Returns how
    /// many were dropped. Holds one shard's write lock at a time.
    pub fn purge_tombstones(&self, before: Timestamp) -> usize {
        let mut purged = 0;
        for shard in self.shards.iter() {
            let mut guard = shard.write();
            let shard = &mut *guard;
            let mut freed_bytes = 0;
            let mut dropped = 0;
            shard.table.retain(|slot| {
                let expired = slot.is_tombstone() && slot.version().timestamp < before;
                if expired {
                    freed_bytes += slot.heap_bytes();
                    dropped += 1;
                }
                !expired
            });
            shard.entry_bytes -= freed_bytes;
            shard.tombstones -= dropped;
            purged += dropped;
        }
        purged
    }

    /// Live keys, tombstones and bytes held.
    pub fn stats(&self) -> EngineStats {
        let mut stats = EngineStats::default();
        for shard in self.shards.iter() {
            let shard = shard.read();
            stats.keys += shard.table.len() - shard.tombstones;
            stats.tombstones += shard.tombstones;
            stats.expiring += shard.expiring;
            stats.bytes += shard.bytes();
        }
        stats
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.stats().keys
    }

    /// Whether no live key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with every entry (tombstones included), one shard at a
    /// time under its read lock (see [`Engine::for_each_in_shard`]).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], EntryRef<'_>)) {
        for index in 0..self.shard_count() {
            self.for_each_in_shard(index, &mut f);
        }
    }

    /// Calls `f` with every entry of shard `index` (tombstones included)
    /// while holding that shard's read lock: writers to this shard wait
    /// until it returns, writers to other shards do not.
    ///
    /// # Panics
    /// If `index >= self.shard_count()`.
    pub fn for_each_in_shard(&self, index: usize, mut f: impl FnMut(&[u8], EntryRef<'_>)) {
        let shard = self.shards[index].read();
        for slot in shard.table.iter() {
            f(slot.key(), slot.entry());
        }
    }

    /// The largest timestamp of any entry (zero when empty): a reopened
    /// store moves its clock past it so new writes win over recovered ones.
    pub fn max_timestamp(&self) -> Timestamp {
        let mut max = Timestamp(0);
        for shard in self.shards.iter() {
            for slot in shard.read().table.iter() {
                max = max.max(slot.version().timestamp);
            }
        }
        max
    }

    /// Every entry, sorted by key: for tests and tools, not the hot path.
    pub fn to_sorted_vec(&self) -> Vec<(Vec<u8>, Entry)> {
        let mut all = Vec::new();
        for index in 0..self.shard_count() {
            self.for_each_in_shard(index, |key, entry| {
                all.push((key.to_vec(), entry.to_owned()))
            });
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests;
