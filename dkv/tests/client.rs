//! The Rust client against real nodes started in this process with
//! `Node::start`: one node, and a 3-node cluster (N=3, W=2, R=2) built in
//! code on free 127.0.0.1 ports, surviving one node's stop.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use dkv::client::{Client, ClientOptions, ErrorKind};
use dkv::config::{ClusterConf, NodeAddr};
use dkv::node::Consistency;
use dkv::ring::Ring;
use dkv::server::{self, Server, ServerConfig};
use dkv::wal::FsyncMode;
use dkv::NodeId;

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    }
}

struct Cluster {
    _dir: tempfile::TempDir,
    addrs: Vec<SocketAddr>,
    nodes: Vec<Option<Server>>,
}

impl Cluster {
    fn start() -> Cluster {
        Cluster::with_nodes(3)
    }

    fn with_nodes(count: u32) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut conf = ClusterConf {
            cluster_name: "client-test".into(),
            ..ClusterConf::default()
        };
        for id in 1..=count {
            conf.nodes.push(NodeAddr {
                id: NodeId(id),
                client: free_addr(),
                peer: free_addr(),
            });
        }
        conf.validate().unwrap();
        let mut nodes = Vec::new();
        for member in &conf.nodes {
            let mut config = ServerConfig::new(
                member.id,
                member.client.port(),
                dir.path().join(format!("node-{}", member.id)),
            );
            config.store.fsync = FsyncMode::Never;
            config.cluster = conf.clone();
            config.replication.heartbeat_interval = Duration::from_millis(50);
            config.replication.failure_timeout = Duration::from_millis(400);
            config.replication.request_timeout = Duration::from_millis(800);
            nodes.push(Some(server::start(config).expect("node starts")));
        }
        let cluster = Cluster {
            _dir: dir,
            addrs: conf.nodes.iter().map(|n| n.client).collect(),
            nodes,
        };
        let peers = count as usize - 1;
        cluster.wait(|status| {
            status.peers.len() == peers && status.peers.iter().all(|p| p.up && p.connected)
        });
        cluster
    }

    /// Waits (up to 20 s) until every running node's status passes `check`.
    fn wait(&self, check: impl Fn(&dkv::client::NodeStatus) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for (i, node) in self.nodes.iter().enumerate() {
            if node.is_none() {
                continue;
            }
            let mut client = Client::connect(&self.addrs[i..=i], options()).unwrap();
            loop {
                let status = client.status(None).unwrap();
                if check(&status) {
                    break;
                }
                assert!(Instant::now() < deadline, "timed out: {status:?}");
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    }
}

#[test]
fn single_node_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig::new(NodeId(1), 0, dir.path());
    let node = server::start(config).unwrap();
    let mut c = Client::connect(&[node.client_addr()], options()).unwrap();
    let q = Consistency::Quorum;
    let value: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    c.put(b"bin\x00key", &value, q, None).unwrap();
    assert_eq!(c.get(b"bin\x00key", q, None).unwrap(), Some(value));
    c.put(b"empty", b"", q, None).unwrap();
    assert_eq!(c.get(b"empty", q, None).unwrap(), Some(Vec::new()));
    assert_eq!(c.get(b"missing", Consistency::One, None).unwrap(), None);
    assert!(c.delete(b"empty", q, None).unwrap());
    assert!(!c.delete(b"empty", q, None).unwrap());
    c.put_many(&[(b"a", b"1"), (b"b", b"2")], q, None).unwrap();
    assert_eq!(
        c.get_many(&[b"a", b"nope", b"b"], q, None).unwrap(),
        vec![Some(b"1".to_vec()), None, Some(b"2".to_vec())]
    );
    // N = 1: two replicas is out of range, and the server says so.
    let e = c.get(b"a", Consistency::Count(2), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert_eq!(
        c.get(b"a", Consistency::All, None).unwrap(),
        Some(b"1".to_vec())
    );
    let status = c.status(None).unwrap();
    assert_eq!(status.node_id, NodeId(1));
    assert!(status.peers.is_empty());
    c.ping(None).unwrap();

    // The node restarts: the idle connection broke, and the next request
    // goes through on a new one.
    let addr = node.client_addr();
    node.stop().unwrap();
    let config = ServerConfig::new(NodeId(1), addr.port(), dir.path());
    let node = server::start(config).unwrap();
    assert_eq!(c.get(b"a", q, None).unwrap(), Some(b"1".to_vec()));

    // The node goes away: the client reports it unavailable, not a hang.
    node.stop().unwrap();
    let e = c.get(b"a", q, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let e = Client::connect(&[addr], options()).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

#[test]
fn three_nodes_survive_one_stop_and_report_it() {
    let mut cluster = Cluster::start();
    let q = Consistency::Quorum;
    let mut c = Client::connect(&cluster.addrs, options()).unwrap();
    assert_eq!(c.connected_to(), Some(cluster.addrs[0]));
    for i in 0..50 {
        c.put(
            format!("k{i}").as_bytes(),
            format!("v{i}").as_bytes(),
            q,
            None,
        )
        .unwrap();
    }
    assert_eq!(
        c.get(b"k7", Consistency::All, None).unwrap(),
        Some(b"v7".to_vec())
    );

    // Stop the node the client is connected to: it fails over.
    if let Some(node) = cluster.nodes[0].take() {
        node.stop().unwrap();
    }
    for i in 0..50 {
        assert_eq!(
            c.get(format!("k{i}").as_bytes(), q, None).unwrap(),
            Some(format!("v{i}").into_bytes()),
            "k{i}"
        );
    }
    assert_eq!(c.connected_to(), Some(cluster.addrs[1]));
    c.put(b"after", b"stop", q, None).unwrap();
    c.put_many(&[(b"x", b"1"), (b"y", b"2")], q, None).unwrap();
    assert_eq!(
        c.get_many(&[b"after", b"x", b"y"], q, None).unwrap(),
        vec![
            Some(b"stop".to_vec()),
            Some(b"1".to_vec()),
            Some(b"2".to_vec())
        ]
    );
    // ALL cannot be met with a replica down.
    let e = c.get(b"after", Consistency::All, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");

    cluster.wait(|s| s.peer(NodeId(1)).is_some_and(|p| !p.up));
    // Writes made while node 1 is down leave hints for it.
    for i in 0..20 {
        c.put(format!("h{i}").as_bytes(), b"v", q, None).unwrap();
    }
    // INFO is refreshed every 50 ms: poll until the hints show.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = c.status(None).unwrap();
        if status.hints_pending > 0 {
            break status;
        }
        assert!(Instant::now() < deadline, "no hints: {status:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.node_id, NodeId(2));
    assert_eq!((status.replication_factor, status.write_quorum), (3, 2));
    let peer = status.peer(NodeId(1)).unwrap();
    assert!(!peer.up && !peer.connected, "{status:?}");
    assert!(status.peer(NodeId(3)).is_some_and(|p| p.up));
    assert!(peer.hints_pending > 0, "{status:?}");
    assert_eq!(status.hints_pending, peer.hints_pending);
}

#[test]
fn a_password_is_sent_on_every_new_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(NodeId(1), 0, dir.path());
    config.requirepass = Some("s3cret".into());
    let node = server::start(config).unwrap();
    let addr = node.client_addr();
    let mut anonymous = Client::connect(&[addr], options()).unwrap();
    let e = anonymous.get(b"k", Consistency::One, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server, "{e}");
    assert!(e.message().contains("NOAUTH"), "{e}");

    let wrong = ClientOptions {
        password: Some("guess".into()),
        ..options()
    };
    let e = Client::connect(&[addr], wrong).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Server, "{e}");

    let right = ClientOptions {
        password: Some("s3cret".into()),
        ..options()
    };
    let mut c = Client::connect(&[addr], right).unwrap();
    c.put(b"k", b"v", Consistency::One, None).unwrap();
    assert_eq!(
        c.get(b"k", Consistency::One, None).unwrap(),
        Some(b"v".to_vec())
    );
}

/// Calls of `command` node `addr` has run (`INFO commandstats`).
fn calls_of(addr: SocketAddr, command: &str) -> u64 {
    let mut one = Client::connect(&[addr], options()).unwrap();
    let text = one.info("commandstats", None).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// A client given every node sends each key's requests to one of its
/// replicas: the node it is connected to when that is one, else the key's
/// first replica. With N=3 of 5 nodes, a client without routing sends all
/// of them to its one node, which is no replica of 2 keys in 5.
#[test]
fn a_token_aware_client_sends_each_key_to_one_of_its_replicas() {
    let cluster = Cluster::with_nodes(5);
    let q = Consistency::Quorum;
    let keys: Vec<String> = (0..200).map(|i| format!("routed-{i}")).collect();
    let ids: Vec<NodeId> = (1..=5).map(NodeId).collect();
    let ring = Ring::new(&ids, ClusterConf::default().virtual_nodes);
    let mut expected = [0u64; 5];
    for key in &keys {
        let replicas = ring.preference_list(key.as_bytes(), 3);
        let via = if replicas.contains(&NodeId(1)) {
            NodeId(1)
        } else {
            replicas[0]
        };
        expected[via.0 as usize - 1] += 1;
    }
    assert!(expected[0] < 200, "some keys are not node 1's");

    let mut routed = Client::connect(&cluster.addrs, options()).unwrap();
    for key in &keys {
        routed.put(key.as_bytes(), b"v", q, None).unwrap();
        assert_eq!(
            routed.get(key.as_bytes(), q, None).unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
    let got: Vec<u64> = cluster.addrs.iter().map(|&a| calls_of(a, "set")).collect();
    assert_eq!(got, expected, "SETs per node");
    let gets: Vec<u64> = cluster.addrs.iter().map(|&a| calls_of(a, "get")).collect();
    assert_eq!(gets, expected, "GETs per node");

    // Routing off: everything through node 1, and read back everywhere.
    let plain_options = ClientOptions {
        token_aware: false,
        ..options()
    };
    let mut plain = Client::connect(&cluster.addrs, plain_options).unwrap();
    for key in &keys {
        plain.put(key.as_bytes(), b"w", q, None).unwrap();
    }
    assert_eq!(calls_of(cluster.addrs[0], "set"), expected[0] + 200);
    for key in &keys {
        assert_eq!(
            routed.get(key.as_bytes(), q, None).unwrap().as_deref(),
            Some(&b"w"[..])
        );
    }

    // A replica gone: its keys go to the next replica, or the ordinary
    // way; nothing fails that a quorum can answer.
    let mut cluster = cluster;
    if let Some(node) = cluster.nodes[1].take() {
        node.stop().unwrap();
    }
    for key in &keys {
        routed.put(key.as_bytes(), b"x", q, None).unwrap();
        assert_eq!(
            routed.get(key.as_bytes(), q, None).unwrap().as_deref(),
            Some(&b"x"[..])
        );
    }
}
