//! The `dkv-node` binary as a real process: restart after SIGKILL,
//! graceful SIGTERM, flag and conf errors, and redis-cli against it.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{free_port, Client, NodeProcess, Reply};

#[test]
fn everything_written_survives_sigkill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let port = free_port();
    let node = NodeProcess::start(port, &["--data-dir", data, "--fsync", "always"]);
    let mut c = Client::connect(node.addr());
    let mut pipeline = Vec::new();
    for i in 0..2000 {
        pipeline.extend(Client::encode(&[
            b"SET",
            format!("key:{i}").as_bytes(),
            format!("value:{i}").as_bytes(),
        ]));
    }
    pipeline.extend(Client::encode(&[b"DEL", b"key:7"]));
    c.send_raw(&pipeline);
    for _ in 0..2000 {
        assert_eq!(c.read_reply(), Some(Reply::ok()));
    }
    assert_eq!(c.read_reply(), Some(Reply::Integer(1)));
    node.signal(libc::SIGKILL);
    drop(node);

    let node = NodeProcess::start(port, &["--data-dir", data, "--fsync", "always"]);
    let mut c = Client::connect(node.addr());
    for i in 0..2000 {
        let expected = if i == 7 {
            Reply::Nil
        } else {
            Reply::bulk(format!("value:{i}"))
        };
        assert_eq!(
            c.cmd(&[b"GET", format!("key:{i}").as_bytes()]),
            expected,
            "key:{i}"
        );
    }
    assert_eq!(c.cmd_str("DBSIZE"), Reply::Integer(1999));
}

#[test]
fn sigterm_finishes_cleanly_with_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let port = free_port();
    let mut node = NodeProcess::start(port, &["--data-dir", data, "--fsync", "periodic"]);
    let mut c = Client::connect(node.addr());
    assert_eq!(c.cmd_str("SET k v"), Reply::ok());
    node.signal(libc::SIGTERM);
    assert!(node.wait().success());
    // Periodic mode acknowledged before syncing; the clean stop synced it.
    let node = NodeProcess::start(port, &["--data-dir", data]);
    assert_eq!(
        Client::connect(node.addr()).cmd_str("GET k"),
        Reply::bulk("v")
    );
}

