//! What this node knows of its peers' clocks, and whether its own clock is
//! the odd one out.
//!
//! Every envelope carries its sender's hybrid-clock reading. The node keeps
//! an offset per peer (the peer's reading minus this node's wall clock
//! when it arrived): the largest of the readings of the last two windows
//! of [`OFFSET_WINDOW_MS`], since a message's time in flight only ever
//! makes the peer look behind (a node resuming from a pause reads a
//! backlog of old messages, and must not take them for a slow clock). When most of the peers heard from
//! recently are more than `max_clock_drift` behind, this node's clock is
//! *ahead*: it stops coordinating writes (its stamps would be refused by
//! its peers, and its own copy would shadow later writes), and says so.
//! When more than half of *all* its peers are more than the drift ahead,
//! its clock is *behind*: it takes the peers' time as its reference (so
//! their writes and clocks are not refused, and its own stamps follow
//! theirs). The two tests differ on purpose: refusing to write is the safe
//! direction, so what is heard suffices; following other clocks is not, so
//! a runaway peer heard first, or alone, cannot drag this node along.
//!
//! Deadlines (the client's, in wall-clock ms) are judged by the *cluster*
//! time: this node's wall clock moved by the majority's offset whenever it
//! is ahead or behind, so a node a minute off neither refuses every
//! deadline nor honours one a minute late.
//!
//! Readings do not expire: a clock's offset moves by parts per million, so
//! the last estimate of a peer that went quiet still says where it stands.
//! Until it has heard from most of the peers it can reach (just after it
//! starts, say), a node does not know whether its own clock is the odd one
//! out, and stamps no writes.

use std::collections::BTreeMap;

use crate::version::{NodeId, Timestamp};

/// How this node's clock stands against its peers'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSkew {
    /// Within the drift limit of most peers (or no peer heard from).
    InStep,
    /// Ahead of most peers by about this many milliseconds.
    Ahead(u64),
    /// Behind most peers by about this many milliseconds.
    Behind(u64),
}

/// How long one window of offset readings lasts (ms of this node's wall
/// clock): a peer's offset is the largest reading of the current window
/// and the one before.
pub(crate) const OFFSET_WINDOW_MS: u64 = 2000;

/// Two middle clocks further apart than this leave the agreed time
/// unknown (see [`PeerClocks::disputed`]).
pub(crate) const DISPUTED_MS: u64 = 1000;

/// One peer's recent readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Readings {
    /// When the current window began (this node's wall ms).
    since: u64,
    current: i64,
    previous: Option<i64>,
}

impl Readings {
    fn record(&mut self, offset: i64, wall: u64) {
        if wall >= self.since.saturating_add(OFFSET_WINDOW_MS) || wall < self.since {
            // A window passed (or this clock stepped back): roll over,
            // keeping the last window only if it just ended.
            let just_ended = wall < self.since.saturating_add(2 * OFFSET_WINDOW_MS);
            self.previous = (just_ended && wall >= self.since).then_some(self.current);
            self.current = offset;
            self.since = wall;
        } else {
            self.current = self.current.max(offset);
        }
    }

    /// Whether recording `offset` at `wall` would change nothing: it
    /// falls in the current window and is no larger than its largest.
    fn holds(&self, offset: i64, wall: u64) -> bool {
        wall >= self.since
            && wall < self.since.saturating_add(OFFSET_WINDOW_MS)
            && offset <= self.current
    }

    fn estimate(&self) -> i64 {
        self.previous.map_or(self.current, |p| p.max(self.current))
    }
}

/// What this node knows of every peer's clock.
#[derive(Debug, Clone)]
pub(crate) struct PeerClocks {
    /// Each peer's clock minus this node's wall clock, in ms, as its
    /// readings estimate it (see [`Readings`]).
    offsets: BTreeMap<NodeId, i64>,
    readings: BTreeMap<NodeId, Readings>,
    /// How many peers there are: following their time needs more than
    /// half of all of them, heard or not.
    peers: usize,
    max_drift_ms: u64,
    /// [`PeerClocks::skew`] as of the last reading (it is asked on every
    /// message sent).
    skew: ClockSkew,
    /// [`PeerClocks::middle_offsets`] as of the last change of an offset
    /// (it is asked on every read and write).
    middle: (i64, i64),
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

impl PeerClocks {
    pub fn new(peers: usize, max_drift_ms: u64) -> PeerClocks {
        PeerClocks {
            offsets: BTreeMap::new(),
            readings: BTreeMap::new(),
            peers,
            max_drift_ms,
            skew: ClockSkew::InStep,
            middle: (0, 0),
        }
    }

