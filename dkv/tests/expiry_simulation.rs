//! Expiry in the deterministic simulation: `SET key value PXAT t` with
//! short times to live, plain `SET`s and `DEL`s through random nodes, and
//! quorum reads through random nodes, under the chaos of `simulation.rs`
//! (loss, duplication, delay, partitions, crashes, pauses, and clocks
//! skewed by up to a minute). An expiry is an absolute time judged by the
//! cluster's agreed time, so every coordinator must let a value go at the
//! same moment (to within [`MARGIN_MS`], what the clocks' agreement is
//! worth over a network that delays messages by up to 40 ms):
//!
//! * no quorum read answered past a value's expiry, by its coordinator's
//!   agreed time, returns it (a coordinator whose own clock is behind must
//!   not keep it alive, nor one that has not heard enough clocks to know
//!   the agreed time: it refuses);
//! * nothing comes back: once a quorum read found a key missing, no read
//!   that begins later returns a value acknowledged before that read
//!   began;
//! * after healing, every node's agreed time is within [`MARGIN_MS`] of
//!   every other's, reads of every key through every node at one moment
//!   agree, and anti-entropy leaves every replica at one version.
//!
//! `cargo test --test expiry_simulation` runs seeds 1..=100
//! (`DKV_SIM_SEEDS` changes the count; `DKV_SEED=<seed>` replays one).

#[allow(dead_code)]
mod sim;

use std::collections::HashMap;
use std::time::Duration;

use dkv::node::{Consistency, OpReply};
use sim::{Record, Sim, SimOp};

const CHAOS_MS: u64 = 3000;
const HEAL_MS: u64 = 2000;
/// How far apart two coordinators' judgements of one expiry may be.
const MARGIN_MS: u64 = 100;
const KEYS: usize = 4;

#[derive(Debug)]
#[allow(dead_code)] // shown in a replay's output
struct Summary {
    nodes: usize,
    expiring_writes: usize,
    reads: usize,
    read_missing: usize,
}

/// What a quorum read returned: `Some(value)`, `Some(None)` for missing,
/// `None` when it failed.
fn read_value(record: &Record) -> Option<Option<Vec<u8>>> {
    match &record.result {
        Some(Ok(OpReply::Value { value, .. })) => Some(value.clone()),
        _ => None,
    }
}

