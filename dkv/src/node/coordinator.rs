//! The coordinator's part of a node: planning where a request goes, and
//! the writes and reads in flight until they finish or time out.
//!
//! A write goes to the N replicas of the key's preference list; a replica
//! believed down is replaced by the next healthy node past the list, which
//! keeps the write as a hint for it. The client hears success at W
//! acknowledgements of owners (or the level it asked for). The request
//! then waits for the other replicas until its deadline: owners that
//! stayed silent get a hint kept by the coordinator, so replicas converge
//! even when messages are lost.
//!
//! A read asks as many reachable replicas of the preference list as it
//! must hear (R, or the N - R + 1 its answer must be on when that is
//! more): this node first when it holds a copy, then the others in turn,
//! so that reads spread over the replicas. The other reachable replicas
//! are spares: one is asked when an asked replica cannot be reached, and
//! all are when the read has not answered by its hedge time (a replica
//! that is paused or slow, not yet believed down). It answers at R
//! replies with the newest version, and once all asked have answered (or
//! the deadline passes) the node sends that newest version to the
//! replicas that were stale: read repair.
//!
//! Deadlines are `now + request_timeout`, and hedge times `now +
//! read_hedge_after`, so each arrives in the order the requests started: a
//! FIFO queue is a timer table, and a request that finished early leaves a
//! stale entry that is skipped when it comes due.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::counter::CounterValue;
use crate::hash::{IdMap, KeyHash};
use crate::node::ids::{ReadId, WriteId};
use crate::node::quorum::{ReadTally, Target, WriteTally};
use crate::node::types::OpId;
use crate::peer::SharedWrite;
use crate::ring::{PreferenceLists, Ring};
use crate::version::{NodeId, Version};

/// Where a write goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WritePlan {
    /// One target per owner that is up or has a stand-in.
    pub targets: Vec<Target>,
    /// Owners that are up: the most acknowledgements that can count.
    pub reachable: usize,
}

impl WritePlan {
    /// Whether the only copy goes to `me` (a node alone, N = 1).
    pub fn is_only(&self, me: NodeId) -> bool {
        matches!(self.targets.as_slice(), [t] if t.node == me && t.stands_in_for.is_none())
    }
}

/// Plans a write of the key whose hash is `hash` to its owners (the
/// replication factor of `lists`), replacing each owner that is down by the
/// next node past the list that is up. With every owner up, as usual, that
/// is the partition's worked-out list; otherwise a walk of the ring from
/// the key's position past the owners gives their stand-ins.
pub(crate) fn plan_write(
    ring: &Ring,
    lists: &PreferenceLists,
    hash: KeyHash,
    is_up: impl Fn(NodeId) -> bool,
) -> WritePlan {
    let owners = lists.of_partition(ring.key_partition(hash));
    if owners.iter().all(|&owner| is_up(owner)) {
        let targets = owners
            .iter()
            .map(|&node| Target {
                node,
                stands_in_for: None,
            })
            .collect();
        return WritePlan {
            targets,
            reachable: owners.len(),
        };
    }
    // The walk's first nodes are the owners; the stand-ins come after.
    let mut spares = ring
        .walk_from(hash.ring_position())
        .skip(lists.width())
        .filter(|&node| is_up(node));
    let mut targets = Vec::with_capacity(owners.len());
    let mut reachable = 0;
    for &owner in owners {
        if is_up(owner) {
            reachable += 1;
            targets.push(Target {
                node: owner,
                stands_in_for: None,
            });
        } else if let Some(spare) = spares.next() {
            targets.push(Target {
                node: spare,
                stands_in_for: Some(owner),
            });
        }
    }
    WritePlan { targets, reachable }
}

/// The owners of the key whose hash is `hash` a read may ask: those
/// believed up, in the order to ask them. `me` comes first when it is one
/// (its copy costs no message); the others are rotated by `turn`, so that
/// successive reads of one coordinator spread over them.
pub(crate) fn plan_read(
    ring: &Ring,
    lists: &PreferenceLists,
    hash: KeyHash,
    me: NodeId,
    turn: usize,
    is_up: impl Fn(NodeId) -> bool,
) -> Vec<NodeId> {
    let mut owners: Vec<NodeId> = lists
        .of_partition(ring.key_partition(hash))
        .iter()
        .copied()
        .filter(|&node| is_up(node))
        .collect();
    let others = match owners.iter().position(|&node| node == me) {
        Some(at) => {
            rotate_left_by_reversal(&mut owners[..=at], at);
            &mut owners[1..]
        }
        None => &mut owners[..],
    };
    if !others.is_empty() {
        let by = turn % others.len();
        rotate_left_by_reversal(others, by);
    }
    owners
}

