//! The outside consistency check: is one key's history linearizable as a
//! register? Stateright's `LinearizabilityTester` decides it; this module
//! only turns the simulator's records into its invocations and returns.
//!
//! What each record becomes:
//!
//! * an acknowledged write or delete: a write of its value (a delete
//!   writes "nothing") invoked and returned where it was;
//! * a write whose outcome the client does not know (an error that may
//!   have reached replicas, a crashed coordinator, a client that gave up):
//!   a write invoked where it was and never returned, on a thread of its
//!   own, so the checker may let it take effect at any later point or not
//!   at all;
//! * a write that provably applied nothing (refused for its deadline, for
//!   its coordinator's clock, or at once for too few replicas up): nothing;
//!   nor does a write of unknown outcome whose value nobody read (values
//!   are unique: a linearization that lets it take effect must overwrite
//!   it before any read, so leaving it out changes no verdict, and keeps
//!   the search small);
//! * a successful read: a read returning what it returned; a failed one:
//!   nothing.
//!
//! Requests at `ONE` are not meant to be linearizable and are left out.
//!
//! A linearizable history takes milliseconds; one that is not can send the
//! search exponential, so it gets [`SEARCH_LIMIT`] (`DKV_LIN_SECS`
//! overrides it) and no verdict by then fails the seed with its history.

use std::sync::mpsc;
use std::time::Duration;

use dkv::node::{Consistency, OpError, OpReply};
use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

use super::Record;

type Value = Option<String>;
type Tester = LinearizabilityTester<u64, Register<Value>>;

/// Threads for requests without a sequential client start here.
const LONE_THREADS: u64 = 1 << 32;

/// How long the checker may search before the history counts as failed:
/// far above what a linearizable history takes.
const SEARCH_LIMIT: Duration = Duration::from_secs(10);

enum Event {
    Invoke(u64, RegisterOp<Value>),
    Return(u64, RegisterRet<Value>),
}

