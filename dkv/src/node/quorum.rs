//! Quorum tallies: who was asked, who answered, and when a request has
//! heard enough. Pure bookkeeping, no messages; the coordinator acts on
//! what these report.
//!
//! A write's targets are the key's owners, each possibly replaced by a
//! stand-in that keeps a hint for it. Only owners count towards W: a
//! stand-in's copy is durable, but a read of the owners would not see it,
//! so counting it would break W + R > N (Cassandra does the same).
//!
//! A copy counts only when the replica took *this* write: one that held a
//! newer version (a write that would not supersede it) answers, but does
//! not count, so quorum intersection orders every acknowledged write after
//! every write acknowledged before it began. A replica that refused, or
//! could not be reached, answers without counting too; a tally says when
//! its quorum can no longer be reached, so the coordinator need not wait
//! for the deadline.
//!
//! Invariants: answers count only from nodes that were asked, each once;
//! a tally reports its quorum reached at most once.

use crate::engine::{Entry, EntryRef, Supersedes};
use crate::version::NodeId;

/// One replica a write was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    /// Where the write went.
    pub node: NodeId,
    /// The owner it stands in for, when `node` is a stand-in.
    pub stands_in_for: Option<NodeId>,
}

impl Target {
    /// The owner this copy is for.
    pub fn owner(&self) -> NodeId {
        self.stands_in_for.unwrap_or(self.node)
    }
}

/// What one acknowledgement changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WriteProgress {
    /// The quorum was reached by this acknowledgement.
    pub reached: bool,
    /// Every target has acknowledged.
    pub complete: bool,
}

/// What one target has said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Waiting,
    /// Took the write: counts (when an owner).
    Counted,
    /// Answered without taking it (held something newer, refused, or was
    /// unreachable): never counts.
    Refused,
}

/// How many targets' answers a write keeps without a table of its own.
const INLINE_ANSWERS: usize = 16;

/// What each target of a write has said, in target order.
#[derive(Debug, Clone)]
enum Answers {
    /// The first `len` of `at`.
    Inline {
        len: u8,
        at: [Answer; INLINE_ANSWERS],
    },
    Spilled(Vec<Answer>),
}

impl Answers {
    /// `targets` answers, all waiting.
    fn waiting(targets: usize) -> Answers {
        match u8::try_from(targets) {
            Ok(len) if targets <= INLINE_ANSWERS => Answers::Inline {
                len,
                at: [Answer::Waiting; INLINE_ANSWERS],
            },
            _ => Answers::Spilled(vec![Answer::Waiting; targets]),
        }
    }

    fn as_slice(&self) -> &[Answer] {
        match self {
            Answers::Inline { len, at } => &at[..usize::from(*len)],
            Answers::Spilled(answers) => answers,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Answer] {
        match self {
            Answers::Inline { len, at } => &mut at[..usize::from(*len)],
            Answers::Spilled(answers) => answers,
        }
    }
}

/// The acknowledgements of one write.
#[derive(Debug, Clone)]
pub(crate) struct WriteTally {
    targets: Vec<Target>,
    answers: Answers,
    required: usize,
    existed: bool,
    reached: bool,
}

impl WriteTally {
    pub fn new(targets: Vec<Target>, required: usize) -> WriteTally {
        WriteTally {
            answers: Answers::waiting(targets.len()),
            targets,
            required,
            existed: false,
            reached: false,
        }
    }

    /// A tally that starts out knowing an earlier attempt of the same write
    /// found a live value.
    pub fn with_existed(mut self, existed: bool) -> WriteTally {
        self.existed = existed;
        self
    }

    fn answer(&mut self, from: NodeId, answer: Answer, was_live: bool) -> WriteProgress {
        let Some(index) = self.targets.iter().position(|t| t.node == from) else {
            return WriteProgress::default();
        };
        let answers = self.answers.as_mut_slice();
        if answers[index] != Answer::Waiting {
            return WriteProgress::default();
        }
        answers[index] = answer;
        if answer == Answer::Counted {
            self.existed |= was_live;
        }
        let reached = !self.reached && self.owners_acked() >= self.required;
        self.reached |= reached;
        WriteProgress {
            reached,
            complete: !self.answers.as_slice().contains(&Answer::Waiting),
        }
    }