/// `slice.rotate_left(by)` done with three reversals: for the handful of
/// owners a read plans this is a few swaps, where the standard rotation
/// copies through a stack buffer with calls to `memcpy` (~90
/// instructions per read).
fn rotate_left_by_reversal(slice: &mut [NodeId], by: usize) {
    debug_assert!(by <= slice.len());
    slice[..by].reverse();
    slice[by..].reverse();
    slice.reverse();
}

/// A write this node coordinates (one attempt of it: a write stamped
/// again is a new `WriteOp`).
#[derive(Debug)]
pub(crate) struct WriteOp {
    pub op: OpId,
    /// The key and the entry this attempt writes, shared with the
    /// messages that carry it.
    pub body: SharedWrite,
    pub tally: WriteTally,
    pub reachable: usize,
    /// Which stamp this is, and how long the write may take.
    pub attempt: WriteAttempt,
    /// The newest version a replica said it held that beat this one.
    pub newest_held: Option<Version>,
    /// Set for an add to a counter (`counters.rs`); boxed, since it is
    /// rare and every write is moved in and out of the table of writes.
    pub counter: Option<Box<CounterWrite>>,
}

/// What a counter add's write carries besides the entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CounterWrite {
    /// The replica that adds in its own slot.
    pub leader: NodeId,
    /// The value the add left, once the leader has made it (the entry is
    /// a placeholder until then).
    pub value: Option<CounterValue>,
}

/// One stamp of a write, and the bounds every stamp shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteAttempt {
    /// 1 for the first stamp, 2 for the next, ...
    pub number: u32,
    /// Whether an earlier attempt found a live value.
    pub existed: bool,
    /// The first attempt's deadline (monotonic ms): no stamp is taken
    /// after it.
    pub expires: u64,
    /// The client's deadline (wall-clock ms), if it sent one: no stamp
    /// goes out after it, so a write the client gave up on cannot take
    /// effect again behind the client's next one.
    pub client_deadline: Option<u64>,
}

/// A read this node coordinates.
#[derive(Debug)]
pub(crate) struct ReadOp {
    pub op: OpId,
    /// Shared with every `Read` message the read sends.
    pub key: Arc<[u8]>,
    pub tally: ReadTally,
    /// Owners that must hold the newest version before the read answers:
    /// enough that every later quorum read meets one of them.
    pub needed: usize,
    /// The client has its answer.
    pub answered: bool,
    /// Stale replicas sent a newer version while the read waited (at most
    /// once each), and the version sent.
    pub repaired: Vec<(NodeId, Version)>,
    /// Of those, the ones that took it (the version they now hold).
    pub repair_acks: Vec<(NodeId, Version)>,
    /// Replicas asked a second time because a repair showed they hold
    /// something newer than they first answered (at most once each).
    pub asked_again: Vec<NodeId>,
}

/// A request whose deadline passed.
#[derive(Debug)]
pub(crate) enum Expired {
    Write(WriteOp),
    Read(ReadOp),
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    Write(WriteId),
    Read(ReadId),
}

/// Timers that come due in the order they were set (each is now plus one
/// fixed delay): a FIFO queue. A timer of a request that finished early
/// stays until it comes due, for the caller to skip.
#[derive(Debug)]
struct TimerQueue<T>(VecDeque<(u64, T)>);

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        TimerQueue(VecDeque::new())
    }
}

impl<T: Copy> TimerQueue<T> {
    fn push(&mut self, at: u64, item: T) {
        debug_assert!(
            self.0.back().is_none_or(|(last, _)| *last <= at),
            "timers arrive in order"
        );
        self.0.push_back((at, item));
    }

    /// The oldest timer due at `now`, removed.
    fn pop_due(&mut self, now: u64) -> Option<T> {
        match self.0.front() {
            Some(&(at, item)) if at <= now => {
                self.0.pop_front();
                Some(item)
            }
            _ => None,
        }
    }

