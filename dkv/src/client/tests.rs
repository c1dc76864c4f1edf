//! Client behaviour against scripted fake servers on 127.0.0.1: failover,
//! timeouts, malformed replies, and the consistency cache. (The client
//! against real nodes is in `tests/client.rs`.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::*;
use crate::resp::{parse_command, Limits};

type Handler = dyn Fn(&[String]) -> Option<Vec<u8>> + Send + Sync;

/// A server that answers each command with `handler`'s bytes (`None`: stay
/// silent) and records every command it got.
struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
    /// The `DKV.DEADLINE` of every wrapped request, in order.
    deadlines: Arc<Mutex<Vec<u64>>>,
    _thread: JoinHandle<()>,
}

impl Fake {
    fn start(handler: impl Fn(&[String]) -> Option<Vec<u8>> + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::clone(&seen);
        let deadlines = Arc::new(Mutex::new(Vec::new()));
        let deadline_log = Arc::clone(&deadlines);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming().take(8) {
                let Ok(mut stream) = stream else { return };
                let (handler, log) = (Arc::clone(&handler), Arc::clone(&log));
                let deadlines = Arc::clone(&deadline_log);
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        while let Ok(Some((command, used))) =
                            parse_command(&buf, &Limits::default())
                        {
                            buf.drain(..used);
                            let mut args: Vec<String> = command
                                .to_vecs()
                                .iter()
                                .map(|a| String::from_utf8_lossy(a).into_owned())
                                .collect();
                            // A data request comes wrapped in its deadline:
                            // handle and log what it wraps, and keep the
                            // deadline where the tests can see it.
                            if args.first().is_some_and(|a| a == "DKV.DEADLINE") {
                                let deadline: u64 = args[1].parse().unwrap_or(0);
                                deadlines.lock().unwrap().push(deadline);
                                args.drain(..2);
                            }
                            log.lock().unwrap().push(args.clone());
                            if let Some(reply) = handler(&args) {
                                if stream.write_all(&reply).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Fake {
            addr,
            seen,
            deadlines,
            _thread: thread,
        }
    }

    fn commands(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.join(" "))
            .collect()
    }
}

/// A plausible node: OK for writes, a value for GET, PONG.
fn echo_node(args: &[String]) -> Option<Vec<u8>> {
    Some(match args[0].as_str() {
        "GET" => Reply::Bulk(format!("value-of-{}", args[1]).into_bytes()).to_bytes(),
        "DEL" => b":1\r\n".to_vec(),
        "PING" => b"+PONG\r\n".to_vec(),
        _ => b"+OK\r\n".to_vec(),
    })
}

/// An address nothing listens on.
fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn quick() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_millis(500),
        timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    }
}

#[test]
fn connect_needs_an_address_and_a_reachable_node() {
    let e = Client::connect(&[], quick()).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = Client::connect(&[dead_addr(), dead_addr()], quick())
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains("no node reachable"), "{e}");
}

#[test]
fn data_requests_carry_their_deadline_and_others_do_not() {
    let fake = Fake::start(echo_node);
    let mut client = Client::connect(&[fake.addr], quick()).unwrap();
    let before = crate::clock::wall_millis();
    client.put(b"k", b"v", Consistency::Quorum, None).unwrap();
    client
        .get(b"k", Consistency::Quorum, Some(Duration::from_secs(3)))
        .unwrap();
    client.ping(None).unwrap();
    let after = crate::clock::wall_millis();
    let deadlines = fake.deadlines.lock().unwrap().clone();
    assert_eq!(deadlines.len(), 2, "PUT and GET only: {deadlines:?}");
    assert!(
        (before + 500..=after + 500).contains(&deadlines[0]),
        "{deadlines:?}"
    );
    assert!(
        (before + 3000..=after + 3000).contains(&deadlines[1]),
        "{deadlines:?}"
    );
    assert!(fake.commands().contains(&"PING".to_string()));
}

#[test]
fn a_server_timeout_is_a_timeout() {
    let e = ClientError::from_server("TIMEOUT", "the request's deadline passed");
    assert_eq!(e.kind(), ErrorKind::Timeout);
}

#[test]
fn connect_skips_unreachable_nodes_in_order() {
    let fake = Fake::start(echo_node);
    let mut client = Client::connect(&[dead_addr(), fake.addr], quick()).unwrap();
    assert_eq!(client.connected_to(), Some(fake.addr));
    assert_eq!(
        client.get(b"k", Consistency::Quorum, None).unwrap(),
        Some(b"value-of-k".to_vec())
    );
}

#[test]
fn consistency_is_sent_only_when_it_changes() {
    let fake = Fake::start(echo_node);
    let mut client = Client::connect(&[fake.addr], quick()).unwrap();
    client.get(b"a", Consistency::Quorum, None).unwrap();
    client.get(b"b", Consistency::One, None).unwrap();
    client.get(b"c", Consistency::One, None).unwrap();
    client.put(b"d", b"v", Consistency::All, None).unwrap();
    client.put(b"e", b"v", Consistency::All, None).unwrap();
    assert!(client.delete(b"f", Consistency::Count(2), None).unwrap());
    client.get(b"g", Consistency::One, None).unwrap();
    assert_eq!(
        fake.commands(),
        [
            "GET a",
            "CONSISTENCY READ ONE WRITE QUORUM",
            "GET b",
            "GET c",
            "CONSISTENCY READ ONE WRITE ALL",
            "SET d v",
            "SET e v",
            "CONSISTENCY READ ONE WRITE 2",
            "DEL f",
            "GET g",
        ]
    );
}

