//! [`RateLimitedLog`]: warnings that strangers can trigger (refused
//! handshakes, clients closed for their output) logged at a bounded rate,
//! so that a flood of them cannot flood the log.

use std::time::{Duration, Instant};

/// Lines logged per second, at most.
const LINES_PER_SECOND: u32 = 1;

/// At most [`LINES_PER_SECOND`] warnings a second; the next line says how
/// many were left out. Counts every event, logged or not.
#[derive(Debug)]
pub(crate) struct RateLimitedLog {
    window: Instant,
    logged: u32,
    suppressed: u64,
    total: u64,
}

impl RateLimitedLog {
    pub fn new() -> RateLimitedLog {
        RateLimitedLog {
            window: Instant::now(),
            logged: 0,
            suppressed: 0,
            total: 0,
        }
    }

    /// Counts one event and logs `line()` at WARN if the rate allows; the
    /// line is only built when it is logged.
    pub fn note(&mut self, line: impl FnOnce() -> String) {
        self.total += 1;
        let now = Instant::now();
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.logged = 0;
        }
        if self.logged >= LINES_PER_SECOND {
            self.suppressed += 1;
            return;
        }
        self.logged += 1;
        match std::mem::take(&mut self.suppressed) {
            0 => log::warn!("{}", line()),
            left_out => log::warn!("{} ({left_out} more like it since the last line)", line()),
        }
    }

    /// Events noted since start.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_everything_and_builds_lines_only_when_logging() {
        let mut log = RateLimitedLog::new();
        let mut built = 0;
        for _ in 0..1000 {
            log.note(|| {
                built += 1;
                "refused".to_string()
            });
        }
        assert_eq!(log.total(), 1000);
        // One line in the first second (built only if a logger wants it).
        assert!(built <= 1, "{built} lines built");
        assert_eq!((log.logged, log.suppressed), (1, 999));
    }
}