    /// Records `from`'s clock reading, received at this node's `wall`
    /// time.
    pub fn observe(&mut self, from: NodeId, clock: Timestamp, wall: u64) {
        let reading = clock.millis() as i64 - wall as i64;
        // Most readings fall in the current window and are no larger than
        // its largest: the estimate stays, and nothing else moves (one
        // lookup per message instead of two).
        if let Some(known) = self.readings.get(&from) {
            if known.holds(reading, wall) {
                debug_assert_eq!(self.offsets.get(&from), Some(&known.estimate()));
                return;
            }
        }
        let readings = self.readings.entry(from).or_insert(Readings {
            since: wall,
            current: reading,
            previous: None,
        });
        readings.record(reading, wall);
        let offset_ms = readings.estimate();
        let side = |offset: i64| {
            let drift = self.max_drift_ms as i64;
            (offset > drift) as i8 - (offset < -drift) as i8
        };
        let previous = self.offsets.insert(from, offset_ms);
        if previous == Some(offset_ms) {
            // Most readings leave the estimate where it was: nothing that
            // depends on the offsets changes.
            debug_assert_eq!(self.middle, self.compute_middle_offsets());
            return;
        }
        self.middle = self.compute_middle_offsets();
        // In step, the verdict depends only on which side of the drift
        // limit each peer is: a reading on the same side changes nothing.
        let same_side = previous.is_some_and(|p| side(p) == side(offset_ms));
        if !(same_side && self.skew == ClockSkew::InStep) {
            self.skew = self.judge();
        }
        debug_assert_eq!(self.skew, self.judge());
    }

    /// Where this node's clock stands.
    pub fn skew(&self) -> ClockSkew {
        self.skew
    }

    fn judge(&self) -> ClockSkew {
        let recent: Vec<i64> = self.offsets.values().copied().collect();
        let drift = self.max_drift_ms as i64;
        let mut behind_by: Vec<u64> = recent
            .iter()
            .filter(|&&o| o < -drift)
            .map(|&o| o.unsigned_abs())
            .collect();
        let mut ahead_by: Vec<u64> = recent
            .iter()
            .filter(|&&o| o > drift)
            .map(|&o| o.unsigned_abs())
            .collect();
        // Peers behind this node mean this node is ahead, and the other
        // way round (see the module doc for which majority decides).
        if behind_by.len() * 2 > recent.len() {
            ClockSkew::Ahead(median(&mut behind_by))
        } else if ahead_by.len() * 2 > self.peers {
            ClockSkew::Behind(median(&mut ahead_by))
        } else {
            ClockSkew::InStep
        }
    }

    /// Whether `peer`'s clock has been heard since this node started.
    pub fn heard(&self, peer: NodeId) -> bool {
        self.offsets.contains_key(&peer)
    }

    /// Whether every peer's clock has been heard since this node started.
    pub fn heard_every_peer(&self) -> bool {
        // Readings come only from peers, and each stays once heard.
        debug_assert!(self.offsets.len() <= self.peers);
        self.offsets.len() >= self.peers
    }

    /// Whether any peer's clock has been heard.
    pub fn heard_any(&self) -> bool {
        !self.offsets.is_empty()
    }

    /// The wall time this node's drift checks and stamps go by: its own,
    /// or its peers' when its own is behind theirs.
    pub fn reference_wall(&self, wall: u64) -> u64 {
        match self.skew() {
            ClockSkew::Behind(by) => wall.saturating_add(by),
            ClockSkew::InStep | ClockSkew::Ahead(_) => wall,
        }
    }

    /// The time expiries go by: this node's wall clock moved by the
    /// median of its peers' offsets and its own (zero), so every node
    /// judges an expiry at nearly the same moment whichever way the clocks
    /// are off, within the drift limit or beyond it (a clock the others
    /// refuse to follow is outvoted). Alone, its own clock.
    pub fn agreed_wall(&self, wall: u64) -> u64 {
        if self.offsets.is_empty() {
            return wall;
        }
        // Of an even count, the middle one nearer zero (this node's own
        // clock), so a node that has heard one peer does not jump to that
        // peer's clock, however far off it is.
        let (low, high) = self.middle_offsets();
        let median = if low.unsigned_abs() <= high.unsigned_abs() {
            low
        } else {
            high
        };
        wall.saturating_add_signed(median)
    }

