//! The hybrid logical clock that stamps writes.
//!
//! [`HybridClock`] is sans-IO: callers pass the wall time in, so the
//! simulator can skew it. Invariants:
//!
//! * it never goes backwards: every timestamp it issues is larger than every
//!   timestamp it issued or observed before;
//! * it tracks the wall clock: while the wall clock runs ahead of everything
//!   seen, a timestamp's physical part is the wall time;
//! * it refuses to observe a timestamp more than `max_drift` ahead of the
//!   local wall clock, so one runaway node cannot drag the cluster into the
//!   future.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::version::Timestamp;

/// A remote timestamp too far ahead of the local wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {remote_millis} ms is {ahead_millis} ms ahead of the local clock (limit {limit_millis} ms)")]
pub struct ClockDriftError {
    /// The refused timestamp's physical part.
    pub remote_millis: u64,
    /// How far ahead of the local wall clock it is.
    pub ahead_millis: u64,
    /// The configured `max_drift`.
    pub limit_millis: u64,
}

/// A hybrid logical clock (Kulkarni et al.), packed into a [`Timestamp`].
#[derive(Debug, Clone)]
pub struct HybridClock {
    last: Timestamp,
    max_drift_millis: u64,
}

/// Default limit on how far ahead a peer's clock may be: 30 s.
pub const DEFAULT_MAX_DRIFT: Duration = Duration::from_secs(30);

impl HybridClock {
    /// A clock that refuses remote timestamps more than `max_drift` ahead.
    pub fn new(max_drift: Duration) -> Self {
        HybridClock {
            last: Timestamp(0),
            max_drift_millis: max_drift.as_millis() as u64,
        }
    }

    /// The next timestamp, given the wall time in ms since the epoch.
    pub fn tick(&mut self, wall_millis: u64) -> Timestamp {
        let physical = Timestamp::from_millis(wall_millis);
        self.last = if physical > self.last {
            physical
        } else {
            Timestamp(self.last.0 + 1)
        };
        self.last
    }

    /// Moves the clock past `remote`, unless it is too far in the future.
    pub fn observe(&mut self, remote: Timestamp, wall_millis: u64) -> Result<(), ClockDriftError> {
        let ahead = remote.millis().saturating_sub(wall_millis);
        if ahead > self.max_drift_millis {
            return Err(ClockDriftError {
                remote_millis: remote.millis(),
                ahead_millis: ahead,
                limit_millis: self.max_drift_millis,
            });
        }
        if remote > self.last {
            self.last = remote;
        }
        Ok(())
    }

    /// Moves the clock past `seen` with no drift check: for timestamps this
    /// node wrote itself, such as those recovered from its own disk.
    pub fn advance_to(&mut self, seen: Timestamp) {
        self.last = self.last.max(seen);
    }

    /// The last timestamp issued or observed.
    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// The clock's reading at wall time `wall_millis`, without issuing a
    /// timestamp: what a message carries so its receiver learns this
    /// node's time even before it has stamped anything.
    pub fn reading(&self, wall_millis: u64) -> Timestamp {
        self.last.max(Timestamp::from_millis(wall_millis))
    }
}

impl Default for HybridClock {
    fn default() -> Self {
        HybridClock::new(DEFAULT_MAX_DRIFT)
    }
}

/// The real wall clock, in milliseconds since the Unix epoch (0 if the
/// system clock is set before 1970).
pub fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_millisecond_gives_distinct_ordered_timestamps() {
        let mut clock = HybridClock::default();
        let a = clock.tick(1000);
        let b = clock.tick(1000);
        assert!(b > a);
        assert_eq!(a.millis(), 1000);
        assert_eq!(b.millis(), 1000);
    }

    #[test]
    fn follows_the_wall_clock_when_it_is_ahead() {
        let mut clock = HybridClock::default();
        clock.tick(1000);
        assert_eq!(clock.tick(2000), Timestamp::from_millis(2000));
    }

    #[test]
    fn moves_past_observed_timestamps() {
        let mut clock = HybridClock::default();
        clock.tick(1000);
        clock.observe(Timestamp::from_millis(5000), 1000).unwrap();
        assert!(clock.tick(1000) > Timestamp::from_millis(5000));
    }

    #[test]
    fn refuses_runaway_timestamps() {
        let mut clock = HybridClock::new(Duration::from_secs(30));
        let err = clock
            .observe(Timestamp::from_millis(1000 + 30_001), 1000)
            .unwrap_err();
        assert_eq!(err.ahead_millis, 30_001);
        assert_eq!(clock.last(), Timestamp(0));
        clock
            .observe(Timestamp::from_millis(1000 + 30_000), 1000)
            .unwrap();
    }

    proptest! {
        #[test]
        fn never_goes_backwards(steps in proptest::collection::vec((any::<bool>(), 0u64..10_000, 0u64..10_000), 1..200)) {
            let mut clock = HybridClock::new(Duration::from_secs(3600));
            let mut previous = Timestamp(0);
            for (is_tick, wall, remote) in steps {
                if is_tick {
                    let ts = clock.tick(wall);
                    prop_assert!(ts > previous);
                    previous = ts;
                } else {
                    let _ = clock.observe(Timestamp::from_millis(remote), wall);
                    prop_assert!(clock.last() >= previous);
                    previous = clock.last();
                }
            }
        }
    }
}
