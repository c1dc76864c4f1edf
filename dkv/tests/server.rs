//! The node over real loopback sockets: commands, pipelining, AUTH, and
//! bad input that must never hurt other connections.

mod common;

use std::time::Duration;

use common::{Client, Reply};
use dkv::server::{self, Server, ServerConfig};
use dkv::wal::FsyncMode;
use dkv::NodeId;

fn start(dir: &std::path::Path, tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    let mut config = ServerConfig::new(NodeId(1), 0, dir);
    config.store.fsync = FsyncMode::Always;
    tweak(&mut config);
    server::start(config).expect("node starts")
}

#[test]
fn basic_commands_with_binary_values() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), |_| {});
    let mut c = Client::connect(node.client_addr());
    assert_eq!(c.cmd_str("PING"), Reply::Simple("PONG".into()));
    assert_eq!(c.cmd_str("ping hello"), Reply::bulk("hello"));
    assert_eq!(c.cmd_str("ECHO hi"), Reply::bulk("hi"));
    let key: &[u8] = b"bin\x00key\r\n";
    let value: Vec<u8> = (0..=255u8).collect();
    assert_eq!(c.cmd(&[b"SET", key, &value]), Reply::ok());
    assert_eq!(c.cmd(&[b"GET", key]), Reply::Bulk(value.clone()));
    assert_eq!(c.cmd(&[b"SET", b"empty", b""]), Reply::ok());
    assert_eq!(c.cmd(&[b"GET", b"empty"]), Reply::bulk(""));
    assert_eq!(c.cmd_str("GET missing"), Reply::Nil);
    assert_eq!(c.cmd(&[b"EXISTS", key, b"missing", key]), Reply::Integer(2));
    assert_eq!(c.cmd(&[b"DEL", key, b"missing"]), Reply::Integer(1));
    assert_eq!(c.cmd(&[b"GET", key]), Reply::Nil);
    assert_eq!(c.cmd(&[b"DEL", key]), Reply::Integer(0));
    assert_eq!(c.cmd_str("MSET a 1 b 2 c 3"), Reply::ok());
    assert_eq!(
        c.cmd_str("MGET a nope c"),
        Reply::Array(vec![Reply::bulk("1"), Reply::Nil, Reply::bulk("3")])
    );
    assert!(c
        .cmd_str("MSET a 1 b")
        .is_error_starting("ERR wrong number of arguments"));
    assert_eq!(c.cmd_str("DBSIZE"), Reply::Integer(4));
    assert!(c
        .cmd_str("SET k v EX 0")
        .is_error_starting("ERR invalid expire time in 'set' command"));
    assert!(c
        .cmd_str("SET k v BOGUS")
        .is_error_starting("ERR syntax error"));
    assert!(c
        .cmd_str("GET")
        .is_error_starting("ERR wrong number of arguments for 'get'"));
    assert!(c
        .cmd_str("FLUSHALL now")
        .is_error_starting("ERR syntax error"));
    assert_eq!(c.cmd_str("SELECT 0"), Reply::ok());
    assert!(c
        .cmd_str("SELECT 1")
        .is_error_starting("ERR DB index is out of range"));
    assert!(c.cmd_str("HELLO 4").is_error_starting("NOPROTO"));
    // RESP3, as redis-py 8 asks for by default: nulls become `_`.
    let mut r3 = Client::connect(node.client_addr());
    let Reply::Array(hello3) = r3.cmd_str("HELLO 3") else {
        panic!("HELLO 3")
    };
    assert_eq!(hello3[4..6], [Reply::bulk("proto"), Reply::Integer(3)]);
    r3.send_raw(&Client::encode(&[b"GET", b"missing"]));
    assert_eq!(r3.read_reply(), Some(Reply::Nil));
    let Reply::Array(hello) = c.cmd_str("HELLO 2") else {
        panic!("HELLO 2")
    };
    assert_eq!(hello[0], Reply::bulk("server"));
    assert_eq!(
        c.cmd_str("CONFIG GET save"),
        Reply::Array(vec![Reply::bulk("save"), Reply::bulk("")])
    );
    assert_eq!(
        c.cmd_str("CONFIG GET appendonly"),
        Reply::Array(vec![Reply::bulk("appendonly"), Reply::bulk("yes")])
    );
    assert!(matches!(c.cmd_str("COMMAND"), Reply::Array(v) if v.len() > 10));
    assert_eq!(c.cmd_str("COMMAND DOCS"), Reply::Array(vec![]));
    let Reply::Bulk(info) = c.cmd_str("INFO") else {
        panic!("INFO")
    };
    let info = String::from_utf8(info).unwrap();
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Keyspace",
    ] {
        assert!(
            info.contains(section),
            "{section} missing from INFO:\n{info}"
        );
    }
    assert!(info.contains("db0:keys=4,"), "{info}");
    assert!(info.contains("connected_clients:2\r\n"), "{info}");
    assert_eq!(c.cmd_str("QUIT"), Reply::ok());
    assert!(c.is_closed());
    node.stop().unwrap();
}