#[test]
fn a_refused_level_is_an_invalid_argument_and_the_command_is_not_sent() {
    let fake = Fake::start(|args| match args[0].as_str() {
        "CONSISTENCY" => Some(b"-ERR consistency 9 is more than the 3 replicas\r\n".to_vec()),
        _ => echo_node(args),
    });
    let mut client = Client::connect(&[fake.addr], quick()).unwrap();
    let e = client
        .put(b"k", b"v", Consistency::Count(9), None)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let e = client.get(b"k", Consistency::Count(0), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let e = client.get(b"", Consistency::One, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    // The connection is still good, and still at QUORUM.
    client.put(b"k", b"v", Consistency::Quorum, None).unwrap();
    assert_eq!(
        fake.commands(),
        ["CONSISTENCY READ QUORUM WRITE 9", "SET k v"]
    );
}

#[test]
fn error_replies_map_to_kinds() {
    let fake = Fake::start(|args| match args[0].as_str() {
        "SET" => Some(b"-UNAVAILABLE 1 of 2 required replicas answered\r\n".to_vec()),
        "GET" => Some(b"-IOERR disk on fire\r\n".to_vec()),
        _ => Some(b"-NOAUTH Authentication required.\r\n".to_vec()),
    });
    let mut client = Client::connect(&[fake.addr], quick()).unwrap();
    let kind = |r: Result<(), ClientError>| r.unwrap_err().kind();
    assert_eq!(
        kind(client.put(b"k", b"v", Consistency::Quorum, None)),
        ErrorKind::Unavailable
    );
    assert_eq!(
        kind(client.get(b"k", Consistency::Quorum, None).map(drop)),
        ErrorKind::Io
    );
    assert_eq!(kind(client.ping(None)), ErrorKind::Server);
}

#[test]
fn a_silent_node_times_out_and_the_next_request_reconnects() {
    let fake = Fake::start(|args| match args[1].as_str() {
        "slow" => None,
        _ => echo_node(args),
    });
    let mut client = Client::connect(&[fake.addr], quick()).unwrap();
    let started = Instant::now();
    let e = client
        .get(
            b"slow",
            Consistency::Quorum,
            Some(Duration::from_millis(100)),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        client.connected_to(),
        None,
        "a timed-out connection is dropped"
    );
    assert_eq!(
        client.get(b"fast", Consistency::Quorum, None).unwrap(),
        Some(b"value-of-fast".to_vec())
    );
}

#[test]
fn a_malformed_reply_is_a_protocol_error() {
    let fake = Fake::start(|_| Some(b"!nonsense\r\n".to_vec()));
    let mut client = Client::connect(&[fake.addr], quick()).unwrap();
    let e = client.ping(None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    let fake = Fake::start(|_| Some(b":5\r\n".to_vec()));
    let mut client = Client::connect(&[fake.addr], quick()).unwrap();
    let e = client.get(b"k", Consistency::Quorum, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
}

#[test]
fn a_closed_connection_fails_over_to_the_next_node() {
    // The first node closes every connection as soon as a command arrives.
    let closing = TcpListener::bind("127.0.0.1:0").unwrap();
    let closing_addr = closing.local_addr().unwrap();
    let _closer = std::thread::spawn(move || {
        for stream in closing.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let mut byte = [0u8; 1];
            let _ = stream.read(&mut byte);
        }
    });
    let fake = Fake::start(echo_node);
    let mut client = Client::connect(&[closing_addr, fake.addr], quick()).unwrap();
    assert_eq!(client.connected_to(), Some(closing_addr));
    client.put(b"k", b"v", Consistency::Quorum, None).unwrap();
    assert_eq!(client.connected_to(), Some(fake.addr));
    // (Given two nodes, the client asks the one it connects to for the
    // ring: `INFO cluster`.)
    assert_eq!(fake.commands(), ["INFO cluster", "SET k v"]);
}

#[test]
fn huge_timeouts_do_not_overflow_the_clock() {
    let fake = Fake::start(echo_node);
    let options = ClientOptions {
        connect_timeout: Duration::MAX,
        timeout: Duration::MAX,
        ..ClientOptions::default()
    };
    let mut client = Client::connect(&[fake.addr, fake.addr], options).unwrap();
    client.ping(Some(Duration::MAX)).unwrap();
    client.ping(None).unwrap();
}

#[test]
fn batches_and_status() {
    let fake = Fake::start(|args| {
        Some(match args[0].as_str() {
            "MGET" => Reply::Array(vec![Reply::Bulk(b"1".to_vec()), Reply::NullBulk]).to_bytes(),
            "INFO" => Reply::Bulk(b"node_1:self,up\r\nnode_2:down,disconnected\r\nhints_pending:3\r\nhints_pending_node_2:3\r\n".to_vec()).to_bytes(),
            _ => b"+OK\r\n".to_vec(),
        })
    });
    let mut client = Client::connect(&[fake.addr], quick()).unwrap();
    client
        .put_many(&[(b"a", b"1"), (b"b", b"2")], Consistency::Quorum, None)
        .unwrap();
    assert_eq!(
        client
            .get_many(&[b"a", b"zz"], Consistency::Quorum, None)
            .unwrap(),
        vec![Some(b"1".to_vec()), None]
    );
    assert!(client
        .get_many(&[], Consistency::Quorum, None)
        .unwrap()
        .is_empty());
    let status = client.status(None).unwrap();
    assert_eq!(status.hints_pending, 3);
    assert!(status
        .peer(crate::NodeId(2))
        .is_some_and(|p| !p.up && p.hints_pending == 3));
    assert_eq!(
        fake.commands(),
        ["MSET a 1 b 2", "MGET a zz", "INFO cluster"]
    );
}