    /// Counts `from`'s acknowledgement; one from a node not asked, or a
    /// second answer, changes nothing.
    pub fn ack(&mut self, from: NodeId, was_live: bool) -> WriteProgress {
        self.answer(from, Answer::Counted, was_live)
    }

    /// Records that `from` answered without taking the write.
    pub fn refuse(&mut self, from: NodeId) -> WriteProgress {
        self.answer(from, Answer::Refused, false)
    }

    /// Owners (not stand-ins) that acknowledged: what counts towards W.
    pub fn owners_acked(&self) -> usize {
        self.targets
            .iter()
            .zip(self.answers.as_slice())
            .filter(|(t, &a)| a == Answer::Counted && t.stands_in_for.is_none())
            .count()
    }

    /// Whether W can still be reached: owners acknowledged plus owners
    /// still to answer.
    pub fn can_reach(&self) -> bool {
        let owners_acked_or_waiting = self
            .targets
            .iter()
            .zip(self.answers.as_slice())
            .filter(|(t, &a)| a != Answer::Refused && t.stands_in_for.is_none())
            .count();
        owners_acked_or_waiting >= self.required
    }

    /// Whether the quorum has been reached.
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// Whether an acknowledging replica held a live value before.
    pub fn existed(&self) -> bool {
        self.existed
    }

    pub fn required(&self) -> usize {
        self.required
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Whether the write went to `n` owners themselves and each took it:
    /// no owner is left to hint.
    pub fn all_owners_acked(&self, n: usize) -> bool {
        self.targets.len() == n
            && self
                .targets
                .iter()
                .zip(self.answers.as_slice())
                .all(|(t, &a)| a == Answer::Counted && t.stands_in_for.is_none())
    }

    /// Owners whose copy was not acknowledged, by them or their stand-in.
    pub fn unacked_owners(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.targets
            .iter()
            .zip(self.answers.as_slice())
            .filter(|(_, &a)| a != Answer::Counted)
            .map(|(t, _)| t.owner())
    }
}

/// What one read reply changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ReadProgress {
    /// The read has heard from enough replicas, with this reply.
    pub reached: bool,
    /// Every replica asked has answered.
    pub complete: bool,
}

/// The replies of one read.
#[derive(Debug, Clone)]
pub(crate) struct ReadTally {
    /// The owners the read may ask, in order: the first `asked` were asked,
    /// the rest are spares (believed up, asked when one asked cannot be
    /// reached or the read is slow; see `take_spare`).
    owners: Vec<NodeId>,
    asked: usize,
    replies: Vec<(NodeId, Option<Entry>)>,
    /// Asked, but could not be reached: they will never reply.
    failed: Vec<NodeId>,
    required: usize,
    reached: bool,
}

impl ReadTally {
    /// The tally of a read that asks every one of `asked`.
    #[cfg(test)]
    pub fn new(asked: Vec<NodeId>, required: usize) -> ReadTally {
        let count = asked.len();
        ReadTally::with_spares(asked, count, required)
    }

    /// The tally of a read that asks the first `asked` of `owners` and
    /// keeps the rest in reserve.
    pub fn with_spares(owners: Vec<NodeId>, asked: usize, required: usize) -> ReadTally {
        debug_assert!(asked <= owners.len());
        debug_assert!(required <= asked, "a read asks at least R replicas");
        ReadTally {
            replies: Vec::with_capacity(asked),
            failed: Vec::new(),
            owners,
            asked,
            required,
            reached: false,
        }
    }

    /// The replicas asked so far.
    fn asked(&self) -> &[NodeId] {
        &self.owners[..self.asked]
    }

    /// The `at`-th owner in asking order.
    pub fn owner(&self, at: usize) -> Option<NodeId> {
        self.owners.get(at).copied()
    }

    /// Moves the next spare into the asked set and returns it, to be asked.
    pub fn take_spare(&mut self) -> Option<NodeId> {
        let spare = *self.owners.get(self.asked)?;
        self.asked += 1;
        Some(spare)
    }

