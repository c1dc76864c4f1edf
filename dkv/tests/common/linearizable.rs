//! The outside consistency check: is one key's history linearizable as a
//! register? Stateright's `LinearizabilityTester` decides it; this module
//! turns a history into its invocations and returns, shared by the
//! simulator (`simulation.rs`) and the real-process fault suite
//! (`fault_process.rs`), each of which says what its requests became:
//!
//! * an acknowledged write or delete: a write of its value (a delete
//!   writes "nothing"), invoked and returned where it was;
//! * a write whose outcome its client does not know: a write invoked where
//!   it was and never returned, on a thread of its own, so the checker may
//!   let it take effect at any later point or not at all. One whose value
//!   no read that ended after it began returned is left out: a read that
//!   could follow it in a linearization ends after it began, so none
//!   would see it, and a linearization that lets it take effect may as
//!   well not. Leaving it out changes no verdict and keeps the search
//!   small;
//! * a write that provably applied nothing, and a read that failed:
//!   nothing (the callers leave them out).
//!
//! A linearizable history takes milliseconds; one that is not can send the
//! search exponential, so it gets [`SEARCH_LIMIT`] (`DKV_LIN_SECS`
//! overrides it), and no verdict by then counts as a failure.

use std::sync::mpsc;
use std::time::Duration;

use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

/// A value of the register: `None` is a missing or deleted key.
pub type Value = Option<String>;

/// What one request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A read that returned this.
    Read(Value),
    /// A write (or delete) of this.
    Write(Value),
}

/// One request of a key's history.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The sequential client that sent it (below 2^32); a client has at
    /// most one request in flight.
    pub client: u64,
    pub op: Op,
    /// When it was sent, on a clock (or event counter) shared by all
    /// clients.
    pub invoked: u64,
    /// When its answer came; `None` for a write whose outcome is unknown.
    pub returned: Option<u64>,
}

/// Threads for writes of unknown outcome start here.
const GHOST_THREADS: u64 = 1 << 32;

/// How long the search may take before the history counts as failed: far
/// above what a linearizable history takes.
const SEARCH_LIMIT: Duration = Duration::from_secs(10);

type Tester = LinearizabilityTester<u64, Register<Value>>;

enum Event {
    Invoke(u64, RegisterOp<Value>),
    Return(u64, RegisterRet<Value>),
}

/// `Err` saying why when the history is not linearizable, is malformed,
/// or the search did not finish in time.
pub fn check(operations: &[Operation]) -> Result<(), String> {
    // Whether some read that ended after `since` returned `value`.
    let read_after = |value: &Value, since: u64| {
        operations
            .iter()
            .any(|o| o.op == Op::Read(value.clone()) && o.returned.is_some_and(|r| r > since))
    };
    // (time, returns after invocations at the same time, event)
    let mut events: Vec<(u64, u8, Event)> = Vec::new();
    for (index, operation) in operations.iter().enumerate() {
        let thread = operation.client;
        debug_assert!(thread < GHOST_THREADS, "client ids stay below 2^32");
        match (&operation.op, operation.returned) {
            (Op::Read(value), Some(returned)) => {
                events.push((
                    operation.invoked,
                    0,
                    Event::Invoke(thread, RegisterOp::Read),
                ));
                let ret = RegisterRet::ReadOk(value.clone());
                events.push((returned, 1, Event::Return(thread, ret)));
            }
            (Op::Read(_), None) => return Err("a read without an answer".to_string()),
            (Op::Write(value), Some(returned)) => {
                let write = RegisterOp::Write(value.clone());
                events.push((operation.invoked, 0, Event::Invoke(thread, write)));
                events.push((returned, 1, Event::Return(thread, RegisterRet::WriteOk)));
            }
            (Op::Write(value), None) => {
                if !read_after(value, operation.invoked) {
                    continue;
                }
                let ghost = GHOST_THREADS + index as u64;
                let write = RegisterOp::Write(value.clone());
                events.push((operation.invoked, 0, Event::Invoke(ghost, write)));
            }
        }
    }
    // Equal times count as overlapping: invocations go first.
    events.sort_by_key(|(at, order, _)| (*at, *order));
    let mut tester = Tester::new(Register(None));
    for (_, _, event) in &events {
        let fed = match event {
            Event::Invoke(thread, op) => tester.on_invoke(*thread, op.clone()).map(|_| ()),
            Event::Return(thread, ret) => tester.on_return(*thread, ret.clone()).map(|_| ()),
        };
        fed.map_err(|e| format!("malformed history: {e}"))?;
    }
    let ops = tester.len();
    // The search recurses once per operation: give it room, and a limit.
    let (done, verdict) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(move || {
            let _ = done.send(tester.is_consistent());
        })
        .map_err(|e| format!("checker thread: {e}"))?;
    let limit = std::env::var("DKV_LIN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(SEARCH_LIMIT, Duration::from_secs);
    match verdict.recv_timeout(limit) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("not linearizable ({ops} operations)")),
        Err(_) => Err(format!("no verdict within {limit:?} ({ops} operations)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: u64, op: Op, invoked: u64, returned: Option<u64>) -> Operation {
        Operation {
            client,
            op,
            invoked,
            returned,
        }
    }

    fn value(v: &str) -> Value {
        Some(v.to_string())
    }

    #[test]
    fn a_read_after_a_write_must_see_it() {
        let write = op(0, Op::Write(value("a")), 1, Some(2));
        assert!(check(&[write.clone(), op(1, Op::Read(value("a")), 3, Some(4))]).is_ok());
        assert!(check(&[write, op(1, Op::Read(None), 3, Some(4))]).is_err());
    }

    #[test]
    fn reads_do_not_go_back_while_a_write_is_in_flight() {
        let in_flight = op(0, Op::Write(value("a")), 1, None);
        let either = [
            in_flight.clone(),
            op(1, Op::Read(None), 3, Some(4)),
            op(2, Op::Read(value("a")), 5, Some(6)),
        ];
        assert!(check(&either).is_ok());
        let back = [
            in_flight,
            op(1, Op::Read(value("a")), 3, Some(4)),
            op(2, Op::Read(None), 5, Some(6)),
        ];
        assert!(check(&back).is_err());
    }

    #[test]
    fn a_long_sequential_history_is_checked_quickly() {
        let mut history = Vec::new();
        let mut at = 0;
        for i in 0..500 {
            history.push(op(0, Op::Write(value(&i.to_string())), at, Some(at + 2)));
            history.push(op(1, Op::Read(value(&i.to_string())), at + 3, Some(at + 5)));
            history.push(op(2, Op::Read(value(&i.to_string())), at + 4, Some(at + 6)));
            at += 10;
        }
        let started = std::time::Instant::now();
        let verdict = check(&history);
        assert!(verdict.is_ok(), "{verdict:?}");
        println!("1500 operations checked in {:?}", started.elapsed());
    }
}
