//! Faults on real `dkv-node` processes, 3 and 5 of them on 127.0.0.1
//! (N=3, W=2, R=2, fsync always), under a workload of sequential writers
//! (one per key, each write through a node picked at random) and readers,
//! with a history checker.
//!
//! Faults, one after another: a one-way link cut (each node runs under a
//! uid of its own and an iptables `owner` rule drops what one sends to
//! another's peer port: root only), SIGSTOP then SIGCONT, SIGKILL then a
//! restart, and restarts under libfaketime a minute ahead and a minute
//! behind. The checker, per key:
//!
//! * a read that began after write `w` was acknowledged returns `w`, a
//!   later write, or an earlier one whose outcome its writer never learnt:
//!   never an acknowledged write that `w` followed;
//! * nothing is read that was not written, or before it was written;
//! * a write the node refused without applying it (`-TIMEOUT`: read after
//!   its deadline; `-CLOCKSKEW`: a node too far ahead) is never read.
//!
//! Beside them, one more writer and two readers use a fresh key every
//! [`GENERATION`]; each such key's history must be linearizable
//! (stateright's `LinearizabilityTester`, `common/linearizable.rs`; short
//! keys keep each search small, and linearizability is per key).
//!
//! `make test` runs the short profile (about a minute); `DKV_FAULT_LONG=1`
//! runs every fault several times over. Without root the link cuts are
//! skipped, with a message; without libfaketime the clock faults are.

mod common;
#[path = "common/linearizable.rs"]
mod linearizable;
#[path = "fault/cluster.rs"]
mod process_cluster;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dkv::client::{Client, ClientOptions};
use dkv::node::Consistency;
use linearizable::{Op, Operation};
use process_cluster::{has_iptables, Cluster, Cut, FAKETIME_LIB};

/// What came of a write, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Acked,
    /// An error or a timeout: it may or may not have taken effect.
    Unknown,
    /// The node said it applied nothing (read past its deadline, or its
    /// clock was too far ahead).
    NotApplied,
}

#[derive(Debug, Clone)]
struct Write {
    seq: usize,
    value: Option<String>,
    start: Instant,
    end: Instant,
    outcome: Outcome,
}

#[derive(Debug, Clone)]
struct Read {
    start: Instant,
    end: Instant,
    value: Option<String>,
    via: usize,
}

#[derive(Default)]
struct History {
    writes: BTreeMap<String, Vec<Write>>,
    reads: BTreeMap<String, Vec<Read>>,
    /// The linearizability clients' keys and their histories.
    linear: BTreeMap<String, Vec<Operation>>,
}

/// How long the linearizability clients use one key.
const GENERATION: Duration = Duration::from_secs(2);

fn client_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_millis(500),
        timeout: Duration::from_millis(1200),
        ..ClientOptions::default()
    }
}

/// A client per node, made on first use and dropped after an error.
struct Clients {
    addrs: Vec<SocketAddr>,
    open: Vec<Option<Client>>,
}

impl Clients {
    fn new(addrs: Vec<SocketAddr>) -> Clients {
        let open = addrs.iter().map(|_| None).collect();
        Clients { addrs, open }
    }

    fn with<T>(
        &mut self,
        node: usize,
        run: impl FnOnce(&mut Client) -> Result<T, dkv::client::ClientError>,
    ) -> Result<T, Failure> {
        let mut client = match self.open[node].take() {
            Some(client) => client,
            None => Client::connect(&self.addrs[node..=node], client_options())
                .map_err(|_| Failure::NotSent)?,
        };
        let result = run(&mut client).map_err(Failure::Sent);
        if result.is_ok() {
            self.open[node] = Some(client);
        }
        result
    }
}

/// Why a request failed: it never left (no connection), or it did.
#[derive(Debug)]
enum Failure {
    NotSent,
    Sent(dkv::client::ClientError),
}

/// SplitMix64, seeded per thread.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n.max(1) as u64) as usize
    }
}

fn outcome_of(failure: &Failure) -> Outcome {
    let error = match failure {
        Failure::NotSent => return Outcome::NotApplied,
        Failure::Sent(error) => error,
    };
    let text = error.to_string();
    // The node's own refusals applied nothing (read past its deadline, a
    // clock too far ahead or not yet checked against the peers', too few
    // replicas up to start); anything else (a timeout on this side, a
    // quorum missed, a broken connection) may have.
    let refused = [
        "server: TIMEOUT",
        "server: CLOCKSKEW",
        "has heard the clocks",
    ];
    if refused.iter().any(|r| text.contains(r)) || refused_at_once(&text) {
        Outcome::NotApplied
    } else {
        Outcome::Unknown
    }
}