    /// How far apart the two middle clocks are when this node knows an
    /// even number of clocks (its own included) and they are more than
    /// [`DISPUTED_MS`] apart: a median between them would be a guess, so
    /// [`PeerClocks::agreed_wall`] is not to be trusted for an expiry.
    pub fn disputed(&self) -> Option<u64> {
        let (low, high) = self.middle_offsets();
        let spread = high.abs_diff(low);
        (spread > DISPUTED_MS).then_some(spread)
    }

    /// The middle two of every known offset and this node's own (zero), in
    /// order; of an odd count, the median twice. Kept since the last change
    /// of an offset.
    fn middle_offsets(&self) -> (i64, i64) {
        debug_assert_eq!(self.middle, self.compute_middle_offsets());
        self.middle
    }

    /// [`PeerClocks::middle_offsets`] worked out: no allocation for a
    /// cluster of up to 32 nodes.
    fn compute_middle_offsets(&self) -> (i64, i64) {
        let n = self.offsets.len() + 1;
        let middle = |values: &mut [i64]| {
            values.sort_unstable();
            (values[(n - 1) / 2], values[n / 2])
        };
        let mut small = [0i64; 32];
        if n <= small.len() {
            for (slot, &offset) in small.iter_mut().zip(self.offsets.values()) {
                *slot = offset;
            }
            middle(&mut small[..n])
        } else {
            let mut values: Vec<i64> = self.offsets.values().copied().collect();
            values.push(0);
            middle(&mut values)
        }
    }