fn run_node_expecting_failure(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_dkv-node"))
        .args(args)
        .output()
        .unwrap();
    assert!(!output.status.success(), "dkv-node {args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_flags_and_conf_lines_exit_non_zero_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run_node_expecting_failure(&["--no-such-flag"]).contains("--no-such-flag"));
    assert!(run_node_expecting_failure(&["--fsync", "sometimes"]).contains("--fsync must be"));
    let err = run_node_expecting_failure(&["--fsync", "never", "--fsync-window-us", "500"]);
    assert!(
        err.contains("--fsync-window-us: an fsync window applies to fsync always only"),
        "{err}"
    );
    let err = run_node_expecting_failure(&["--fsync-window-us", "1000001"]);
    assert!(err.contains("at most one second"), "{err}");
    let conf = dir.path().join("cluster.conf");
    std::fs::write(&conf, "replication_factor = 1\nwrite_quorum = 1\nread_quorum = 1\nnode 1 127.0.0.1:7001\nfrobnicate = 3\n").unwrap();
    let err = run_node_expecting_failure(&["--cluster-conf", conf.to_str().unwrap()]);
    assert!(
        err.contains("line 5: unknown setting `frobnicate`"),
        "{err}"
    );
    std::fs::write(
        &conf,
        "replication_factor = 1\nwrite_quorum = 1\nread_quorum = 1\nnode 1 127.0.0.1:7001\n",
    )
    .unwrap();
    let err =
        run_node_expecting_failure(&["--cluster-conf", conf.to_str().unwrap(), "--node-id", "9"]);
    assert!(err.contains("node id 9 is not listed"), "{err}");
    let err = run_node_expecting_failure(&[
        "--bind",
        "0.0.0.0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(err.contains("protected mode"), "{err}");
}

#[test]
fn a_peer_port_beyond_loopback_needs_a_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("cluster.conf");
    // Node 1's peer address is not on loopback (a documentation address:
    // the check comes before anything binds); clients stay on loopback.
    std::fs::write(
        &conf,
        "replication_factor = 2\nwrite_quorum = 2\nread_quorum = 1\n\
         node 1 192.0.2.1:7001\nnode 2 192.0.2.2:7001\n",
    )
    .unwrap();
    let data = dir.path().join("d");
    let args = [
        "--cluster-conf",
        conf.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--port",
        "0",
    ];
    let err = run_node_expecting_failure(&args);
    assert!(
        err.contains("peer port on 192.0.2.1:17001 without a cluster secret"),
        "{err}"
    );
}

#[test]
fn help_explains_every_option() {
    let output = Command::new(env!("CARGO_BIN_EXE_dkv-node"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--node-id",
        "--port",
        "--cluster-conf",
        "--data-dir",
        "--wal-dir",
        "--snapshot-dir",
        "--fsync",
        "--snapshot-interval",
        "--bind",
        "--requirepass",
        "--max-bulk-len",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

/// redis-cli from Debian's redis-tools, which `.ci/run` installs.
fn redis_cli(port: u16, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli is required (apt-get install redis-tools)");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn redis_cli_sets_gets_and_deletes_binary_values() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _node = NodeProcess::start(
        port,
        &[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--requirepass",
            "pw",
        ],
    );
    let auth = ["--no-auth-warning", "-a", "pw"];
    let with_auth =
        |args: &[&str]| -> Vec<String> { auth.iter().chain(args).map(|s| s.to_string()).collect() };
    let run = |args: &[&str], stdin: Option<&[u8]>| {
        let args = with_auth(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        redis_cli(port, &args, stdin)
    };
    assert_eq!(run(&["PING"], None), b"PONG\n");
    assert_eq!(run(&["SET", "greeting", "hello"], None), b"OK\n");
    assert_eq!(run(&["GET", "greeting"], None), b"hello\n");
    // -x takes the last argument from stdin: binary-safe.
    let binary: Vec<u8> = (0..=255u8).collect();
    assert_eq!(run(&["-x", "SET", "blob"], Some(&binary)), b"OK\n");
    let mut raw = run(&["--raw", "GET", "blob"], None);
    assert_eq!(raw.pop(), Some(b'\n'));
    assert_eq!(raw, binary);
    assert_eq!(run(&["MSET", "a", "1", "b", "2"], None), b"OK\n");
    assert_eq!(run(&["MGET", "a", "b", "c"], None), b"1\n2\n\n");
    assert_eq!(run(&["DEL", "greeting", "a"], None), b"2\n");
    assert_eq!(run(&["EXISTS", "greeting"], None), b"0\n");
    // Without the password, commands are refused.
    let refused = redis_cli(port, &["GET", "b"], None);
    assert!(String::from_utf8_lossy(&refused).contains("NOAUTH"));
    // --pipe streams a mass insert and reports the replies.
    let mut mass = Vec::new();
    for i in 0..10_000 {
        mass.extend(Client::encode(&[b"SET", format!("m{i}").as_bytes(), b"x"]));
    }
    let mut piped = b"AUTH pw\r\n".to_vec();
    piped.extend(mass);
    let report = String::from_utf8_lossy(&redis_cli(port, &["--pipe"], Some(&piped))).into_owned();
    assert!(report.contains("errors: 0, replies: 10001"), "{report}");
}

/// Starts `dkv-node` with `args` under a descriptor limit of 64 (soft and
/// hard), its stderr piped, and waits until it listens on `port`.
fn start_with_64_descriptors(port: u16, args: &[&std::ffi::OsStr]) -> common::NodeProcess {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_dkv-node"));
    command
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; it only lowers this child's
    // own descriptor limit before exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    let node = common::NodeProcess { child, port };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(node.addr()).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "dkv-node did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    node
}

#[test]
fn maxclients_fits_the_descriptor_limit_and_the_next_client_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let port_arg = port.to_string();
    let mut node = start_with_64_descriptors(
        port,
        &[
            "--port".as_ref(),
            port_arg.as_ref(),
            "--data-dir".as_ref(),
            dir.path().as_os_str(),
        ],
    );
    // 64 descriptors, 32 + 2 kept for the node itself: 30 clients.
    let mut first = Client::connect(node.addr());
    let Reply::Bulk(info) = first.cmd_str("INFO clients") else {
        panic!("INFO")
    };
    assert!(
        String::from_utf8_lossy(&info).contains("maxclients:30"),
        "{}",
        String::from_utf8_lossy(&info)
    );
    let mut clients = vec![first];
    for _ in 0..29 {
        let mut c = Client::connect(node.addr());
        assert_eq!(c.cmd_str("PING"), Reply::Simple("PONG".into()));
        clients.push(c);
    }
    let mut extra = Client::connect(node.addr());
    assert_eq!(
        extra.read_reply(),
        Some(Reply::Error("ERR max number of clients reached".into()))
    );
    clients.truncate(10);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        Client::connect(node.addr()).cmd_str("PING"),
        Reply::Simple("PONG".into())
    );
    drop(clients);
    node.signal(libc::SIGTERM);
    assert!(node.wait().success());
    let mut stderr = String::new();
    use std::io::Read as _;
    if let Some(mut pipe) = node.child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(
        stderr.contains("maxclients lowered from 10000 to 30"),
        "{stderr}"
    );
}

#[test]
fn both_listeners_recover_by_themselves_once_descriptors_come_back() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (common::free_port(), common::free_port());
    let conf = dir.path().join("cluster.conf");
    // Node 1 runs alone; its peers never come, but its peer port is open.
    std::fs::write(
        &conf,
        format!(
            "replication_factor = 3\nwrite_quorum = 2\nread_quorum = 2\n\
             node 1 127.0.0.1:{client} {peer}\nnode 2 127.0.0.1:{} \nnode 3 127.0.0.1:{}\n",
            common::free_port(),
            common::free_port()
        ),
    )
    .unwrap();
    let data = dir.path().join("d");
    let node = start_with_64_descriptors(
        client,
        &[
            "--node-id".as_ref(),
            "1".as_ref(),
            "--cluster-conf".as_ref(),
            conf.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ],
    );
    // A stranger opens silent connections to the peer port until the node
    // has no descriptor left (the rest wait in the backlog).
    let peer_addr = std::net::SocketAddr::from(([127, 0, 0, 1], peer));
    let flood: Vec<std::net::TcpStream> = (0..60)
        .filter_map(|_| std::net::TcpStream::connect(peer_addr).ok())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // A client that comes now cannot be accepted yet.
    let mut waiting = std::net::TcpStream::connect(node.addr()).unwrap();
    waiting
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    waiting.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Descriptors come back: the waiting client is served with no new
    // connection to wake the listener, and the peer port takes
    // connections again.
    drop(flood);
    let mut reply = [0u8; 7];
    waiting.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+PONG\r\n");
    let mut again = std::net::TcpStream::connect(peer_addr).unwrap();
    again
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    // Garbage instead of a hello: the node reads it and closes, which it
    // can only do if it accepted the connection.
    again.write_all(&[0xff; 8]).unwrap();
    let mut byte = [0u8; 1];
    assert!(matches!(again.read(&mut byte), Ok(0) | Err(_)));
    drop(node);
}