#[test]
fn inline_commands_work() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), |_| {});
    let mut c = Client::connect(node.client_addr());
    c.send_raw(b"SET greeting \"hello world\"\r\nGET greeting\r\n\r\nPING\n");
    assert_eq!(c.read_reply(), Some(Reply::ok()));
    assert_eq!(c.read_reply(), Some(Reply::bulk("hello world")));
    assert_eq!(c.read_reply(), Some(Reply::Simple("PONG".into())));
}

#[test]
fn a_pipeline_of_ten_thousand_commands_answers_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), |_| {});
    let mut c = Client::connect(node.client_addr());
    let mut pipeline = Vec::new();
    for i in 0..5000 {
        pipeline.extend(Client::encode(&[
            b"SET",
            format!("k{i}").as_bytes(),
            format!("v{i}").as_bytes(),
        ]));
        pipeline.extend(Client::encode(&[b"GET", format!("k{i}").as_bytes()]));
    }
    c.send_raw(&pipeline);
    for i in 0..5000 {
        assert_eq!(c.read_reply(), Some(Reply::ok()), "SET {i}");
        assert_eq!(
            c.read_reply(),
            Some(Reply::bulk(format!("v{i}"))),
            "GET {i}"
        );
    }
    assert_eq!(c.cmd_str("DBSIZE"), Reply::Integer(5000));
}

#[test]
fn pipelines_work_with_commands_on_the_reactor_thread() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), |_| {});
    let mut c = Client::connect(node.client_addr());
    let mut pipeline = Vec::new();
    for i in 0..3000 {
        pipeline.extend(Client::encode(&[b"SET", format!("k{i}").as_bytes(), b"v"]));
    }
    c.send_raw(&pipeline);
    for _ in 0..3000 {
        assert_eq!(c.read_reply(), Some(Reply::ok()));
    }
}

#[test]
fn auth_is_required_when_a_password_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), |c| c.requirepass = Some("s3cret".into()));
    let mut c = Client::connect(node.client_addr());
    assert!(c.cmd_str("GET k").is_error_starting("NOAUTH"));
    assert!(c.cmd_str("AUTH wrong").is_error_starting("WRONGPASS"));
    assert!(c
        .cmd_str("AUTH someone s3cret")
        .is_error_starting("WRONGPASS"));
    assert_eq!(c.cmd_str("AUTH s3cret"), Reply::ok());
    assert_eq!(c.cmd_str("SET k v"), Reply::ok());
    let mut d = Client::connect(node.client_addr());
    assert!(matches!(
        d.cmd_str("HELLO 2 AUTH default s3cret"),
        Reply::Array(_)
    ));
    assert_eq!(d.cmd_str("GET k"), Reply::bulk("v"));

    // Unauthenticated connections may only send small requests.
    let mut e = Client::connect(node.client_addr());
    let big = vec![b'x'; 100_000];
    e.send_raw(&Client::encode(&[b"AUTH", &big]));
    assert!(e
        .read_reply()
        .unwrap()
        .is_error_starting("ERR Protocol error"));
    assert!(e.is_closed());
    assert_eq!(c.cmd_str("GET k"), Reply::bulk("v"));
}