/// `UNAVAILABLE 0 of <W> required replicas answered (<N> replicas, <k>
/// reachable)` with k < W: the write was sent to no replica.
fn refused_at_once(text: &str) -> bool {
    let number_before = |marker: &str| {
        let end = text.find(marker)?;
        text[..end]
            .rsplit(' ')
            .next()?
            .trim_start_matches('(')
            .parse::<usize>()
            .ok()
    };
    text.contains("UNAVAILABLE 0 of ")
        && matches!(
            (number_before(" required replicas"), number_before(" reachable")),
            (Some(required), Some(reachable)) if reachable < required
        )
}

/// Runs writers and readers over `keys` until `stop`, through random nodes.
fn workload(
    addrs: Vec<SocketAddr>,
    keys: Vec<String>,
    prefix: String,
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<History>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    for (k, key) in keys.into_iter().enumerate() {
        let (addrs_w, stop_w, history_w, key_w) =
            (addrs.clone(), stop.clone(), history.clone(), key.clone());
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng(k as u64 * 7919 + 1);
            let mut clients = Clients::new(addrs_w);
            let mut seq = 0;
            while !stop_w.load(Ordering::Relaxed) {
                seq += 1;
                let node = rng.below(clients.addrs.len());
                let delete = rng.below(10) == 0;
                let value = (!delete).then(|| format!("{key_w}-{seq}"));
                let start = Instant::now();
                let result = match &value {
                    Some(v) => clients.with(node, |c| {
                        c.put(key_w.as_bytes(), v.as_bytes(), Consistency::Quorum, None)
                            .map(|_| ())
                    }),
                    None => clients.with(node, |c| {
                        c.delete(key_w.as_bytes(), Consistency::Quorum, None)
                            .map(|_| ())
                    }),
                };
                let outcome = match &result {
                    Ok(()) => Outcome::Acked,
                    Err(e) => outcome_of(e),
                };
                let write = Write {
                    seq,
                    value,
                    start,
                    end: Instant::now(),
                    outcome,
                };
                if let Ok(mut h) = history_w.lock() {
                    h.writes.entry(key_w.clone()).or_default().push(write);
                }
                if result.is_err() {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }));
        let (addrs_r, stop_r, history_r) = (addrs.clone(), stop.clone(), history.clone());
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng(k as u64 * 104_729 + 3);
            let mut clients = Clients::new(addrs_r);
            while !stop_r.load(Ordering::Relaxed) {
                let node = rng.below(clients.addrs.len());
                let start = Instant::now();
                let result =
                    clients.with(node, |c| c.get(key.as_bytes(), Consistency::Quorum, None));
                let end = Instant::now();
                match result {
                    Ok(value) => {
                        let value = value.map(|v| String::from_utf8_lossy(&v).into_owned());
                        if let Ok(mut h) = history_r.lock() {
                            h.reads.entry(key.clone()).or_default().push(Read {
                                start,
                                end,
                                value,
                                via: node + 1,
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }));
    }
    threads.extend(linear_clients(addrs, prefix, stop, history));
    threads
}

/// A writer (client 0) and two readers (1 and 2) of one key at a time, a
/// fresh one every [`GENERATION`], recording for the linearizability
/// check.
fn linear_clients(
    addrs: Vec<SocketAddr>,
    prefix: String,
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<History>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let t0 = Instant::now();
    let at = move |t: Instant| t.duration_since(t0).as_nanos() as u64;
    let key_now = move |prefix: &str| {
        let generation = t0.elapsed().as_millis() / GENERATION.as_millis();
        format!("{prefix}-g{generation}")
    };
    (0..3u64)
        .map(|client| {
            let (addrs, prefix, stop, history) =
                (addrs.clone(), prefix.clone(), stop.clone(), history.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(client * 31 + 17);
                let mut clients = Clients::new(addrs);
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = key_now(&prefix);
                    let node = rng.below(clients.addrs.len());
                    let start = Instant::now();
                    let (op, result) = if client == 0 {
                        seq += 1;
                        let value = (rng.below(10) != 0).then(|| format!("{key}-{seq}"));
                        let result = clients.with(node, |c| match &value {
                            Some(v) => c
                                .put(key.as_bytes(), v.as_bytes(), Consistency::Quorum, None)
                                .map(|_| ()),
                            None => c
                                .delete(key.as_bytes(), Consistency::Quorum, None)
                                .map(|_| ()),
                        });
                        (Op::Write(value), result.map(|()| None))
                    } else {
                        let result = clients
                            .with(node, |c| c.get(key.as_bytes(), Consistency::Quorum, None));
                        let value = result
                            .map(|v| Some(v.map(|v| String::from_utf8_lossy(&v).into_owned())));
                        (Op::Read(None), value)
                    };
                    let end = Instant::now();
                    let operation = match (op, result) {
                        (Op::Read(_), Ok(value)) => Some((Op::Read(value.flatten()), Some(end))),
                        (Op::Write(value), Ok(_)) => Some((Op::Write(value), Some(end))),
                        (Op::Read(_), Err(_)) => None,
                        (Op::Write(value), Err(e)) => match outcome_of(&e) {
                            Outcome::NotApplied => None,
                            _ => Some((Op::Write(value), None)),
                        },
                    };
                    let failed = operation.as_ref().is_none_or(|(_, end)| end.is_none());
                    if let Some((op, returned)) = operation {
                        if let Ok(mut h) = history.lock() {
                            h.linear.entry(key).or_default().push(Operation {
                                client,
                                op,
                                invoked: at(start),
                                returned: returned.map(at),
                            });
                        }
                    }
                    if failed {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect()
}

/// Checks one key's history; returns the violations found and how many
/// reads were checked.
fn check_key(key: &str, writes: &[Write], reads: &[Read]) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let by_value: BTreeMap<&str, &Write> = writes
        .iter()
        .filter_map(|w| w.value.as_deref().map(|v| (v, w)))
        .collect();
    for read in reads {
        // The last write acknowledged before the read began.
        let floor = writes
            .iter()
            .filter(|w| w.outcome == Outcome::Acked && w.end < read.start)
            .map(|w| w.seq)
            .max();
        let allowed = |w: &Write| {
            w.outcome != Outcome::NotApplied
                && w.start < read.end
                && floor.is_none_or(|f| w.seq >= f || w.outcome == Outcome::Unknown)
        };
        match &read.value {
            Some(value) => match by_value.get(value.as_str()) {
                None => problems.push(format!("{key}: read {value:?}, which nobody wrote")),
                Some(w) if !allowed(w) => problems.push(format!(
                    "{key}: a read via node {} returned write {} ({:?}) though write {:?} was acknowledged before the read began",
                    read.via, w.seq, w.outcome, floor
                )),
                Some(_) => {}
            },
            None => {
                let nil_allowed =
                    floor.is_none() || writes.iter().any(|w| w.value.is_none() && allowed(w));
                if !nil_allowed {
                    problems.push(format!(
                        "{key}: a read via node {} found nothing though write {:?} was acknowledged before it began",
                        read.via, floor
                    ));
                }
            }
        }
    }
    (problems, reads.len())
}

/// The faults the profile runs, in order.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Cut,
    Pause,
    Kill,
    ClockAhead,
    ClockBehind,
}

fn run_profile(count: usize, rounds: usize) -> String {
    let mut cluster = Cluster::start(count);
    let addrs: Vec<SocketAddr> = (1..=count).map(|id| cluster.addr(id)).collect();
    let keys: Vec<String> = (0..3).map(|k| format!("k{count}-{k}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(History::default()));
    let prefix = format!("lin{count}");
    let threads = workload(addrs, keys, prefix, stop.clone(), history.clone());
    let can_cut = cluster.as_root && has_iptables();
    let can_fake = Path::new(FAKETIME_LIB).exists();
    let mut skipped = Vec::new();
    if !can_cut {
        skipped.push("one-way cuts (need root and iptables)");
    }
    if !can_fake {
        skipped.push("clock offsets (need libfaketime)");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let mut rng = Rng(count as u64);
    let faults = [
        Fault::Cut,
        Fault::Pause,
        Fault::Kill,
        Fault::ClockAhead,
        Fault::ClockBehind,
    ];
    let mut ran = Vec::new();
    for _ in 0..rounds {
        for fault in faults {
            let victim = 1 + rng.below(count);
            match fault {
                Fault::Cut if can_cut => {
                    let other = 1 + (victim % count);
                    let _cut = Cut::new(Cluster::uid(victim), cluster.members[other - 1].peer);
                    std::thread::sleep(Duration::from_millis(2500));
                }
                Fault::Pause => {
                    cluster.signal(victim, libc::SIGSTOP);
                    std::thread::sleep(Duration::from_millis(1500));
                    cluster.signal(victim, libc::SIGCONT);
                }
                Fault::Kill => {
                    cluster.kill(victim);
                    std::thread::sleep(Duration::from_millis(800));
                    cluster.launch(victim, None);
                }
                Fault::ClockAhead | Fault::ClockBehind if can_fake => {
                    let offset = if matches!(fault, Fault::ClockAhead) {
                        "+60"
                    } else {
                        "-60"
                    };
                    cluster.kill(victim);
                    cluster.launch(victim, Some(offset));
                    std::thread::sleep(Duration::from_millis(2500));
                    cluster.kill(victim);
                    cluster.launch(victim, None);
                }
                _ => continue,
            }
            ran.push(format!("{fault:?}@{victim}"));
            std::thread::sleep(Duration::from_millis(1000));
        }
    }
    cluster.wait_until_connected();
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    let history = history
        .lock()
        .map(|h| (h.writes.clone(), h.reads.clone(), h.linear.clone()));
    let Ok((writes, reads, linear)) = history else {
        panic!("a workload thread panicked");
    };
    let mut problems = Vec::new();
    let (mut acked, mut unknown, mut not_applied, mut checked) = (0, 0, 0, 0);
    for (key, key_writes) in &writes {
        for w in key_writes {
            match w.outcome {
                Outcome::Acked => acked += 1,
                Outcome::Unknown => unknown += 1,
                Outcome::NotApplied => not_applied += 1,
            }
        }
        let empty = Vec::new();
        let (mut found, n) = check_key(key, key_writes, reads.get(key).unwrap_or(&empty));
        problems.append(&mut found);
        checked += n;
    }
    let mut linear_ops = 0;
    for (key, operations) in &linear {
        linear_ops += operations.len();
        if let Err(problem) = linearizable::check(operations) {
            let lines: Vec<String> = operations
                .iter()
                .map(|o| {
                    let ms = |ns: u64| ns / 1_000_000;
                    format!(
                        "  client {} {:?} {}..{:?} ms",
                        o.client,
                        o.op,
                        ms(o.invoked),
                        o.returned.map(ms)
                    )
                })
                .collect();
            problems.push(format!(
                "{key}: the history is {problem}:\n{}",
                lines.join("\n")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{count} nodes, faults {ran:?}: {} violations:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(acked > 0 && checked > 0, "the workload did nothing");
    let mut summary = format!(
        "{count} nodes, faults {ran:?}: {acked} writes acknowledged, {unknown} unknown, {not_applied} refused unapplied, {checked} reads checked, 0 violations; {} keys of {linear_ops} operations linearizable",
        linear.len()
    );
    if !skipped.is_empty() {
        summary.push_str(&format!(" (skipped: {})", skipped.join(", ")));
    }
    summary
}

#[test]
fn sequential_writes_survive_cuts_pauses_kills_and_skewed_clocks() {
    let long = std::env::var_os("DKV_FAULT_LONG").is_some();
    let rounds = if long { 4 } else { 1 };
    for count in [3, 5] {
        let summary = run_profile(count, rounds);
        println!("fault suite: {summary}");
        if summary.contains("skipped") {
            eprintln!("fault suite: {summary}");
        }
    }
}

#[test]
fn the_checker_catches_a_stale_read() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let write = |seq, value: &str, start, end, outcome| Write {
        seq,
        value: Some(value.to_string()),
        start: at(start),
        end: at(end),
        outcome,
    };
    let writes = vec![
        write(1, "a", 0, 10, Outcome::Acked),
        write(2, "b", 20, 30, Outcome::Acked),
        write(3, "c", 40, 50, Outcome::NotApplied),
        write(4, "d", 60, 70, Outcome::Unknown),
    ];
    let read = |start, end, value: Option<&str>| Read {
        start: at(start),
        end: at(end),
        value: value.map(str::to_string),
        via: 1,
    };
    let ok = [
        read(35, 36, Some("b")),
        read(80, 90, Some("d")),
        read(25, 26, Some("a")),
    ];
    assert!(check_key("k", &writes, &ok).0.is_empty());
    for bad in [
        read(35, 36, Some("a")),
        read(80, 90, Some("c")),
        read(35, 36, Some("zzz")),
        read(35, 36, None),
        read(5, 15, Some("d")),
    ] {
        let (problems, _) = check_key("k", &writes, std::slice::from_ref(&bad));
        assert_eq!(problems.len(), 1, "{bad:?}");
    }
}

#[test]
fn only_refusals_before_sending_count_as_not_applied() {
    let at_once = "server: UNAVAILABLE 0 of 2 required replicas answered (3 replicas, 1 reachable)";
    let timed_out =
        "server: UNAVAILABLE 0 of 2 required replicas answered (3 replicas, 3 reachable)";
    let partial = "server: UNAVAILABLE 1 of 2 required replicas answered (3 replicas, 1 reachable)";
    assert!(refused_at_once(at_once));
    assert!(!refused_at_once(timed_out));
    assert!(!refused_at_once(partial));
}
