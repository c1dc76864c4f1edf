//! Deterministic simulation of 3 to 5 sans-IO nodes (N=3, W=2, R=2), or of
//! a node alone (N=W=R=1, one seed in five), under
//! message loss, duplication, delay, partitions, crashes and clock skew.
//!
//! Checks: sequential acknowledged writes are ordered; each key written by
//! one sequential client and read by two is linearizable (stateright's
//! `LinearizabilityTester`, `common/linearizable.rs`); quorum reads see the
//! quorum writes acknowledged before them; writes refused for their
//! deadline leave no trace; every request is answered; once faults end,
//! nothing acknowledged is lost, hints drain and replicas agree.
//!
//! `cargo test --test simulation` runs seeds 1..=500 (`DKV_SIM_SEEDS`
//! changes the count); a failure prints its seed, and `DKV_SEED=<seed>`
//! replays exactly that run.

#[path = "common/linearizable.rs"]
mod linearizable;
mod sim;

use dkv::node::{Consistency, OpError, OpReply};
use dkv::Version;
use linearizable::{Op, Operation};
use sim::{Record, Sim, SimOp};

const CHAOS_MS: u64 = 3000;
const HEAL_MS: u64 = 2500;
const REPAIR_MS: u64 = 1500;

fn acked_version(record: &Record) -> Option<Version> {
    match &record.result {
        Some(Ok(OpReply::Written { version, .. })) => Some(*version),
        _ => None,
    }
}

fn read_version(record: &Record) -> Option<Option<Version>> {
    match &record.result {
        Some(Ok(OpReply::Value { version, .. })) => Some(*version),
        _ => None,
    }
}

