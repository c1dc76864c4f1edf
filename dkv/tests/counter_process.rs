//! Counters on three real `dkv-node` processes (N=3, W=2, R=2, fsync
//! always): three clients send `INCRBY ctr 1` as fast as they can, each
//! through its own node, while one node after another is paused
//! (SIGSTOP), killed (SIGKILL, then restarted) and, with libfaketime,
//! restarted a minute ahead. Then quorum reads through each node in turn
//! must never go back and must read the count of acknowledged increments
//! plus some of those whose outcome a client could not know; and once
//! anti-entropy has run, every node's own copy must read the same.

mod common;
#[allow(dead_code)] // the link cuts are fault_process.rs's
#[path = "fault/cluster.rs"]
mod process_cluster;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dkv::client::{Client, ClientOptions};
use dkv::node::Consistency;
use process_cluster::{Cluster, FAKETIME_LIB};

const KEY: &[u8] = b"ctr";

fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    }
}

/// Sends increments through node `addr` until `stop`; returns how many
/// were acknowledged and how many ended without an answer or with an
/// error (their outcome unknown).
fn incrementer(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> JoinHandle<(i64, i64)> {
    std::thread::spawn(move || {
        let (mut acked, mut unknown) = (0, 0);
        let mut client = None;
        while !stop.load(Ordering::Relaxed) {
            if client.is_none() {
                client = Client::connect(&[addr], options()).ok();
                if client.is_none() {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            }
            let Some(c) = client.as_mut() else { continue };
            match c.incr_by(KEY, 1, Consistency::Quorum, None) {
                Ok(_) => acked += 1,
                Err(_) => {
                    unknown += 1;
                    client = None;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        (acked, unknown)
    })
}

fn read(cluster: &Cluster, id: usize) -> Option<i64> {
    let mut client = Client::connect(&[cluster.addr(id)], options()).ok()?;
    let value = client.get(KEY, Consistency::Quorum, None).ok()??;
    String::from_utf8(value).ok()?.parse().ok()
}

#[test]
fn increments_through_every_node_survive_pauses_kills_and_a_clock_ahead() {
    let mut cluster = Cluster::start(3);
    let mut first = Client::connect(&[cluster.addr(1)], options()).unwrap();
    first
        .put(KEY, b"0", Consistency::All, None)
        .expect("the starting SET");
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (1..=3)
        .map(|id| incrementer(cluster.addr(id), stop.clone()))
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    cluster.signal(2, libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(1500));
    cluster.signal(2, libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(1000));
    cluster.kill(3);
    std::thread::sleep(Duration::from_millis(800));
    cluster.launch(3, None);
    std::thread::sleep(Duration::from_millis(1000));
    if Path::new(FAKETIME_LIB).exists() {
        cluster.kill(1);
        cluster.launch(1, Some("+60"));
        std::thread::sleep(Duration::from_millis(2000));
        cluster.kill(1);
        cluster.launch(1, None);
    } else {
        eprintln!("libfaketime is missing: the clock fault is skipped");
    }
    cluster.wait_until_connected();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (mut acked, mut unknown) = (0, 0);
    for thread in threads {
        let (a, u) = thread.join().expect("incrementer");
        acked += a;
        unknown += u;
    }
    assert!(acked > 0, "no increment was acknowledged");
    let mut values = Vec::new();
    for id in [1, 2, 3, 1] {
        values.push(read(&cluster, id).unwrap_or_else(|| panic!("a quorum read via node {id}")));
    }
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "quorum reads went back: {values:?}"
    );
    assert!(
        values[0] >= acked && values[3] <= acked + unknown,
        "the counter reads {values:?}: {acked} increments acknowledged, {unknown} unknown"
    );
    // Anti-entropy (and the reads' repairs) bring every copy to one state.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let local: Vec<Option<i64>> = (1..=3)
            .map(|id| {
                let mut client = common::Client::connect(cluster.addr(id));
                match client.cmd(&[b"DKV.LOCAL", KEY]) {
                    common::Reply::Bulk(v) => String::from_utf8(v).ok()?.parse().ok(),
                    _ => None,
                }
            })
            .collect();
        if local.iter().all(|v| *v == Some(values[3])) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "copies still differ: {local:?}, quorum read {}",
            values[3]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("acked {acked}, unknown {unknown}, value {}", values[3]);
}