#[test]
fn auth_without_a_password_configured_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), |_| {});
    let mut c = Client::connect(node.client_addr());
    assert!(c
        .cmd_str("AUTH x")
        .is_error_starting("ERR AUTH <password> called without any password configured"));
}

#[test]
fn an_empty_requirepass_is_no_password_as_in_redis() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), |c| c.requirepass = Some(String::new()));
    let mut c = Client::connect(node.client_addr());
    assert_eq!(c.cmd_str("SET k v"), Reply::ok());
    assert!(c
        .cmd_str("AUTH x")
        .is_error_starting("ERR AUTH <password> called without any password configured"));
    drop(c);
    node.stop().unwrap();
    // Nor does it satisfy protected mode.
    let mut config = ServerConfig::new(NodeId(1), 0, dir.path());
    config.bind = std::net::IpAddr::from([0, 0, 0, 0]);
    config.requirepass = Some(String::new());
    let refused = server::start(config).err().map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("protected mode")),
        "{refused:?}"
    );
}

/// Sends `bytes` on a fresh connection and returns what came back before
/// the server closed it.
fn bad_input(addr: std::net::SocketAddr, bytes: &[u8]) -> Reply {
    let mut c = Client::connect(addr);
    c.send_raw(bytes);
    let reply = c.read_reply().expect("an error reply before the close");
    assert!(c.is_closed(), "connection left open after {reply:?}");
    reply
}