    fn answered_already(&self, from: NodeId) -> bool {
        self.replies.iter().any(|(n, _)| *n == from) || self.failed.contains(&from)
    }

    /// Records that `from` could not be reached: it will never reply.
    pub fn fail(&mut self, from: NodeId) {
        if self.asked().contains(&from) && !self.answered_already(from) {
            self.failed.push(from);
        }
    }

    /// Whether R can still be reached, with the spares.
    pub fn can_reach(&self) -> bool {
        self.owners.len() - self.failed.len() >= self.required
    }

    /// Records `from`'s answer; one from a node not asked, or a repeat,
    /// changes nothing.
    pub fn record(&mut self, from: NodeId, entry: Option<Entry>) -> ReadProgress {
        if !self.asked().contains(&from) || self.answered_already(from) {
            return ReadProgress::default();
        }
        self.replies.push((from, entry));
        let reached = !self.reached && self.replies.len() >= self.required;
        self.reached |= reached;
        ReadProgress {
            reached,
            complete: self.replies.len() + self.failed.len() == self.asked,
        }
    }

    /// Forgets `from`'s answer, to record a fresh one.
    pub fn forget(&mut self, from: NodeId) {
        self.replies.retain(|(n, _)| *n != from);
    }

    /// Whether every asked replica answered or failed.
    pub fn complete(&self) -> bool {
        self.replies.len() + self.failed.len() == self.asked
    }

    /// The newest entry among the replies. Of two copies of one version,
    /// a counter is preferred to a plain value (it was built on it) and a
    /// value to a tombstone: only expiry turns a value into a tombstone at
    /// its own version, and the coordinator judges expiry by its own clock
    /// rather than by the replica's. Copies of one counter merge.
    pub fn newest(&self) -> Option<Entry> {
        let best = self
            .replies
            .iter()
            .filter_map(|(_, e)| e.as_ref())
            .max_by_key(|e| (e.version, e.counter, e.value.is_some()))?;
        let mut newest = best.clone();
        if best.counter {
            for (_, copy) in &self.replies {
                let Some(copy) = copy.as_ref().filter(|c| c.version == best.version) else {
                    continue;
                };
                if let Some((state, expires_at)) = merge_counters(newest.as_ref(), copy.as_ref()) {
                    newest.value = Some(state);
                    newest.expires_at = expires_at;
                }
            }
        }
        Some(newest)
    }

    /// Whether every reply is the same copy and not a counter's (whose
    /// copies merge): then [`Self::into_agreed`] may move it out.
    pub fn agree_on_a_plain_copy(&self) -> bool {
        let plain = self
            .replies
            .last()
            .is_none_or(|(_, e)| e.as_ref().is_none_or(|e| !e.counter));
        plain && self.agree()
    }

    /// [`Self::newest`] of a tally that is done with and whose replies
    /// [agree on a plain copy](Self::agree_on_a_plain_copy), moved out
    /// instead of copied: the last reply's, as `newest` picks of equals.
    pub fn into_agreed(mut self) -> Option<Entry> {
        debug_assert!(self.agree_on_a_plain_copy());
        #[cfg(debug_assertions)]
        let newest = self.newest();
        let entry = self.replies.pop().and_then(|(_, e)| e);
        #[cfg(debug_assertions)]
        debug_assert_eq!(entry, newest);
        entry
    }

    /// Whether enough replicas have answered.
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// Whether `node` answered with a copy that covers `newest`.
    pub fn answered_with(&self, node: NodeId, newest: Option<&Entry>) -> bool {
        self.replies
            .iter()
            .any(|(n, e)| *n == node && covers(e.as_ref(), newest))
    }

    /// How many replies cover `newest` (`None`: how many hold nothing).
    pub fn holding(&self, newest: Option<&Entry>) -> usize {
        self.replies
            .iter()
            .filter(|(_, e)| covers(e.as_ref(), newest))
            .count()
    }

    pub fn answered(&self) -> usize {
        self.replies.len()
    }

    /// Replicas asked or kept in reserve: every one the read could hear.
    pub fn reachable(&self) -> usize {
        self.owners.len()
    }

