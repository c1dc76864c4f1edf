//! Three real `dkv-node` processes on 127.0.0.1 forming one cluster:
//! killed with SIGKILL and restarted, checked through RESP and
//! `DKV.LOCAL` on every replica.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, Client, NodeProcess, Reply};

struct Cluster {
    dir: tempfile::TempDir,
    conf: std::path::PathBuf,
    ports: Vec<u16>,
    nodes: Vec<Option<NodeProcess>>,
    extra: Vec<String>,
}

impl Cluster {
    fn start(extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut text = String::from(
            "cluster_name = test\nreplication_factor = 3\nwrite_quorum = 2\nread_quorum = 2\n",
        );
        for (i, port) in ports.iter().enumerate() {
            text.push_str(&format!(
                "node {} 127.0.0.1:{port} {}\n",
                i + 1,
                free_port()
            ));
        }
        let conf = dir.path().join("cluster.conf");
        std::fs::write(&conf, text).unwrap();
        let mut cluster = Cluster {
            dir,
            conf,
            ports,
            nodes: Vec::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for id in 1..=3 {
            let node = cluster.launch(id);
            cluster.nodes.push(Some(node));
        }
        cluster.wait_until_all_up();
        cluster
    }

    fn launch(&self, id: usize) -> NodeProcess {
        let data = self.dir.path().join(format!("node-{id}"));
        let mut args = vec![
            "--node-id".to_string(),
            id.to_string(),
            "--cluster-conf".into(),
            self.conf.to_str().unwrap().into(),
            "--data-dir".into(),
            data.to_str().unwrap().into(),
            "--heartbeat-interval-ms".into(),
            "50".into(),
            "--failure-timeout-ms".into(),
            "400".into(),
            "--request-timeout-ms".into(),
            "800".into(),
        ];
        args.extend(self.extra.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        NodeProcess::start(self.ports[id - 1], &args)
    }

    fn client(&self, id: usize) -> Client {
        Client::connect(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            self.ports[id - 1],
        )))
    }

    fn kill(&mut self, id: usize) {
        if let Some(node) = self.nodes[id - 1].take() {
            node.signal(libc::SIGKILL);
        }
    }

    fn restart(&mut self, id: usize) {
        let node = self.launch(id);
        self.nodes[id - 1] = Some(node);
    }

    fn info(&self, id: usize) -> String {
        match self.client(id).cmd_str("INFO cluster") {
            Reply::Bulk(text) => String::from_utf8(text).unwrap(),
            other => panic!("INFO: {other:?}"),
        }
    }