fn run(seed: u64) -> Result<Summary, String> {
    let mut sim = Sim::new_with(seed, |settings, faults| {
        settings.aae_interval = Duration::from_millis(50);
        // Only this test's traffic.
        faults.client_ops = 0;
        faults.writer_ops = 0;
    });
    let members = sim.members();
    let keys: Vec<Vec<u8>> = (0..KEYS).map(|i| format!("e{i}").into_bytes()).collect();
    let mut expiry_of: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut next_value = 0;
    // Each read's coordinator's agreed time when it answered (the moment
    // it judged the expiry), by record; and the reads not answered yet.
    let mut read_agreed: HashMap<usize, u64> = HashMap::new();
    let mut pending: Vec<usize> = Vec::new();
    for ms in 0..CHAOS_MS + HEAL_MS {
        if ms == CHAOS_MS {
            sim.heal();
        }
        let via = members[sim.rng.below(members.len() as u64) as usize];
        let key = keys[sim.rng.below(KEYS as u64) as usize].clone();
        if sim.rng.chance(40) {
            next_value += 1;
            let value = format!("v{next_value}").into_bytes();
            let op = match sim.rng.below(10) {
                0..=6 => {
                    let expires_at = sim.wall() + 50 + sim.rng.below(1000);
                    expiry_of.insert(value.clone(), expires_at);
                    SimOp::PutUntil {
                        key,
                        value,
                        expires_at,
                    }
                }
                7 | 8 => SimOp::Put { key, value },
                _ => SimOp::Delete { key },
            };
            sim.request(via, op, Consistency::Quorum);
        } else if sim.rng.chance(80) {
            pending.push(sim.records.len());
            sim.request(via, SimOp::Get { key }, Consistency::Quorum);
        }
        // Each coordinator's agreed time before and after the step: a read
        // answered in it was judged at a time between the two.
        let before: Vec<Option<u64>> = members.iter().map(|&m| sim.agreed_time(m)).collect();
        sim.step();
        pending.retain(|&index| {
            let record = &sim.records[index];
            if record.finished.is_none() {
                return true;
            }
            let place = members.iter().position(|&m| m == record.via);
            let earlier = place.and_then(|p| before[p]);
            if let (Some(a), Some(b)) = (earlier, sim.agreed_time(record.via)) {
                read_agreed.insert(index, a.min(b));
            }
            false
        });
    }
    sim.run(1500);

    let records = sim.records.clone();
    let writes: HashMap<&[u8], &Record> = records
        .iter()
        .filter(|r| r.op == "put")
        .filter_map(|r| r.value.as_deref().map(|v| (v, r)))
        .collect();
    let reads: Vec<&Record> = records
        .iter()
        .filter(|r| r.op == "get" && read_value(r).is_some())
        .collect();
    for (index, read) in records.iter().enumerate() {
        let Some(Some(value)) = read_value(read).filter(|_| read.op == "get") else {
            continue;
        };
        let (Some(&at), Some(&judged)) = (expiry_of.get(&value), read_agreed.get(&index)) else {
            continue;
        };
        if judged >= at {
            return Err(format!(
                    "a read via node {} that answered at {judged} (its agreed time) returned {:?}, which expired at {at} ({})",
                    read.via,
                    String::from_utf8_lossy(&value),
                    sim.describe()
                ));
        }
    }
    for missing in reads.iter().filter(|r| matches!(read_value(r), Some(None))) {
        let Some(found_at) = missing.finished else {
            continue;
        };
        for later in reads
            .iter()
            .filter(|r| r.key == missing.key && r.started >= found_at + MARGIN_MS)
        {
            let Some(Some(value)) = read_value(later) else {
                continue;
            };
            let acked_before = writes
                .get(value.as_slice())
                .and_then(|w| w.finished.filter(|_| matches!(w.result, Some(Ok(_)))))
                .is_some_and(|finished| finished < missing.started);
            if acked_before {
                return Err(format!(
                    "{:?} came back: a read via node {} at {} found the key missing, a read via node {} at {} returned it, acknowledged before the first began ({})",
                    String::from_utf8_lossy(&value),
                    missing.via,
                    missing.started,
                    later.via,
                    later.started,
                    sim.describe()
                ));
            }
        }
    }
    // One moment, every node: one time, and the same answers.
    let agreed: Vec<u64> = members.iter().filter_map(|&m| sim.agreed_time(m)).collect();
    let spread = agreed.iter().max().unwrap_or(&0) - agreed.iter().min().unwrap_or(&0);
    if spread > MARGIN_MS {
        return Err(format!(
            "after healing the nodes' agreed times are {spread} ms apart ({})",
            sim.describe()
        ));
    }
    let first = sim.records.len();
    for key in &keys {
        for &via in &members {
            sim.request(via, SimOp::Get { key: key.clone() }, Consistency::Quorum);
        }
    }
    sim.run(500);
    for (k, key) in keys.iter().enumerate() {
        let answers: Vec<Option<Option<Vec<u8>>>> = (0..members.len())
            .map(|i| read_value(&sim.records[first + k * members.len() + i]))
            .collect();
        if answers.iter().any(|a| a != &answers[0]) || answers[0].is_none() {
            return Err(format!(
                "reads of {:?} through every node at once answered {answers:?}",
                String::from_utf8_lossy(key)
            ));
        }
    }
    sim.run(6000);
    if members.len() > 1 {
        for key in &keys {
            let replicas = sim.preference_list(key);
            let version = |id| sim.replica_entries(id, key).map(|e| e.version);
            let first = version(replicas[0]);
            if replicas[1..].iter().any(|&r| version(r) != first) {
                let all: Vec<_> = replicas.iter().map(|&r| version(r)).collect();
                return Err(format!(
                    "replicas of {:?} hold different versions after anti-entropy: {all:?}",
                    String::from_utf8_lossy(key)
                ));
            }
        }
    }
    Ok(Summary {
        nodes: members.len(),
        expiring_writes: expiry_of.len(),
        reads: reads.len(),
        read_missing: reads
            .iter()
            .filter(|r| matches!(read_value(r), Some(None)))
            .count(),
    })
}

#[test]
fn expiries_fall_at_one_moment_everywhere_and_nothing_comes_back() {
    let summaries = sim::seeds::run_seeds("expiry_simulation", 100, run);
    let missing: usize = summaries.iter().map(|s| s.read_missing).sum();
    let expiring: usize = summaries.iter().map(|s| s.expiring_writes).sum();
    assert!(
        missing > 0 && expiring > 0,
        "the seeds wrote no expiring value or never read one gone"
    );
}
