//! Hostile and careless clients against nodes in this process, over real
//! loopback sockets: clients that never read, unauthenticated floods,
//! more clients than allowed. The node must bound what each holds, close
//! the ones Redis would close, and keep serving everyone else.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{free_port, Client, Reply};
use dkv::config::ClusterConf;
use dkv::server::{self, Server, ServerConfig};
use dkv::wal::FsyncMode;
use dkv::NodeId;

/// Three nodes of one cluster (N=3, W=2, R=2) in this process.
fn cluster(dirs: &[tempfile::TempDir], tweak: impl Fn(&mut ServerConfig)) -> Vec<Server> {
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let mut text = String::from(
        "cluster_name = limits\nreplication_factor = 3\nwrite_quorum = 2\nread_quorum = 2\n",
    );
    for (i, (client, peer)) in ports.iter().enumerate() {
        text.push_str(&format!("node {} 127.0.0.1:{client} {peer}\n", i + 1));
    }
    let conf = ClusterConf::parse(&text).unwrap();
    let mut password = None;
    let nodes: Vec<Server> = (0..3)
        .map(|i| {
            let id = NodeId(i as u32 + 1);
            let mut config = ServerConfig::new(id, ports[i].0, dirs[i].path());
            config.cluster = conf.clone();
            config.store.fsync = FsyncMode::Never;
            config.replication.heartbeat_interval = Duration::from_millis(50);
            tweak(&mut config);
            password.clone_from(&config.requirepass);
            server::start(config).expect("node starts")
        })
        .collect();
    // Wait until node 1 takes a quorum write.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = Client::connect(nodes[0].client_addr());
    if let Some(password) = password {
        assert_eq!(c.cmd(&[b"AUTH", password.as_bytes()]), Reply::ok());
    }
    while c.cmd_str("SET ready yes") != Reply::ok() {
        assert!(Instant::now() < deadline, "the cluster did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    nodes
}

fn info_field(addr: std::net::SocketAddr, section: &str, field: &str) -> u64 {
    let mut c = Client::connect(addr);
    let Reply::Bulk(text) = c.cmd(&[b"INFO", section.as_bytes()]) else {
        panic!("INFO {section}")
    };
    let text = String::from_utf8(text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Polls `check` every 20 ms for up to 10 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_cluster_client_that_never_reads_is_closed_at_its_output_limit() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let limit = 4 << 20;
    let nodes = cluster(&dirs, |c| c.max_output_bytes = limit);
    let addr = nodes[0].client_addr();
    let value = vec![b'v'; 1 << 20];
    let mut writer = Client::connect(addr);
    assert_eq!(writer.cmd(&[b"SET", b"big", &value]), Reply::ok());

    // 200 quorum GETs of a 1 MiB value, never read: 200 MiB asked for.
    let mut hog = TcpStream::connect(addr).unwrap();
    let mut pipeline = Vec::new();
    for _ in 0..200 {
        pipeline.extend(Client::encode(&[b"GET", b"big"]));
    }
    hog.write_all(&pipeline).unwrap();
    eventually("the hog to be closed", || {
        info_field(addr, "stats", "client_output_buffer_limit_disconnections") >= 1
    });
    let peak = info_field(addr, "clients", "client_recent_max_output_buffer");
    // Closed past twice the limit, measured as memory held: never the
    // 200 MiB asked for.
    assert!(
        peak <= (2 * limit + 2 * value.len() + 4096) as u64,
        "peak output buffer {peak} past twice the limit {limit}"
    );
    // Everyone else is served, and the cluster is intact.
    assert_eq!(writer.cmd_str("GET ready"), Reply::bulk("yes"));
    for node in &nodes[1..] {
        assert_eq!(
            Client::connect(node.client_addr()).cmd_str("GET ready"),
            Reply::bulk("yes")
        );
    }
}

#[test]
fn unauthenticated_floods_get_answers_or_are_closed_never_a_crash() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(&dirs, |c| c.requirepass = Some("pw".into()));
    let addr = nodes[0].client_addr();

    // 20,000 pipelined PINGs in one write, read back: 20,000 NOAUTH.
    let mut reader = Client::connect(addr);
    let mut flood = Vec::new();
    for _ in 0..20_000 {
        flood.extend_from_slice(b"PING\r\n");
    }
    reader.send_raw(&flood);
    for _ in 0..20_000 {
        assert!(reader
            .read_reply()
            .expect("a reply")
            .is_error_starting("NOAUTH"));
    }

    // A million that are never read: closed once its unsent replies pass
    // the pre-auth bound, long before the 34 MB they ask for.
    let mut hog = TcpStream::connect(addr).unwrap();
    hog.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let chunk: Vec<u8> = b"PING\r\n".repeat(100_000);
    for _ in 0..10 {
        if hog.write_all(&chunk).is_err() {
            break; // closed already
        }
    }
    let mut authed = Client::connect(addr);
    assert_eq!(authed.cmd_str("AUTH pw"), Reply::ok());
    eventually("the unauthenticated hog to be closed", || {
        matches!(authed.cmd_str("INFO stats"), Reply::Bulk(text)
            if String::from_utf8_lossy(&text).contains("client_output_buffer_limit_disconnections:1"))
    });
    assert_eq!(authed.cmd_str("SET k v"), Reply::ok());
}

#[test]
fn clients_past_maxclients_are_told_and_closed_and_room_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(NodeId(1), 0, dir.path());
    config.max_clients = 4;
    let node = server::start(config).expect("node starts");
    let addr = node.client_addr();
    let mut clients: Vec<Client> = (0..4).map(|_| Client::connect(addr)).collect();
    for c in &mut clients {
        assert_eq!(c.cmd_str("PING"), Reply::Simple("PONG".into()));
    }
    let mut fifth = Client::connect(addr);
    assert_eq!(
        fifth.read_reply(),
        Some(Reply::Error("ERR max number of clients reached".into()))
    );
    assert!(fifth.is_closed());
    let Reply::Bulk(stats) = clients[0].cmd_str("INFO stats") else {
        panic!("INFO")
    };
    assert!(String::from_utf8_lossy(&stats).contains("rejected_connections:1"));
    let Reply::Bulk(info) = clients[0].cmd_str("INFO clients") else {
        panic!("INFO")
    };
    assert!(String::from_utf8_lossy(&info).contains("maxclients:4"));
    clients.truncate(2);
    eventually("room for a new client", || {
        let mut c = Client::connect(addr);
        c.cmd_str("PING") == Reply::Simple("PONG".into())
    });
}

#[test]
fn one_flag_bounds_values_on_every_path_and_its_error_names_it() {
    // A value of exactly --max-bulk-len, past the WAL's old fixed 64 MiB
    // cap, is kept by every replica; one byte more is refused by name.
    let max = 80 << 20;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // Copying 80 MiB to two replicas in a debug build on a busy machine
    // can take longer than the default request timeout.
    let nodes = cluster(&dirs, |c| {
        c.limits.max_bulk_len = max;
        c.replication.request_timeout = Duration::from_secs(60);
    });
    let addr = nodes[0].client_addr();
    let mut c = Client::connect(addr);
    let value = vec![b'x'; max];
    assert_eq!(c.cmd(&[b"SET", b"k", &value]), Reply::ok());
    assert!(matches!(c.cmd_str("GET k"), Reply::Bulk(v) if v.len() == max));
    // W=2 acknowledges before the third replica has applied: each replica
    // is given a bounded wait to hold its copy.
    for node in &nodes[1..] {
        let mut replica = Client::connect(node.client_addr());
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let local = replica.cmd_str("DKV.LOCAL k");
            if matches!(&local, Reply::Bulk(v) if v.len() == max) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "a replica lacks the value"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Refused on the header alone (the node closes before the data comes).
    let mut over = Client::connect(addr);
    over.send_raw(format!("*3\r\n$3\r\nSET\r\n$2\r\nk2\r\n${}\r\n", max + 1).as_bytes());
    assert_eq!(
        over.read_reply().expect("a reply"),
        Reply::Error(format!(
            "ERR Protocol error: invalid bulk length (over --max-bulk-len, {max} bytes)"
        ))
    );
    assert!(over.is_closed());
}