    /// Waits (up to 20 s) until `check` holds for the INFO of every
    /// running node.
    fn wait_for(&self, what: &str, check: impl Fn(usize, &str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let running: Vec<usize> = (1..=3).filter(|&id| self.nodes[id - 1].is_some()).collect();
            if running.iter().all(|&id| check(id, &self.info(id))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.info(running[0])
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_until_all_up(&self) {
        self.wait_for("every node up and connected", |id, info| {
            (1..=3)
                .filter(|&peer| peer != id)
                .all(|peer| info.contains(&format!("node_{peer}:up,connected")))
        });
    }
}

fn set(client: &mut Client, key: &str, value: &str) -> Reply {
    client.cmd(&[b"SET", key.as_bytes(), value.as_bytes()])
}

#[test]
fn one_node_down_then_back_two_nodes_down_and_back() {
    let mut cluster = Cluster::start(&[]);
    let mut c1 = cluster.client(1);
    for i in 0..100 {
        assert_eq!(
            set(&mut c1, &format!("k{i}"), &format!("v{i}")),
            Reply::ok(),
            "k{i}"
        );
    }
    // Each write went to both other replicas (INFO cluster counts the
    // messages and the link writes carrying them; one client's sequential
    // writes batch nothing, so about one write each).
    let counter = |info: &str, name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let info = cluster.info(1);
    let sent = counter(&info, "peer_messages_sent");
    let writes = counter(&info, "peer_socket_writes");
    assert!(
        sent >= 200,
        "node 1 sent {sent} peer messages for 100 writes"
    );
    assert!(counter(&info, "peer_messages_received") >= 200, "{info}");
    assert!(writes >= 200, "{writes} link writes for {sent} messages");
    // SET options work and are refused as on a single node.
    assert_eq!(c1.cmd_str("SET kx v EX 10"), Reply::ok());
    assert_eq!(c1.cmd_str("TTL kx"), Reply::Integer(10));
    assert!(c1
        .cmd_str("SET k v EX 0")
        .is_error_starting("ERR invalid expire time in 'set' command"));
    assert!(c1
        .cmd_str("SET k v BOGUS")
        .is_error_starting("ERR syntax error"));
    // A long pipeline through one node: replies in order, none lost.
    let mut pipeline = Vec::new();
    for i in 0..3000 {
        pipeline.extend(Client::encode(&[b"SET", format!("p{i}").as_bytes(), b"x"]));
    }
    pipeline.extend(Client::encode(&[b"MGET", b"p0", b"p2999", b"nope"]));
    c1.send_raw(&pipeline);
    for i in 0..3000 {
        assert_eq!(c1.read_reply(), Some(Reply::ok()), "pipelined SET {i}");
    }
    assert_eq!(
        c1.read_reply(),
        Some(Reply::Array(vec![
            Reply::bulk("x"),
            Reply::bulk("x"),
            Reply::Nil
        ]))
    );
    let mut c2 = cluster.client(2);
    for i in 0..100 {
        assert_eq!(
            c2.cmd_str(&format!("GET k{i}")),
            Reply::bulk(format!("v{i}"))
        );
    }

    // One node down: writes at W=2 succeed, reads at R=2 see them.
    cluster.kill(3);
    for i in 100..200 {
        assert_eq!(
            set(&mut c1, &format!("k{i}"), &format!("v{i}")),
            Reply::ok(),
            "k{i} with node 3 down"
        );
    }
    for i in 0..200 {
        assert_eq!(
            c2.cmd_str(&format!("GET k{i}")),
            Reply::bulk(format!("v{i}")),
            "k{i}"
        );
    }
    cluster.wait_for("the detector to see node 3 down", |_, info| {
        info.contains("node_3:down")
    });

    // Back: its hints arrive and every replica holds every key.
    cluster.restart(3);
    cluster.wait_until_all_up();
    // Writes that waited for node 3 until their deadline left hints too;
    // all of them drain, and then every replica holds every key.
    let deadline = Instant::now() + Duration::from_secs(20);
    let missing = |cluster: &Cluster| -> Vec<String> {
        let mut missing = Vec::new();
        for id in 1..=3 {
            let mut c = cluster.client(id);
            for i in 0..200 {
                if c.cmd_str(&format!("DKV.LOCAL k{i}")) != Reply::bulk(format!("v{i}")) {
                    missing.push(format!("node {id} k{i}"));
                }
            }
        }
        missing
    };
    loop {
        let gaps = missing(&cluster);
        if gaps.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas still missing keys: {:?}",
            &gaps[..gaps.len().min(10)]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.wait_for("no hints left", |_, info| {
        info.contains("hints_pending:0\r\n")
    });
    let delivered: u64 = cluster
        .info(1)
        .lines()
        .find_map(|l| l.strip_prefix("hints_delivered:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(delivered >= 100, "node 1 delivered {delivered} hints");

    // Two down: writes at W=2 fail with -UNAVAILABLE.
    cluster.kill(2);
    cluster.kill(3);
    let mut c1 = cluster.client(1);
    let failed = set(&mut c1, "lost?", "x");
    assert!(failed.is_error_starting("UNAVAILABLE"), "{failed:?}");
    cluster.wait_for("the detector to see both down", |_, info| {
        info.contains("node_2:down") && info.contains("node_3:down")
    });
    let failed = set(&mut c1, "lost?", "y");
    assert!(
        failed.is_error_starting("UNAVAILABLE 0 of 2 required replicas"),
        "{failed:?}"
    );
    assert!(c1.cmd_str("GET k1").is_error_starting("UNAVAILABLE"));

    // They return: nothing acknowledged was lost.
    cluster.restart(2);
    cluster.restart(3);
    cluster.wait_until_all_up();
    let mut c3 = cluster.client(3);
    assert_eq!(c3.cmd_str("CONSISTENCY ALL"), Reply::ok());
    for i in 0..200 {
        assert_eq!(
            c3.cmd_str(&format!("GET k{i}")),
            Reply::bulk(format!("v{i}")),
            "k{i} after the outage"
        );
    }
    let info = cluster.info(1);
    assert!(info.contains("quorum_failures:"), "{info}");
}

#[test]
fn a_stale_replica_is_repaired_by_a_quorum_read() {
    // Hints expire at once and anti-entropy is off, so only read repair can
    // bring node 3 up to date.
    let mut cluster = Cluster::start(&["--max-hint-age-secs", "0", "--aae", "no"]);
    let mut c1 = cluster.client(1);
    assert_eq!(set(&mut c1, "k", "old"), Reply::ok());
    cluster.kill(3);
    assert_eq!(set(&mut c1, "k", "new"), Reply::ok());
    cluster.restart(3);
    cluster.wait_until_all_up();
    let mut c3 = cluster.client(3);
    assert_eq!(
        c3.cmd_str("DKV.LOCAL k"),
        Reply::bulk("old"),
        "node 3 should have missed the write"
    );
    // A quorum read asks every reachable replica, answers with the newest
    // at R replies, and repairs the stale one once it has answered too.
    let mut reader = cluster.client(2);
    assert_eq!(
        reader.cmd_str("CONSISTENCY"),
        Reply::Array(vec![
            Reply::bulk("read"),
            Reply::bulk("QUORUM"),
            Reply::bulk("write"),
            Reply::bulk("QUORUM")
        ])
    );
    assert_eq!(reader.cmd_str("GET k"), Reply::bulk("new"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while c3.cmd_str("DKV.LOCAL k") != Reply::bulk("new") {
        assert!(Instant::now() < deadline, "node 3 was not repaired");
        std::thread::sleep(Duration::from_millis(20));
    }
    // INFO's cluster state refreshes within tens of milliseconds.
    cluster.wait_for("node 2 to count the repair", |id, info| {
        id != 2 || info.contains("read_repairs:1")
    });
}

#[test]
fn hints_survive_a_restart_of_the_node_keeping_them() {
    let mut cluster = Cluster::start(&[]);
    cluster.kill(3);
    cluster.wait_for("the detector to see node 3 down", |_, info| {
        info.contains("node_3:down")
    });
    let mut c1 = cluster.client(1);
    for i in 0..50 {
        assert_eq!(set(&mut c1, &format!("h{i}"), "kept"), Reply::ok());
    }
    // Node 1 coordinated every write and keeps the hints for node 3.
    cluster.wait_for("node 1 to hold 50 hints", |id, info| {
        id != 1 || info.contains("hints_pending_node_3:50")
    });
    cluster.kill(1);
    cluster.restart(1);
    cluster.restart(3);
    cluster.wait_until_all_up();
    let mut c3 = cluster.client(3);
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..50 {
        while c3.cmd_str(&format!("DKV.LOCAL h{i}")) != Reply::bulk("kept") {
            assert!(Instant::now() < deadline, "h{i} never reached node 3");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    cluster.wait_for("no hints left", |_, info| {
        info.contains("hints_pending:0\r\n")
    });
}

/// A node that restarts serves quorum requests within a second of its
/// links coming up, and so do its peers: no request waits out the
/// request timeout (800 ms here) for a link that is not really up.
#[test]
fn a_restarted_node_serves_quorum_requests_within_a_second_of_its_handshakes() {
    let mut cluster = Cluster::start(&[]);
    assert_eq!(set(&mut cluster.client(1), "before", "1"), Reply::ok());
    cluster.kill(3);
    cluster.restart(3);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(cluster.info(3).contains("node_1:up,connected")
        && cluster.info(3).contains("node_2:up,connected"))
    {
        assert!(Instant::now() < deadline, "node 3 never connected");
        std::thread::sleep(Duration::from_millis(5));
    }
    let connected = Instant::now();
    let mut c3 = cluster.client(3);
    let mut c1 = cluster.client(1);
    let timed = |client: &mut Client, args: &[&[u8]]| {
        let started = Instant::now();
        let reply = client.cmd(args);
        (reply, started.elapsed())
    };
    // Until it has heard its peers' clocks the node may refuse to stamp,
    // at once; it must not make anyone wait.
    loop {
        let (reply, took) = timed(&mut c3, &[b"SET", b"after", b"3"]);
        assert!(took < Duration::from_millis(800), "{reply:?} took {took:?}");
        if reply == Reply::ok() {
            break;
        }
        assert!(
            reply.is_error_starting("UNAVAILABLE this node has heard the clocks"),
            "{reply:?}"
        );
        assert!(connected.elapsed() < Duration::from_secs(1), "{reply:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(connected.elapsed() < Duration::from_secs(1));
    let checks: [(u8, &[&[u8]]); 4] = [
        (3, &[b"GET", b"before"]),
        (1, &[b"GET", b"after"]),
        (1, &[b"SET", b"peer", b"1"]),
        (3, &[b"GET", b"peer"]),
    ];
    for (via, args) in checks {
        let client = if via == 3 { &mut c3 } else { &mut c1 };
        let (reply, took) = timed(client, args);
        assert!(
            !matches!(reply, Reply::Error(_)) && took < Duration::from_millis(800),
            "via {via} {args:?}: {reply:?} after {took:?}"
        );
    }
}

/// Writes `key-<i>` = `value-<i>` for `i` below `keys` through node 1,
/// pipelined, each acknowledged at QUORUM.
fn write_keys(cluster: &Cluster, keys: usize) {
    let mut client = cluster.client(1);
    let mut pipeline = Vec::new();
    for i in 0..keys {
        pipeline.extend(Client::encode(&[
            b"SET",
            format!("key-{i}").as_bytes(),
            format!("value-{i}").as_bytes(),
        ]));
    }
    client.send_raw(&pipeline);
    for i in 0..keys {
        assert_eq!(client.read_reply(), Some(Reply::ok()), "SET key-{i}");
    }
}

/// Waits (up to a minute, with no client reads but `DKV.LOCAL`) until
/// node `id` holds all of `keys` itself.
fn wait_until_refilled(cluster: &Cluster, id: usize, keys: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = local_count(cluster, id, keys);
        if held == keys {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {id} holds {held} of {keys} keys after a minute"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// How many of `keys` node `id` holds itself (`DKV.LOCAL`, pipelined).
fn local_count(cluster: &Cluster, id: usize, keys: usize) -> usize {
    let mut client = cluster.client(id);
    let mut pipeline = Vec::new();
    for i in 0..keys {
        pipeline.extend(Client::encode(&[
            b"DKV.LOCAL",
            format!("key-{i}").as_bytes(),
        ]));
    }
    client.send_raw(&pipeline);
    (0..keys)
        .filter(|&i| client.read_reply() == Some(Reply::bulk(format!("value-{i}"))))
        .count()
}

#[test]
fn each_disk_replaced_in_turn_loses_no_key() {
    // The sequence: 5,000 keys at QUORUM; then node 3, node 2 and
    // node 1 in turn lose their data directory and restart. Anti-entropy
    // refills each before the next goes, with no client reads.
    const KEYS: usize = 5000;
    let mut cluster = Cluster::start(&["--aae-interval-ms", "50"]);
    write_keys(&cluster, KEYS);
    for id in [3, 2, 1] {
        cluster.kill(id);
        std::fs::remove_dir_all(cluster.dir.path().join(format!("node-{id}"))).unwrap();
        cluster.restart(id);
        wait_until_refilled(&cluster, id, KEYS);
    }
    for id in 1..=3 {
        assert_eq!(local_count(&cluster, id, KEYS), KEYS, "node {id}");
    }
}

#[test]
fn writes_set_aside_behind_a_damaged_wal_record_come_back_from_replicas() {
    const KEYS: usize = 2000;
    let mut cluster = Cluster::start(&["--aae-interval-ms", "50"]);
    write_keys(&cluster, KEYS);
    // Node 3 stops; a byte in the middle of its log is damaged, so at
    // restart recovery keeps the records before it and sets the rest aside.
    cluster.kill(3);
    let wal = cluster.dir.path().join("node-3").join("wal");
    let segment = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a WAL segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    cluster.restart(3);
    let persistence = match cluster.client(3).cmd_str("INFO persistence") {
        Reply::Bulk(text) => String::from_utf8(text).unwrap(),
        other => panic!("INFO: {other:?}"),
    };
    let replayed: usize = persistence
        .lines()
        .find_map(|l| l.strip_prefix("recovery_records_replayed:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(
        replayed < KEYS && persistence.contains("recovery_files_kept_aside:1"),
        "the damage set nothing aside:\n{persistence}"
    );
    wait_until_refilled(&cluster, 3, KEYS);
}
