//! Anti-entropy in the deterministic simulation: 3 to 5 sans-IO nodes
//! under the same chaos as `simulation.rs` (loss, duplication, delay,
//! partitions, crashes, pauses, skewed clocks), with hints dropped as soon
//! as they are kept and nodes that lose their whole disk. Once faults end
//! no client reads anything, and within a few exchange cycles every
//! replica of every key must hold exactly the same entry: nothing but
//! anti-entropy can have made them agree.
//!
//! `cargo test --test aae_simulation` runs seeds 1..=200 (`DKV_SIM_SEEDS`
//! changes the count; `DKV_SEED=<seed>` replays one).

#[allow(dead_code)]
mod sim;

use std::time::Duration;

use sim::Sim;

const CHAOS_MS: u64 = 3000;
/// Enough for several full cycles over every (partition, peer) pair: with
/// 16 tokens per node at most 80 partitions, two peers each, an exchange
/// every 5 ms plus its round trips.
const CONVERGE_MS: u64 = 6000;

#[derive(Debug)]
struct Summary {
    nodes: usize,
    keys: usize,
}

fn run(seed: u64) -> Result<Summary, String> {
    let mut sim = Sim::new_with(seed, |settings, faults| {
        // No hints: they would hide what anti-entropy must do.
        settings.max_hint_age = Duration::ZERO;
        settings.aae_interval = Duration::from_millis(50);
        faults.lose_storage = 1;
    });
    let members = sim.members();
    sim.run(CHAOS_MS);
    sim.heal();
    sim.run(CONVERGE_MS);
    if members.len() == 1 {
        // A node alone has no replicas to agree with.
        return Ok(Summary { nodes: 1, keys: 0 });
    }
    for key in &sim.keys {
        let replicas = sim.preference_list(key);
        let first = sim.replica_entries(replicas[0], key);
        for &other in &replicas[1..] {
            let entry = sim.replica_entries(other, key);
            if entry != first {
                return Err(format!(
                    "{CONVERGE_MS} ms after healing, with no reads, replicas of {:?} differ: node {} has {first:?}, node {other} has {entry:?} ({})",
                    String::from_utf8_lossy(key),
                    replicas[0],
                    sim.describe()
                ));
            }
        }
    }
    Ok(Summary {
        nodes: members.len(),
        keys: sim.keys.len(),
    })
}

#[test]
fn replicas_converge_with_no_reads_hints_dropped_and_disks_lost() {
    let summaries = sim::seeds::run_seeds("aae_simulation", 200, run);
    let clusters = summaries.iter().filter(|s| s.nodes > 1).count();
    let keys: usize = summaries.iter().map(|s| s.keys).sum();
    println!(
        "aae simulation: {} seeds, {clusters} clusters, {keys} keys identical on every replica",
        summaries.len()
    );
}