    pub fn required(&self) -> usize {
        self.required
    }

    /// Replicas that answered with something older than the newest entry
    /// (or nothing, or a counter missing some of its increments): the ones
    /// read repair must update. (The read path has the newest entry at
    /// hand and calls [`Self::stale_against`].)
    #[cfg(test)]
    pub fn stale(&self) -> Vec<NodeId> {
        if self.agree() {
            return Vec::new();
        }
        let Some(newest) = self.newest() else {
            return Vec::new();
        };
        self.stale_against(&newest)
    }

    /// Replicas whose reply does not cover `newest` (see [`Self::stale`]).
    pub fn stale_against(&self, newest: &Entry) -> Vec<NodeId> {
        self.replies
            .iter()
            .filter(|(_, e)| !covers(e.as_ref(), Some(newest)))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Whether every reply is the same copy (or every one is missing):
    /// then none is stale, which the common read finds without building
    /// the newest entry.
    pub fn agree(&self) -> bool {
        let mut replies = self.replies.iter().map(|(_, e)| e.as_ref());
        let Some(first) = replies.next() else {
            return true;
        };
        replies.all(|e| match (first, e) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.version == b.version
                    && a.counter == b.counter
                    && a.value.is_some() == b.value.is_some()
                    && (!a.counter || a.value == b.value)
            }
            _ => false,
        })
    }
}

/// Whether a replica's copy `held` is as new as `newest`: the same version
/// (a tombstone an expiry made counts), and for a counter the same state.
fn covers(held: Option<&Entry>, newest: Option<&Entry>) -> bool {
    match (held, newest) {
        (None, None) => true,
        (Some(held), Some(newest)) => {
            held.version == newest.version
                && (!newest.counter || (held.counter && held.value == newest.value))
        }
        _ => false,
    }
}