    /// When the next timer comes due.
    fn next(&self) -> Option<u64> {
        self.0.front().map(|(at, _)| *at)
    }
}

/// Every request this node coordinates that has not finished.
#[derive(Debug, Default)]
pub(crate) struct Coordinator {
    writes: IdMap<WriteId, WriteOp>,
    reads: IdMap<ReadId, ReadOp>,
    deadlines: TimerQueue<Pending>,
    /// When reads with spares ask them all, if they have not answered.
    hedges: TimerQueue<ReadId>,
    /// Reads planned so far: which replica a read asks first, in turn.
    read_turn: usize,
}

impl Coordinator {
    pub fn new() -> Coordinator {
        Coordinator::default()
    }

    pub fn open_write(&mut self, id: WriteId, write: WriteOp, deadline: u64) {
        self.writes.insert(id, write);
        self.deadlines.push(deadline, Pending::Write(id));
    }

    pub fn open_read(&mut self, id: ReadId, read: ReadOp, deadline: u64) {
        self.reads.insert(id, read);
        self.deadlines.push(deadline, Pending::Read(id));
    }

    /// Asks for `id`'s spares at `at` (monotonic ms) unless it has
    /// answered by then.
    pub fn hedge_read(&mut self, id: ReadId, at: u64) {
        self.hedges.push(at, id);
    }

    /// The reads whose hedge time is at or before `now` and that are still
    /// in flight.
    pub fn hedges_due(&mut self, now: u64) -> Vec<ReadId> {
        let mut due = Vec::new();
        while let Some(id) = self.hedges.pop_due(now) {
            if self.reads.contains_key(&id) {
                due.push(id);
            }
        }
        due
    }

    /// The turn of the next read planned (see [`plan_read`]).
    pub fn next_read_turn(&mut self) -> usize {
        self.read_turn = self.read_turn.wrapping_add(1);
        self.read_turn
    }

    pub fn write_mut(&mut self, id: WriteId) -> Option<&mut WriteOp> {
        self.writes.get_mut(&id)
    }

    pub fn read_mut(&mut self, id: ReadId) -> Option<&mut ReadOp> {
        self.reads.get_mut(&id)
    }

    pub fn finish_write(&mut self, id: WriteId) -> Option<WriteOp> {
        self.writes.remove(&id)
    }

    pub fn finish_read(&mut self, id: ReadId) -> Option<ReadOp> {
        self.reads.remove(&id)
    }

    /// Removes and returns every request whose deadline is at or before
    /// `now`.
    pub fn expire(&mut self, now: u64) -> Vec<Expired> {
        let mut expired = Vec::new();
        while let Some(pending) = self.deadlines.pop_due(now) {
            match pending {
                Pending::Write(id) => {
                    if let Some(write) = self.writes.remove(&id) {
                        expired.push(Expired::Write(write));
                    }
                }
                Pending::Read(id) => {
                    if let Some(read) = self.reads.remove(&id) {
                        expired.push(Expired::Read(read));
                    }
                }
            }
        }
        expired
    }