fn text(value: &Option<Vec<u8>>) -> Value {
    value
        .as_ref()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Whether an error means the write was applied nowhere.
fn applied_nothing(error: &OpError) -> bool {
    match error {
        OpError::DeadlinePassed
        | OpError::ClockAhead { .. }
        | OpError::ClockUnknown { .. }
        | OpError::BadConsistency(..) => true,
        // Too few replicas up when it started: it was sent nowhere.
        OpError::Unavailable {
            required,
            reachable,
            ..
        } => reachable < required,
        _ => false,
    }
}

/// The events of `key`'s history, in the order they happened.
fn events(records: &[Record], key: &[u8]) -> Vec<(u64, Event)> {
    let read: Vec<&Vec<u8>> = records
        .iter()
        .filter(|r| r.key == key && r.op == "get")
        .filter_map(|r| match &r.result {
            Some(Ok(OpReply::Value { value, .. })) => value.as_ref(),
            _ => None,
        })
        .collect();
    let mut events = Vec::new();
    for (index, record) in records.iter().enumerate() {
        if record.key != key || record.consistency == Consistency::One {
            continue;
        }
        let own_thread = LONE_THREADS + index as u64;
        let thread = record.client.map_or(own_thread, |c| c as u64);
        // A reply after the client gave up never reached it.
        let seen = !record.gave_up && !record.coordinator_crashed;
        if record.op == "get" {
            if let (true, Some(Ok(OpReply::Value { value, .. })), Some(returned)) =
                (seen, &record.result, record.returned)
            {
                events.push((record.invoked, Event::Invoke(thread, RegisterOp::Read)));
                events.push((
                    returned,
                    Event::Return(thread, RegisterRet::ReadOk(text(value))),
                ));
            }
            continue;
        }
        let write = RegisterOp::Write(text(&record.value));
        match (&record.result, record.returned) {
            (Some(Ok(OpReply::Written { .. })), Some(returned)) if seen => {
                events.push((record.invoked, Event::Invoke(thread, write)));
                events.push((returned, Event::Return(thread, RegisterRet::WriteOk)));
            }
            (Some(Err(error)), _) if seen && applied_nothing(error) => {}
            _ if record.value.as_ref().is_some_and(|v| !read.contains(&v)) => {}
            _ => events.push((record.invoked, Event::Invoke(own_thread, write))),
        }
    }
    events.sort_by_key(|(at, _)| *at);
    events
}

/// `Err` with the history when `key`'s history is not linearizable (or
/// the search did not finish within [`SEARCH_LIMIT`]).
pub fn check(records: &[Record], key: &[u8]) -> Result<(), String> {
    let events = events(records, key);
    let mut tester = Tester::new(Register(None));
    for (_, event) in &events {
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
        .stack_size(256 << 20)
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
        Ok(false) => Err(format!(
            "the history of {:?} ({ops} operations) is not linearizable:\n{}",
            String::from_utf8_lossy(key),
            describe(records, key)
        )),
        Err(_) => Err(format!(
            "no verdict on the history of {:?} ({ops} operations) within {limit:?}:\n{}",
            String::from_utf8_lossy(key),
            describe(records, key)
        )),
    }
}

/// One line per request of `key`, in invocation order.
fn describe(records: &[Record], key: &[u8]) -> String {
    records
        .iter()
        .filter(|r| r.key == key && r.consistency != Consistency::One)
        .map(|r| {
            let outcome = match &r.result {
                Some(Ok(OpReply::Value { value, version })) => {
                    format!("read {:?} {version:?}", text(value))
                }
                Some(Ok(OpReply::Written { version, .. })) => format!("acked {version:?}"),
                Some(Err(e)) => format!("error {e}"),
                None if r.coordinator_crashed => "coordinator crashed".to_string(),
                None => "gave up".to_string(),
            };
            format!(
                "  [{}..{:?}] t={}..{:?} client {:?} via {} {} {:?}: {outcome}",
                r.invoked,
                r.returned,
                r.started,
                r.finished,
                r.client,
                r.via,
                r.op,
                text(&r.value),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dkv::node::OpResult;
    use dkv::{NodeId, Version};

    fn record(client: usize, op: &'static str, value: Option<&str>, at: (u64, u64)) -> Record {
        let result: OpResult = Ok(if op == "get" {
            OpReply::Value {
                value: value.map(|v| v.as_bytes().to_vec()),
                version: None,
            }
        } else {
            OpReply::Written {
                existed: false,
                version: Version::default(),
            }
        });
        Record {
            key: b"k".to_vec(),
            op,
            value: (op != "get")
                .then(|| value.map(|v| v.as_bytes().to_vec()))
                .flatten(),
            consistency: Consistency::Quorum,
            started: at.0,
            finished: Some(at.1),
            result: Some(result),
            via: NodeId(1),
            coordinator_crashed: false,
            gave_up: false,
            client: Some(client),
            invoked: at.0,
            returned: Some(at.1),
        }
    }

    #[test]
    fn a_read_after_a_write_must_see_it() {
        let good = [
            record(0, "put", Some("a"), (1, 2)),
            record(1, "get", Some("a"), (3, 4)),
        ];
        assert!(check(&good, b"k").is_ok());
        let stale = [
            record(0, "put", Some("a"), (1, 2)),
            record(1, "get", None, (3, 4)),
        ];
        assert!(check(&stale, b"k").is_err());
    }

    #[test]
    fn reads_do_not_go_back_while_a_write_is_in_flight() {
        let mut in_flight = record(0, "put", Some("a"), (1, 2));
        in_flight.result = None;
        in_flight.returned = None;
        in_flight.gave_up = true;
        let either = [
            in_flight.clone(),
            record(1, "get", None, (3, 4)),
            record(2, "get", Some("a"), (5, 6)),
        ];
        assert!(check(&either, b"k").is_ok());
        let back = [
            in_flight,
            record(1, "get", Some("a"), (3, 4)),
            record(2, "get", None, (5, 6)),
        ];
        assert!(check(&back, b"k").is_err());
    }
}