/// Two copies of one counter merged (state, expiry), or `None` when
/// `copy` adds nothing to `into`.
fn merge_counters(into: EntryRef<'_>, copy: EntryRef<'_>) -> Option<(Vec<u8>, Option<u64>)> {
    match crate::engine::supersedes(into, copy) {
        Supersedes::Merged(state, expires_at) => Some((state, expires_at)),
        Supersedes::Whole => copy.value.map(|v| (v.to_vec(), copy.expires_at)),
        Supersedes::No => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{Timestamp, Version};

    fn owner(id: u32) -> Target {
        Target {
            node: NodeId(id),
            stands_in_for: None,
        }
    }

    fn stand_in(id: u32, for_owner: u32) -> Target {
        Target {
            node: NodeId(id),
            stands_in_for: Some(NodeId(for_owner)),
        }
    }

    #[test]
    fn write_tally_table() {
        // (targets, W, acknowledgements in order, expected (reached, complete)
        // after each, owners acked at the end)
        type Case = (Vec<Target>, usize, Vec<u32>, Vec<(bool, bool)>, usize);
        let cases: Vec<Case> = vec![
            // W=2 of three owners: reached at the second ack, complete at the third.
            (
                vec![owner(1), owner(2), owner(3)],
                2,
                vec![1, 2, 3],
                vec![(false, false), (true, false), (false, true)],
                3,
            ),
            // A repeated ack and one from a stranger change nothing.
            (
                vec![owner(1), owner(2), owner(3)],
                2,
                vec![1, 1, 9, 3],
                vec![
                    (false, false),
                    (false, false),
                    (false, false),
                    (true, false),
                ],
                2,
            ),
            // A stand-in's ack never counts towards W.
            (
                vec![owner(1), stand_in(4, 2), owner(3)],
                2,
                vec![4, 1, 3],
                vec![(false, false), (false, false), (true, true)],
                2,
            ),
            // N=1: the only owner's ack reaches and completes at once.
            (vec![owner(1)], 1, vec![1], vec![(true, true)], 1),
        ];
        for (targets, w, acks, expected, owners) in cases {
            let mut tally = WriteTally::new(targets.clone(), w);
            let got: Vec<(bool, bool)> = acks
                .iter()
                .map(|&from| {
                    let p = tally.ack(NodeId(from), false);
                    (p.reached, p.complete)
                })
                .collect();
            assert_eq!(got, expected, "targets {targets:?}, W={w}, acks {acks:?}");
            assert_eq!(tally.owners_acked(), owners);
        }
    }

    #[test]
    fn refusals_never_count_and_say_when_w_is_out_of_reach() {
        let mut tally = WriteTally::new(vec![owner(1), owner(2), owner(3)], 2);
        assert!(tally.ack(NodeId(1), false) == WriteProgress::default());
        assert!(tally.can_reach());
        tally.refuse(NodeId(2));
        assert!(tally.can_reach(), "node 3 may still count");
        let last = tally.refuse(NodeId(3));
        assert!(last.complete && !last.reached);
        assert!(!tally.can_reach());
        assert_eq!(
            tally.ack(NodeId(2), true),
            WriteProgress::default(),
            "one answer each"
        );
        assert_eq!(tally.owners_acked(), 1);
        let mut read = ReadTally::new(vec![NodeId(1), NodeId(2), NodeId(3)], 2);
        read.fail(NodeId(2));
        assert!(read.can_reach());
        read.fail(NodeId(3));
        assert!(!read.can_reach());
        assert!(read.record(NodeId(1), None).complete);
    }

    #[test]
    fn a_tally_of_more_targets_than_it_keeps_in_place_counts_each_once() {
        for n in [INLINE_ANSWERS, INLINE_ANSWERS + 1, 3 * INLINE_ANSWERS] {
            let targets = (1..=n as u32).map(owner).collect();
            let w = n / 2 + 1;
            let mut tally = WriteTally::new(targets, w);
            for id in 1..=n as u32 {
                let progress = tally.ack(NodeId(id), false);
                assert_eq!(progress.reached, id as usize == w, "n {n} ack {id}");
                assert_eq!(progress.complete, id as usize == n, "n {n} ack {id}");
                assert_eq!(tally.ack(NodeId(id), false), WriteProgress::default());
            }
            assert!(tally.all_owners_acked(n));
            assert_eq!(tally.owners_acked(), n);
        }
    }

    #[test]
    fn unacked_owners_name_the_owner_behind_a_stand_in() {
        let mut tally = WriteTally::new(vec![owner(1), stand_in(4, 2), owner(3)], 2);
        tally.ack(NodeId(1), true);
        let mut missing: Vec<NodeId> = tally.unacked_owners().collect();
        missing.sort();
        assert_eq!(missing, vec![NodeId(2), NodeId(3)]);
        assert!(tally.existed());
        tally.ack(NodeId(4), false);
        tally.ack(NodeId(3), false);
        assert!(!tally.all_owners_acked(3), "a stand-in took owner 2's copy");
        let mut tally = WriteTally::new(vec![owner(1), owner(2), owner(3)], 2);
        tally.ack(NodeId(1), false);
        tally.refuse(NodeId(2));
        tally.ack(NodeId(3), false);
        assert!(!tally.all_owners_acked(3), "owner 2 refused");
        let mut tally = WriteTally::new(vec![owner(1), owner(2)], 2);
        tally.ack(NodeId(1), false);
        tally.ack(NodeId(2), false);
        assert!(tally.all_owners_acked(2));
        assert!(!tally.all_owners_acked(3), "no target for the third owner");
    }

    fn entry(ts: u64) -> Option<Entry> {
        Some(Entry::value(Version::new(Timestamp(ts), NodeId(1)), "v"))
    }

    #[test]
    fn replies_agree_only_when_they_are_the_same_copy() {
        let tally = |replies: Vec<Option<Entry>>| {
            let asked = (1..=replies.len() as u32).map(NodeId).collect();
            let mut tally = ReadTally::new(asked, 1);
            for (i, entry) in replies.into_iter().enumerate() {
                tally.record(NodeId(i as u32 + 1), entry);
            }
            tally
        };
        assert!(tally(vec![entry(3), entry(3)]).agree());
        assert!(tally(vec![None, None]).agree());
        let split = tally(vec![entry(3), entry(2)]);
        assert!(!split.agree());
        assert_eq!(split.stale(), vec![NodeId(2)]);
        assert!(!tally(vec![entry(3), None]).agree());
        // An expiry's tombstone at the value's own version: not the same
        // copy, yet not stale either.
        let expired = Some(Entry::tombstone(Version::new(Timestamp(3), NodeId(1))));
        let judged = tally(vec![entry(3), expired]);
        assert!(!judged.agree());
        assert!(judged.stale().is_empty());
    }

    #[test]
    fn the_agreed_copy_moved_out_of_a_tally_is_the_newest_it_would_copy() {
        let at = |ts: u64, node: u32| Version::new(Timestamp(ts), NodeId(node));
        let expiring = |ts: u64, expires_at: u64| {
            Some(Entry {
                expires_at: Some(expires_at),
                ..Entry::value(at(ts, 1), "v")
            })
        };
        let counter = |ts: u64| {
            Some(Entry {
                counter: true,
                ..Entry::value(at(ts, 1), "c")
            })
        };
        // (replies, whether they agree on a plain copy)
        let cases: Vec<(Vec<Option<Entry>>, bool)> = vec![
            (vec![], true),
            (vec![None], true),
            (vec![None, None], true),
            (vec![entry(3), entry(3)], true),
            (vec![entry(3), entry(3), entry(3)], true),
            // One version, expiries apart: the same copy, the last wins.
            (vec![expiring(3, 10), expiring(3, 20)], true),
            (vec![expiring(3, 20), expiring(3, 10)], true),
            (vec![Some(Entry::tombstone(at(3, 1))); 2], true),
            (vec![entry(2), entry(3)], false),
            (vec![entry(3), None], false),
            (vec![Some(Entry::tombstone(at(3, 1))), entry(3)], false),
            (vec![counter(3), counter(3)], false),
            (vec![entry(3), counter(3)], false),
        ];
        for (replies, plain) in cases {
            let asked = (1..=replies.len() as u32).map(NodeId).collect();
            let mut tally = ReadTally::new(asked, 0);
            for (i, reply) in replies.iter().enumerate() {
                tally.record(NodeId(i as u32 + 1), reply.clone());
            }
            assert_eq!(tally.agree_on_a_plain_copy(), plain, "{replies:?}");
            if plain {
                let copied = tally.newest();
                assert_eq!(tally.into_agreed(), copied, "{replies:?}");
            }
        }
    }

    #[test]
    fn read_tally_table() {
        // (asked, R, replies, expected (reached, complete) after each, stale)
        type Case = (
            Vec<u32>,
            usize,
            Vec<(u32, Option<Entry>)>,
            Vec<(bool, bool)>,
            Vec<u32>,
        );
        let cases: Vec<Case> = vec![
            (
                vec![1, 2, 3],
                2,
                vec![(1, entry(5)), (2, entry(3)), (3, None)],
                vec![(false, false), (true, false), (false, true)],
                vec![2, 3],
            ),
            // Repeats and strangers are ignored.
            (
                vec![1, 2],
                2,
                vec![(1, entry(1)), (1, entry(9)), (7, entry(9)), (2, entry(1))],
                vec![(false, false), (false, false), (false, false), (true, true)],
                vec![],
            ),
            // Nobody has the key: nothing to repair.
            (
                vec![1, 2],
                1,
                vec![(2, None), (1, None)],
                vec![(true, false), (false, true)],
                vec![],
            ),
        ];
        for (asked, r, replies, expected, stale) in cases {
            let mut tally = ReadTally::new(asked.iter().map(|&n| NodeId(n)).collect(), r);
            let got: Vec<(bool, bool)> = replies
                .iter()
                .map(|(from, e)| {
                    let p = tally.record(NodeId(*from), e.clone());
                    (p.reached, p.complete)
                })
                .collect();
            assert_eq!(got, expected, "asked {asked:?}, R={r}");
            let mut got_stale = tally.stale();
            got_stale.sort();
            assert_eq!(
                got_stale,
                stale.iter().map(|&n| NodeId(n)).collect::<Vec<_>>()
            );
        }
    }
}