    /// The earliest deadline queued (possibly of a request that already
    /// finished: waking for it is harmless).
    pub fn next_deadline(&self) -> Option<u64> {
        [self.deadlines.next(), self.hedges.next()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.writes.len() + self.reads.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::ids::RequestIds;

    #[test]
    fn a_rotation_by_reversal_is_the_standard_rotation() {
        for len in 0..=9u32 {
            for by in 0..=len as usize {
                let mut ours: Vec<NodeId> = (0..len).map(NodeId).collect();
                let mut std = ours.clone();
                rotate_left_by_reversal(&mut ours, by);
                std.rotate_left(by);
                assert_eq!(ours, std, "len {len} by {by}");
            }
        }
    }

    fn read_op() -> ReadOp {
        ReadOp {
            op: OpId::single(0),
            key: Arc::from(&b""[..]),
            tally: ReadTally::new(vec![NodeId(1)], 1),
            needed: 1,
            answered: false,
            repaired: Vec::new(),
            repair_acks: Vec::new(),
            asked_again: Vec::new(),
        }
    }

    fn ring(n: u32) -> Ring {
        let members: Vec<NodeId> = (1..=n).map(NodeId).collect();
        Ring::new(&members, 16)
    }

    fn lists(ring: &Ring, n: usize) -> PreferenceLists {
        PreferenceLists::new(ring, n)
    }

    #[test]
    fn a_down_owner_is_replaced_by_the_next_node_that_is_up() {
        let ring = ring(5);
        let key = b"some key";
        let owners = ring.preference_list(key, 3);
        let all_up = plan_write(&ring, &lists(&ring, 3), KeyHash::of(key), |_| true);
        assert_eq!(all_up.reachable, 3);
        assert!(all_up.targets.iter().all(|t| t.stands_in_for.is_none()));
        let down = owners[1];
        let plan = plan_write(&ring, &lists(&ring, 3), KeyHash::of(key), |n| n != down);
        assert_eq!(plan.reachable, 2);
        let stand_in = plan
            .targets
            .iter()
            .find(|t| t.stands_in_for == Some(down))
            .expect("a stand-in");
        assert!(!owners.contains(&stand_in.node));
        assert_eq!(
            plan_read(
                &ring,
                &lists(&ring, 3),
                KeyHash::of(key),
                NodeId(9),
                0,
                |n| n != down
            )
            .len(),
            2
        );
    }

    #[test]
    fn a_read_asks_its_own_copy_first_and_the_others_in_turn() {
        let ring = ring(5);
        let key = b"some key";
        let owners = ring.preference_list(key, 3);
        let me = owners[2];
        let mut firsts = Vec::new();
        for turn in 0..4 {
            let plan = plan_read(&ring, &lists(&ring, 3), KeyHash::of(key), me, turn, |_| {
                true
            });
            assert_eq!(plan[0], me);
            let mut sorted = plan.clone();
            sorted.sort();
            let mut expected = owners.clone();
            expected.sort();
            assert_eq!(sorted, expected, "every owner, once");
            firsts.push(plan[1]);
        }
        assert_eq!(firsts, [owners[0], owners[1], owners[0], owners[1]]);
        let stranger = (1..=5).map(NodeId).find(|n| !owners.contains(n)).unwrap();
        let plan = plan_read(
            &ring,
            &lists(&ring, 3),
            KeyHash::of(key),
            stranger,
            1,
            |_| true,
        );
        assert_eq!(plan, [owners[1], owners[2], owners[0]]);
    }

    #[test]
    fn hedges_come_due_in_order_and_only_for_reads_in_flight() {
        let mut ids = RequestIds::new(0);
        let mut c = Coordinator::new();
        let (a, b) = (ids.read(), ids.read());
        for id in [a, b] {
            c.open_read(id, read_op(), 100);
        }
        c.hedge_read(a, 5);
        c.hedge_read(b, 7);
        assert_eq!(c.next_deadline(), Some(5));
        assert!(c.finish_read(a).is_some());
        assert!(c.hedges_due(6).is_empty(), "a finished: no hedge");
        assert_eq!(c.next_deadline(), Some(7));
        assert_eq!(c.hedges_due(7), [b]);
        assert_eq!(c.next_deadline(), Some(100));
    }

    #[test]
    fn with_every_node_down_nothing_is_planned() {
        let ring = ring(3);
        let plan = plan_write(&ring, &lists(&ring, 3), KeyHash::of(b"k"), |_| false);
        assert_eq!(plan.reachable, 0);
        assert!(plan.targets.is_empty());
    }

    #[test]
    fn a_node_alone_is_its_only_target() {
        let ring = ring(1);
        let plan = plan_write(&ring, &lists(&ring, 1), KeyHash::of(b"k"), |_| true);
        assert!(plan.is_only(NodeId(1)));
        assert!(!plan.is_only(NodeId(2)));
    }

    #[test]
    fn deadlines_expire_in_order_and_skip_finished_requests() {
        let mut ids = RequestIds::new(0);
        let mut c = Coordinator::new();
        let (a, b) = (ids.read(), ids.read());
        for (id, deadline) in [(a, 10), (b, 20)] {
            c.open_read(id, read_op(), deadline);
        }
        assert!(c.finish_read(a).is_some());
        assert_eq!(c.next_deadline(), Some(10));
        assert!(c.expire(15).is_empty(), "a finished: its deadline is stale");
        assert_eq!(c.next_deadline(), Some(20));
        assert!(matches!(c.expire(20).as_slice(), [Expired::Read(_)]));
        assert_eq!(c.in_flight(), 0);
    }
}