fn text(value: &Option<Vec<u8>>) -> Option<String> {
    value
        .as_ref()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Whether a write that failed so was applied nowhere.
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

/// `key`'s history for the linearizability checker: its requests above
/// `ONE`, each on its sequential client's thread (or one of its own), a
/// reply the client had given up on counted as never seen.
fn operations(records: &[Record], key: &[u8]) -> Vec<Operation> {
    let mut operations = Vec::new();
    for (index, record) in records.iter().enumerate() {
        if record.key != key || record.consistency == Consistency::One {
            continue;
        }
        let client = record.client.map_or(1_000 + index as u64, |c| c as u64);
        let seen = !record.gave_up && !record.coordinator_crashed;
        let returned = record.returned.filter(|_| seen);
        let op = match (&record.result, record.op) {
            (Some(Ok(OpReply::Value { value, .. })), _) if returned.is_some() => {
                Op::Read(text(value))
            }
            (_, "get") => continue,
            (Some(Ok(OpReply::Written { .. })), _) if returned.is_some() => {
                Op::Write(text(&record.value))
            }
            (Some(Err(error)), _) if seen && applied_nothing(error) => continue,
            _ => {
                operations.push(Operation {
                    client: 1_000 + index as u64,
                    op: Op::Write(text(&record.value)),
                    invoked: record.invoked,
                    returned: None,
                });
                continue;
            }
        };
        operations.push(Operation {
            client,
            op,
            invoked: record.invoked,
            returned,
        });
    }
    operations
}

/// One line per request of `key`, in invocation order, for a failing
/// seed's report.
fn describe(records: &[Record], key: &[u8]) -> String {
    records
        .iter()
        .filter(|r| r.key == key && r.consistency != Consistency::One)
        .map(|r| {
            let outcome = match &r.result {
                Some(Ok(OpReply::Value { value, version, .. })) => {
                    format!("read {:?} {version:?}", text(value))
                }
                Some(Ok(OpReply::Written { version, .. })) => format!("acked {version:?}"),
                Some(Ok(other)) => format!("{other:?}"),
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

/// What a passing seed did.
#[derive(Debug)]
#[allow(dead_code)] // `failed` shows in a replay's output
struct Summary {
    nodes: usize,
    requests: usize,
    acked: usize,
    failed: usize,
    refused_for_deadline: usize,
}

/// Runs one seed; `Err` describes the first violated property.
fn run(seed: u64) -> Result<Summary, String> {
    let mut sim = Sim::new(seed);
    sim.run(CHAOS_MS);
    sim.heal();
    sim.run(HEAL_MS);
    let members = sim.members();
    let repair_reads_from = sim.records.len();
    for (i, key) in sim.keys.clone().into_iter().enumerate() {
        let via = members[i % members.len()];
        sim.request(via, SimOp::Get { key }, Consistency::All);
    }
    sim.run(REPAIR_MS);

    let records = &sim.records;
    let n = sim.replication_factor();
    // Two levels are ordered against each other only when their replica
    // sets must meet.
    let intersect = |a: Consistency, b: Consistency| {
        let quorum = |c: Consistency| c.required(if n == 1 { 1 } else { 2 }, n).unwrap_or(0);
        quorum(a) + quorum(b) > n
    };
    // Sequential writes are ordered: a write that began after another was
    // acknowledged has the greater version, whatever the coordinators.
    for (i, first) in records.iter().enumerate() {
        let (Some(v1), Some(done)) = (acked_version(first), first.finished) else {
            continue;
        };
        for second in records.iter().skip(i + 1) {
            if second.key != first.key || second.started <= done {
                continue;
            }
            let Some(v2) = acked_version(second) else {
                continue;
            };
            if intersect(first.consistency, second.consistency) && v2 <= v1 {
                return Err(format!(
                    "{} {:?} at {:?} via node {} acknowledged at {done} with {v1:?}, then {} at {:?} via node {} began at {} and was acknowledged at {:?} with the older {v2:?} ({})",
                    first.op,
                    String::from_utf8_lossy(&first.key),
                    first.consistency,
                    first.via,
                    second.op,
                    second.consistency,
                    second.via,
                    second.started,
                    second.finished,
                    sim.describe()
                ));
            }
        }
    }
    // A write its coordinator read only after the client's deadline (it
    // was paused) applied nothing: no read ever returns its value.
    let refused: Vec<&Vec<u8>> = records
        .iter()
        .filter(|r| matches!(r.result, Some(Err(OpError::DeadlinePassed))))
        .filter_map(|r| r.value.as_ref())
        .collect();
    for read in records.iter().filter(|r| r.op == "get") {
        if let Some(Ok(OpReply::Value {
            value: Some(value), ..
        })) = &read.result
        {
            if refused.contains(&value) {
                return Err(format!(
                    "a read of {:?} returned {value:?}, written by a request refused for its deadline",
                    String::from_utf8_lossy(&read.key)
                ));
            }
        }
    }
    // Each sequential key's history, the final reads at ALL included, is
    // linearizable as a register.
    for key in &sim.keys[..sim::SEQUENTIAL_KEYS] {
        linearizable::check(&operations(records, key)).map_err(|problem| {
            format!(
                "the history of {:?}: {problem}:\n{}",
                String::from_utf8_lossy(key),
                describe(records, key)
            )
        })?;
    }
    // Every request was answered, one way or the other.
    if let Some(r) = records
        .iter()
        .find(|r| r.result.is_none() && !r.coordinator_crashed)
    {
        return Err(format!("request never answered: {r:?}"));
    }
    // Quorum reads see every write acknowledged at quorum before they began.
    for read in records
        .iter()
        .filter(|r| r.op == "get" && r.consistency != Consistency::One)
    {
        let Some(seen) = read_version(read) else {
            continue;
        };
        for write in records
            .iter()
            .filter(|w| w.key == read.key && w.consistency == Consistency::Quorum)
        {
            let (Some(acked), Some(finished)) = (acked_version(write), write.finished) else {
                continue;
            };
            if finished < read.started && seen < Some(acked) {
                return Err(format!(
                    "read of {:?} at {} saw {seen:?}, older than the write acked at {finished} with {acked:?}",
                    String::from_utf8_lossy(&read.key),
                    read.started
                ));
            }
        }
        if let Some(Ok(OpReply::Value {
            value: Some(value), ..
        })) = &read.result
        {
            if !records
                .iter()
                .any(|w| w.op == "put" && w.value.as_ref() == Some(value))
            {
                return Err(format!("read returned a value nobody wrote: {value:?}"));
            }
        }
    }
    // The repair reads succeeded and are at least as new as every
    // acknowledged write, whatever its level: nothing acked is lost and no
    // deleted key comes back.
    for read in &records[repair_reads_from..] {
        let Some(seen) = read_version(read) else {
            return Err(format!("read at ALL after healing failed: {read:?}"));
        };
        for write in records.iter().filter(|w| w.key == read.key) {
            if let Some(acked) = acked_version(write) {
                if seen < Some(acked) {
                    return Err(format!(
                        "acknowledged write {acked:?} to {:?} lost",
                        String::from_utf8_lossy(&read.key)
                    ));
                }
            }
        }
    }
    // Hints have drained and every replica of every key is identical.
    if sim.hints_pending() != 0 {
        return Err(format!(
            "{} hints still pending after healing ({})",
            sim.hints_pending(),
            sim.describe()
        ));
    }
    for key in &sim.keys {
        let replicas = sim.preference_list(key);
        let first = sim.replica_entries(replicas[0], key);
        if let Some(value) = first.as_ref().and_then(|e| e.value.as_ref()) {
            if refused.contains(&value) {
                return Err(format!(
                    "{:?} ended up holding {value:?}, written by a request refused for its deadline",
                    String::from_utf8_lossy(key)
                ));
            }
        }
        for &other in &replicas[1..] {
            let entry = sim.replica_entries(other, key);
            if entry != first {
                return Err(format!(
                    "replicas of {:?} differ: node {} has {first:?}, node {other} has {entry:?} ({})",
                    String::from_utf8_lossy(key),
                    replicas[0],
                    sim.describe()
                ));
            }
        }
    }
    let acked = records
        .iter()
        .filter(|r| acked_version(r).is_some())
        .count();
    let failed = records
        .iter()
        .filter(|r| matches!(r.result, Some(Err(_))))
        .count();
    Ok(Summary {
        nodes: members.len(),
        requests: records.len(),
        acked,
        failed,
        refused_for_deadline: refused.len(),
    })
}

#[test]
fn replicas_converge_and_acknowledged_writes_survive_chaos() {
    let summaries = sim::seeds::run_seeds("simulation", 500, run);
    let requests: usize = summaries.iter().map(|s| s.requests).sum();
    let acked: usize = summaries.iter().map(|s| s.acked).sum();
    let alone = summaries.iter().filter(|s| s.nodes == 1).count();
    let refused: usize = summaries.iter().map(|s| s.refused_for_deadline).sum();
    println!(
        "simulation: {} seeds ({alone} of a node alone), {requests} client requests, {acked} writes acknowledged, {refused} refused for their deadline",
        summaries.len()
    );
}

/// Seeds that failed before a fix, each run whatever `DKV_SIM_SEEDS` says.
/// Without the fix named: writes counted whatever the replica held (3, 4,
/// 5: sequential writes out of order, 273 of 500 seeds); repair
/// acknowledgements counted whatever the replica held (59, 127); reads
/// answered from data not yet durable (252, 415: a value read, then lost
/// in a crash).
#[test]
fn seeds_that_caught_bugs_still_pass() {
    for seed in [3, 4, 5, 59, 127, 252, 415] {
        if let Err(problem) = run(seed) {
            panic!("seed {seed}: {problem}");
        }
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let summary = |seed| {
        let mut sim = Sim::new(seed);
        sim.run(1000);
        format!(
            "{:?}",
            sim.records
                .iter()
                .map(|r| (&r.result, r.finished))
                .collect::<Vec<_>>()
        )
    };
    assert_eq!(summary(42), summary(42));
    assert_ne!(summary(42), summary(43));
}