    /// The cluster's wall time, as best this node can tell: its own, moved
    /// by the majority's offset when it is ahead or behind.
    pub fn cluster_wall(&self, wall: u64) -> u64 {
        match self.skew() {
            ClockSkew::Behind(by) => wall.saturating_add(by),
            ClockSkew::Ahead(by) => wall.saturating_sub(by),
            ClockSkew::InStep => wall,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clocks(readings: &[(u32, i64)]) -> PeerClocks {
        let peers = readings.len().max(2);
        let mut c = PeerClocks::new(peers, 30_000);
        for &(id, offset) in readings {
            let wall = 1_000_000_000;
            let clock = Timestamp::from_millis((wall as i64 + offset) as u64);
            c.observe(NodeId(id), clock, wall);
        }
        c
    }

    proptest::proptest! {
        /// `observe` skips a reading that `holds` says changes nothing:
        /// recording it must indeed leave the readings as they were.
        #[test]
        fn a_reading_that_holds_changes_nothing(
            since in 0u64..10_000,
            current in -5_000i64..5_000,
            previous in proptest::option::of(-5_000i64..5_000),
            offset in -6_000i64..6_000,
            wall in 0u64..20_000,
        ) {
            let before = Readings { since, current, previous };
            let mut after = before;
            after.record(offset, wall);
            if before.holds(offset, wall) {
                proptest::prop_assert_eq!(after, before);
            }
        }
    }

    #[test]
    fn every_peer_is_heard_once_each_has_been_heard_and_stays_so() {
        let mut c = PeerClocks::new(2, 30_000);
        let wall = 1_000_000_000;
        assert!(!c.heard_every_peer());
        for _ in 0..3 {
            c.observe(NodeId(2), Timestamp::from_millis(wall), wall);
        }
        assert!(!c.heard_every_peer(), "one peer heard three times");
        c.observe(NodeId(3), Timestamp::from_millis(wall - 5), wall);
        assert!(c.heard_every_peer());
        c.observe(NodeId(3), Timestamp::from_millis(wall), wall + 120_000);
        assert!(c.heard_every_peer());
    }

    #[test]
    fn a_backlog_of_late_messages_does_not_make_a_peer_look_behind() {
        let mut c = PeerClocks::new(2, 30_000);
        let at = |c: &mut PeerClocks, wall: u64, offset: i64| {
            c.observe(
                NodeId(2),
                Timestamp::from_millis((wall as i64 + offset) as u64),
                wall,
            );
            c.agreed_wall(1_000_000) as i64 - 1_000_000
        };
        let base = 1_000_000_000;
        assert_eq!(at(&mut c, base, -20), 0); // a tie keeps this clock
        c.observe(NodeId(3), Timestamp::from_millis(base - 20), base);
        // Peers 2 and 3 run 20 ms behind; after a 500 ms pause their
        // queued messages read 500 ms behind, which changes nothing.
        assert_eq!(at(&mut c, base + 600, -520), -20);
        assert_eq!(at(&mut c, base + 1000, -30), -20);
        // Two windows later the old readings are gone: a peer whose clock
        // really went back is believed.
        at(&mut c, base + 2 * OFFSET_WINDOW_MS + 10, -400);
        c.observe(
            NodeId(3),
            Timestamp::from_millis(base + 2 * OFFSET_WINDOW_MS + 10 - 400),
            base + 2 * OFFSET_WINDOW_MS + 10,
        );
        assert_eq!(at(&mut c, base + 4 * OFFSET_WINDOW_MS + 20, -400), -400);
    }

    #[test]
    fn the_agreed_time_is_the_median_and_a_tie_keeps_this_clock() {
        let wall = 1_000_000_000;
        // (peer offsets, agreed offset)
        let cases: &[(&[(u32, i64)], i64)] = &[
            (&[], 0),
            // One peer a minute ahead (a node just restarted, say): a tie
            // between it and this clock keeps this clock.
            (&[(2, 60_000)], 0),
            (&[(2, -40)], 0),
            (&[(2, 600), (3, 60_000)], 600),
            (&[(2, -600), (3, -700), (4, 60_000)], 0),
            (&[(2, 5), (3, 9), (4, 60_000), (5, 70_000)], 9),
        ];
        for &(readings, offset) in cases {
            let agreed = clocks(readings).agreed_wall(wall) as i64 - wall as i64;
            assert_eq!(agreed, offset, "{readings:?}");
        }
        // A tie between clocks far apart is a dispute, not a time.
        assert_eq!(clocks(&[(2, 60_000)]).disputed(), Some(60_000));
        assert_eq!(clocks(&[(2, -40)]).disputed(), None);
        assert_eq!(clocks(&[(2, 600), (3, 60_000)]).disputed(), None);
    }

    #[test]
    fn a_majority_decides_which_clock_is_off() {
        // (peer offsets, verdict)
        let cases: &[(&[(u32, i64)], ClockSkew)] = &[
            (&[], ClockSkew::InStep),
            (&[(2, 5), (3, -4_000)], ClockSkew::InStep),
            // One peer a minute ahead of two: that peer is off, not us.
            (&[(2, 0), (3, 60_000)], ClockSkew::InStep),
            (&[(2, -60_000), (3, -61_000)], ClockSkew::Ahead(61_000)),
            (
                &[(2, 60_000), (3, 60_500), (4, 59_000), (5, 2)],
                ClockSkew::Behind(60_000),
            ),
        ];
        for (readings, verdict) in cases {
            assert_eq!(clocks(readings).skew(), *verdict, "{readings:?}");
        }
    }

    #[test]
    fn one_runaway_peer_heard_first_decides_nothing() {
        let mut c = PeerClocks::new(2, 30_000);
        assert!(!c.heard_any());
        c.observe(NodeId(2), Timestamp::from_millis(10_000_000_000), 1_000_000);
        assert!(c.heard(NodeId(2)) && !c.heard(NodeId(3)));
        assert_eq!(c.skew(), ClockSkew::InStep);
        assert_eq!(c.reference_wall(1_000_000), 1_000_000);
    }

    #[test]
    fn behind_follows_the_peers_and_a_reading_two_windows_later_replaces_the_old() {
        let mut c = clocks(&[(2, 60_000), (3, 60_000)]);
        assert_eq!(c.skew(), ClockSkew::Behind(60_000));
        assert_eq!(c.reference_wall(5), 60_005);
        let later = 1_000_000_000 + 2 * OFFSET_WINDOW_MS;
        c.observe(NodeId(3), Timestamp::from_millis(later), later);
        assert_eq!(c.skew(), ClockSkew::InStep);
        assert_eq!(c.reference_wall(5), 5);
    }

    #[test]
    fn the_cluster_wall_is_the_majoritys_whichever_way_this_clock_is_off() {
        let wall = 1_000_000_000;
        assert_eq!(
            clocks(&[(2, 60_000), (3, 60_000)]).cluster_wall(wall),
            wall + 60_000
        );
        assert_eq!(
            clocks(&[(2, -60_000), (3, -60_000)]).cluster_wall(wall),
            wall - 60_000
        );
        assert_eq!(clocks(&[(2, 5), (3, -5)]).cluster_wall(wall), wall);
    }
}