#[test]
fn bad_input_gets_an_error_and_never_hurts_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), |c| {
        c.limits.max_args = 1000;
        c.limits.max_bulk_len = 1 << 20;
    });
    let addr = node.client_addr();
    let mut good = Client::connect(addr);
    assert_eq!(good.cmd_str("SET survivor yes"), Reply::ok());

    let cases: &[(&[u8], &str)] = &[
        (b"*1\r\n:5\r\n", "ERR Protocol error: expected '$', got ':'"),
        (b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"),
        (
            b"*1\r\n$99999999999999\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            b"*1\r\n$2000000\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            b"*1000001\r\n",
            "ERR Protocol error: invalid multibulk length",
        ),
        (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$3\r\nabcXY", "ERR Protocol error"),
    ];
    for (bytes, expected) in cases {
        let reply = bad_input(addr, bytes);
        assert!(
            reply.is_error_starting(expected),
            "{:?} -> {reply:?}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(good.cmd_str("GET survivor"), Reply::bulk("yes"));
    }

    // An inline line with unbalanced quotes is skipped: the stream is still
    // in step, so the connection stays usable.
    let mut inline = Client::connect(addr);
    inline.send_raw(b"SET \"unbalanced\r\nPING\r\n");
    assert!(inline
        .read_reply()
        .unwrap()
        .is_error_starting("ERR Protocol error: unbalanced quotes"));
    assert_eq!(inline.read_reply(), Some(Reply::Simple("PONG".into())));
    drop(inline);

    // Too many arguments for the limit.
    let mut many = b"*1001\r\n".to_vec();
    many.extend(std::iter::repeat_n(&b"$1\r\nx\r\n"[..], 1001).flatten());
    assert!(bad_input(addr, &many).is_error_starting("ERR Protocol error"));

    // A half-sent command followed by a close.
    {
        let mut half = Client::connect(addr);
        half.send_raw(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf");
    }
    assert_eq!(good.cmd_str("GET half"), Reply::Nil);
    assert_eq!(good.cmd_str("GET survivor"), Reply::bulk("yes"));
    // Every bad connection, the half-sent one included, is closed.
    let connected = || {
        node.stats()
            .connected_clients
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while connected() != 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(connected(), 1);
}

#[test]
fn many_nodes_run_in_one_process() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes: Vec<Server> = dirs.iter().map(|d| start(d.path(), |_| {})).collect();
    for (i, node) in nodes.iter().enumerate() {
        let mut c = Client::connect(node.client_addr());
        assert_eq!(
            c.cmd(&[b"SET", b"who", i.to_string().as_bytes()]),
            Reply::ok()
        );
    }
    for (i, node) in nodes.iter().enumerate() {
        let mut c = Client::connect(node.client_addr());
        assert_eq!(c.cmd_str("GET who"), Reply::bulk(i.to_string()));
    }
    for node in nodes {
        node.stop().unwrap();
    }
}

/// One `name:value` line of an INFO section, as a number.
fn info_number(c: &mut Client, section: &str, name: &str) -> u64 {
    let text = match c.cmd_str(&format!("INFO {section}")) {
        Reply::Bulk(text) => String::from_utf8(text).unwrap(),
        other => panic!("{other:?}"),
    };
    let prefix = format!("{name}:");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn info_persistence_counts_the_logs_records_and_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), |_| {});
    let mut c = Client::connect(node.client_addr());
    let records = info_number(&mut c, "persistence", "wal_records_written");
    let fsyncs = info_number(&mut c, "persistence", "wal_fsyncs");
    // One at a time under `--fsync always`: each SET is answered after an
    // fsync of its own record.
    for i in 0..10 {
        assert_eq!(c.cmd_str(&format!("SET k{i} v")), Reply::ok());
    }
    let records_after = info_number(&mut c, "persistence", "wal_records_written");
    let fsyncs_after = info_number(&mut c, "persistence", "wal_fsyncs");
    assert_eq!(records_after - records, 10);
    assert!(fsyncs_after - fsyncs >= 10, "{fsyncs} -> {fsyncs_after}");
    assert!(info_number(&mut c, "persistence", "wal_write_rounds") >= fsyncs_after);
}

#[test]
fn data_survives_stop_and_start() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), |_| {});
    let mut c = Client::connect(node.client_addr());
    assert_eq!(c.cmd_str("SET persistent yes"), Reply::ok());
    drop(c);
    node.stop().unwrap();
    let node = start(dir.path(), |_| {});
    let mut c = Client::connect(node.client_addr());
    assert_eq!(c.cmd_str("GET persistent"), Reply::bulk("yes"));
}

#[test]
fn a_client_that_does_not_read_is_not_read_from() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 1 << 20;
    let node = start(dir.path(), |c| c.max_output_bytes = limit);
    let mut c = Client::connect(node.client_addr());
    let value = vec![b'v'; 100 * 1024];
    assert_eq!(c.cmd(&[b"SET", b"big", &value]), Reply::ok());
    // 300 GETs ask for 30 MB of replies; send them all without reading.
    let mut pipeline = Vec::new();
    for _ in 0..300 {
        pipeline.extend(Client::encode(&[b"GET", b"big"]));
    }
    c.send_raw(&pipeline);
    std::thread::sleep(Duration::from_millis(300));
    let mut observer = Client::connect(node.client_addr());
    let Reply::Bulk(info) = observer.cmd_str("INFO clients") else {
        panic!("INFO")
    };
    let info = String::from_utf8(info).unwrap();
    let peak: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("client_recent_max_output_buffer:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // At most the limit plus one batch's budget (half the limit) plus one
    // reply: never the 30 MB asked for.
    assert!(
        peak <= limit + limit / 2 + value.len() + 64,
        "peak output buffer {peak}"
    );
    for _ in 0..300 {
        assert_eq!(c.read_reply(), Some(Reply::Bulk(value.clone())));
    }
    assert_eq!(c.cmd_str("PING"), Reply::Simple("PONG".into()));
}
