//! Per-command counters and latency histograms, for `INFO commandstats`
//! and `INFO latencystats`, kept by the executor (one thread, no atomics).
//!
//! A command's time runs from when the executor reads it to when its reply
//! is rendered, so a coordinated command counts the round trips to its
//! replicas. Commands answered at once are timed one in sixteen (a clock
//! read costs about what a GET does), the sampled time standing for the
//! others in `usec`; commands that wait are always timed. Latencies go into a log-linear histogram (8 buckets per power
//! of two, so a percentile is within 12.5%), allocated for a command the
//! first time it runs.

use std::fmt::Write;

use crate::command::table::TABLE;

/// Sub-buckets per power of two.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Values below this are their own bucket.
const LINEAR: u64 = 2 * SUB as u64;
const BUCKETS: usize = LINEAR as usize + (64 - SUB_BITS as usize - 1) * SUB;

/// A histogram of microseconds.
#[derive(Debug, Clone)]
struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }

    fn bucket(value: u64) -> usize {
        if value < LINEAR {
            return value as usize;
        }
        let exponent = 63 - value.leading_zeros();
        let sub = (value >> (exponent - SUB_BITS)) as usize & (SUB - 1);
        LINEAR as usize + (exponent - SUB_BITS - 1) as usize * SUB + sub
    }

    /// The smallest value bucket `index` holds.
    fn floor(index: usize) -> u64 {
        if index < LINEAR as usize {
            return index as u64;
        }
        let past = index - LINEAR as usize;
        let exponent = (past / SUB) as u32 + SUB_BITS + 1;
        let sub = (past % SUB) as u64;
        (1 << exponent) | (sub << (exponent - SUB_BITS))
    }

    fn record(&mut self, value: u64) {
        self.counts[Self::bucket(value)] += 1;
        self.total += 1;
    }

    /// The value at percentile `p` (0..=100): the low edge of its bucket.
    fn percentile(&self, p: f64) -> u64 {
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::floor(index);
            }
        }
        0
    }
}

#[derive(Debug, Clone, Default)]
struct CommandStat {
    calls: u64,
    usec: u64,
    rejected: u64,
    failed: u64,
    latency: Option<Histogram>,
}

/// Every command's counters, by its place in the command table.
#[derive(Debug, Clone)]
pub(crate) struct CommandStats {
    per: Vec<CommandStat>,
}

impl Default for CommandStats {
    fn default() -> Self {
        CommandStats {
            per: vec![CommandStat::default(); TABLE.len()],
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Refused before it ran (arguments, authentication).
    Rejected,
    /// Ran and answered an error.
    Failed,
    /// Ran and answered.
    Ok,
}

impl Outcome {
    /// The outcome a reply shows (an error line starts with `-`).
    pub fn of_reply(reply: &[u8]) -> Outcome {
        if reply.first() == Some(&b'-') {
            Outcome::Failed
        } else {
            Outcome::Ok
        }
    }
}

impl CommandStats {
    /// Records one call of the command at `index` in the table, with its
    /// time if it was timed: a call timed as one of every `weight` stands
    /// for that many in the total time (the histogram takes it once, which
    /// leaves its percentiles as they are).
    pub fn record(&mut self, index: usize, usec: Option<u64>, weight: u64, outcome: Outcome) {
        let Some(stat) = self.per.get_mut(index) else {
            return;
        };
        match outcome {
            Outcome::Rejected => {
                stat.rejected += 1;
                return;
            }
            Outcome::Failed => stat.failed += 1,
            Outcome::Ok => {}
        }
        stat.calls += 1;
        if let Some(usec) = usec {
            stat.usec += usec.saturating_mul(weight);
            stat.latency.get_or_insert_with(Histogram::new).record(usec);
        }
    }

    /// Forgets everything (`CONFIG RESETSTAT`).
    pub fn reset(&mut self) {
        *self = CommandStats::default();
    }

    /// `INFO commandstats` lines, as Redis writes them.
    pub fn render_commandstats(&self, out: &mut String) {
        for (spec, stat) in TABLE.iter().zip(&self.per) {
            if stat.calls == 0 && stat.rejected == 0 {
                continue;
            }
            let per_call = if stat.calls == 0 {
                0.0
            } else {
                stat.usec as f64 / stat.calls as f64
            };
            let _ = write!(
                out,
                "cmdstat_{}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                spec.text, stat.calls, stat.usec, stat.rejected, stat.failed
            );
        }
    }

    /// `INFO latencystats` lines: p50, p99 and p99.9 in microseconds.
    pub fn render_latencystats(&self, out: &mut String) {
        for (spec, stat) in TABLE.iter().zip(&self.per) {
            let Some(latency) = &stat.latency else {
                continue;
            };
            let _ = write!(
                out,
                "latency_percentiles_usec_{}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
                spec.text,
                latency.percentile(50.0) as f64,
                latency.percentile(99.0) as f64,
                latency.percentile(99.9) as f64
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(text: &str) -> Option<usize> {
        TABLE.iter().position(|spec| spec.text == text)
    }

    #[test]
    fn buckets_are_contiguous_and_their_floors_round_trip() {
        for index in 0..BUCKETS - 1 {
            let floor = Histogram::floor(index);
            assert_eq!(Histogram::bucket(floor), index, "floor {floor}");
            assert!(Histogram::floor(index + 1) > floor);
        }
        assert_eq!(Histogram::bucket(u64::MAX), BUCKETS - 1);
        // Within 12.5% of the value.
        for value in [17u64, 100, 1_000, 123_456, 10_000_000] {
            let floor = Histogram::floor(Histogram::bucket(value));
            assert!(floor <= value && value - floor <= value / 8, "{value}");
        }
    }

    #[test]
    fn stats_render_as_redis_writes_them() {
        let mut stats = CommandStats::default();
        let get = index_of("get").unwrap();
        for usec in 1..=100 {
            stats.record(get, Some(usec), 1, Outcome::Ok);
        }
        stats.record(get, Some(5), 1, Outcome::Failed);
        stats.record(get, None, 1, Outcome::Rejected);
        // An untimed call counts, adds no time.
        let set = index_of("set").unwrap();
        stats.record(set, None, 16, Outcome::Ok);
        stats.record(set, Some(10), 16, Outcome::Ok);
        let mut out = String::new();
        stats.render_commandstats(&mut out);
        assert_eq!(
            out,
            "cmdstat_get:calls=101,usec=5055,usec_per_call=50.05,rejected_calls=1,failed_calls=1\r\n\
             cmdstat_set:calls=2,usec=160,usec_per_call=80.00,rejected_calls=0,failed_calls=0\r\n"
        );
        let mut out = String::new();
        stats.render_latencystats(&mut out);
        assert!(
            out.starts_with("latency_percentiles_usec_get:p50=48.000,p99=96.000,p99.9=96.000"),
            "{out}"
        );
        stats.reset();
        let mut out = String::new();
        stats.render_commandstats(&mut out);
        assert!(out.is_empty());
    }
}
