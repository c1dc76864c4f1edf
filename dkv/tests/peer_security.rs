//! The peer port as a stranger and a squatter see it, over real loopback
//! sockets against a node started in this process: the cluster secret
//! never crosses the wire, a stranger without it is refused with nothing
//! learned, and a squatter on a stopped member's port gets no envelope.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{free_port, Client, Reply};
use dkv::config::ClusterConf;
use dkv::peer::{self, Hello, HelloReply, Proof, Transcript, PROTOCOL_VERSION};
use dkv::server::{self, Server, ServerConfig};
use dkv::NodeId;

const SECRET: &str = "correct horse battery staple";

/// Node 1 of a two-node cluster named `guarded`; node 2's ports are
/// `peer2` (its peer port) and an unused client port.
fn start_node1(peer1: u16, peer2: u16, dir: &std::path::Path) -> Server {
    let client1 = free_port();
    let client2 = free_port();
    let conf = ClusterConf::parse(&format!(
        "cluster_name = guarded\nreplication_factor = 2\nwrite_quorum = 1\nread_quorum = 1\nallow_weak_quorums = true\n\
         node 1 127.0.0.1:{client1} {peer1}\n\
         node 2 127.0.0.1:{client2} {peer2}\n"
    ))
    .unwrap();
    let mut config = ServerConfig::new(NodeId(1), client1, dir);
    config.cluster = conf;
    config.cluster_secret = SECRET.into();
    server::start(config).expect("node 1 starts")
}

/// Reads one whole frame (prefix included), or `None` on EOF or timeout.
fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).ok()?;
    let len = u32::from_le_bytes(prefix) as usize;
    assert!(len < 1 << 16, "a handshake frame of {len} bytes");
    let mut frame = prefix.to_vec();
    frame.resize(4 + len, 0);
    stream.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_squatter_on_a_stopped_members_port_never_sees_the_secret_nor_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (peer1, peer2) = (free_port(), free_port());
    // Node 2 is down; something else listens on its peer port.
    let squatter = TcpListener::bind(("127.0.0.1", peer2)).unwrap();
    let node1 = start_node1(peer1, peer2, dir.path());
    squatter.set_nonblocking(false).unwrap();
    let (mut conn, _) = squatter.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let hello_bytes = read_frame(&mut conn).expect("node 1 says hello");
    let (hello, _) = peer::decode_hello(&hello_bytes, 1 << 16).unwrap().unwrap();
    assert_eq!((hello.node_id, hello.to), (NodeId(1), NodeId(2)));
    let nonce = [7u8; peer::NONCE_LEN];
    let mut challenge = Vec::new();
    peer::encode_hello_reply(&HelloReply::Challenge { nonce }, &mut challenge).unwrap();
    conn.write_all(&challenge).unwrap();
    let proof_bytes = read_frame(&mut conn).expect("node 1 proves itself");
    peer::decode_proof(&proof_bytes, 1 << 16).unwrap().unwrap();
    // The squatter cannot prove itself back: it welcomes with a guess.
    let transcript = Transcript::new(&hello, NodeId(2), &nonce);
    let mut welcome = Vec::new();
    let forged = HelloReply::Welcome {
        node_id: NodeId(2),
        proof: peer::listener_proof(b"guess", &transcript, 0, "guarded"),
        settings_digest: 0,
        cluster_name: "guarded".into(),
    };
    peer::encode_hello_reply(&forged, &mut welcome).unwrap();
    conn.write_all(&welcome).unwrap();
    // A write makes node 1 want to talk to node 2 (its clock guard may
    // refuse it, having heard no peer: either way nothing may go out).
    let mut client = Client::connect(node1.client_addr());
    let _ = client.cmd_str("SET k v");
    let mut after = Vec::new();
    let _ = conn.read_to_end(&mut after);
    for seen in [&hello_bytes, &proof_bytes, &after] {
        assert!(!contains(seen, SECRET.as_bytes()), "the secret went out");
    }
    assert!(
        after.is_empty(),
        "node 1 sent {} bytes after a forged welcome",
        after.len()
    );
    let info = match client.cmd_str("INFO cluster") {
        Reply::Bulk(text) => String::from_utf8(text).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(
        info.contains("node_2:") && info.contains("disconnected"),
        "{info}"
    );
    assert!(info.contains("peer_handshakes_refused:"), "{info}");
}

/// Dials `addr` as node `claimed`, answers the challenge with a proof
/// under `secret`, and returns what the listener said last.
fn dial(addr: SocketAddr, claimed: u32, secret: &[u8]) -> (HelloReply, Vec<u8>) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        node_id: NodeId(claimed),
        to: NodeId(1),
        nonce: [9u8; peer::NONCE_LEN],
    };
    let mut wire = Vec::new();
    peer::encode_hello(&hello, &mut wire).unwrap();
    conn.write_all(&wire).unwrap();
    let first = read_frame(&mut conn).expect("a challenge");
    let mut heard = first.clone();
    let (reply, _) = peer::decode_challenge(&first, 1 << 16).unwrap().unwrap();
    let HelloReply::Challenge { nonce } = reply else {
        return (reply, heard);
    };
    let transcript = Transcript::new(&hello, NodeId(1), &nonce);
    let proof = Proof {
        proof: peer::dialler_proof(secret, &transcript),
    };
    let mut wire = Vec::new();
    peer::encode_proof(&proof, &mut wire).unwrap();
    conn.write_all(&wire).unwrap();
    let last = read_frame(&mut conn).expect("a verdict");
    heard.extend_from_slice(&last);
    let (reply, _) = peer::decode_hello_reply(&last, 1 << 16).unwrap().unwrap();
    // After a refusal the listener closes.
    if matches!(reply, HelloReply::Refused { .. }) {
        let mut rest = Vec::new();
        assert_eq!(
            conn.read_to_end(&mut rest).map(|_| rest.len()).ok(),
            Some(0)
        );
    }
    (reply, heard)
}

#[test]
fn strangers_are_refused_with_nothing_learned_and_members_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let (peer1, peer2) = (free_port(), free_port());
    let node1 = start_node1(peer1, peer2, dir.path());
    let addr = SocketAddr::from(([127, 0, 0, 1], peer1));

    let started = Instant::now();
    for _ in 0..50 {
        let (reply, heard) = dial(addr, 2, b"a guess");
        assert_eq!(
            reply,
            HelloReply::Refused {
                reason: peer::UNPROVEN_REFUSAL.into()
            }
        );
        assert!(!contains(&heard, b"guarded"), "the cluster name leaked");
    }
    assert!(started.elapsed() < Duration::from_secs(20));

    // The secret but a node id that is not a member: refused, with why.
    let (reply, _) = dial(addr, 9, SECRET.as_bytes());
    let HelloReply::Refused { reason } = reply else {
        panic!("{reply:?}")
    };
    assert!(reason.contains("not a member"), "{reason}");

    // The real node 2's handshake, from node 2's address: welcomed, with
    // the listener's own proof.
    let (reply, _) = dial(addr, 2, SECRET.as_bytes());
    assert!(
        matches!(&reply, HelloReply::Welcome { node_id: NodeId(1), cluster_name, .. } if cluster_name == "guarded"),
        "{reply:?}"
    );
    let mut client = Client::connect(node1.client_addr());
    let info = match client.cmd_str("INFO cluster") {
        Reply::Bulk(text) => String::from_utf8(text).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(info.contains("peer_handshakes_refused:51"), "{info}");
}

#[test]
fn a_flood_of_silent_connections_to_the_peer_port_is_bounded_and_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let (peer1, peer2) = (free_port(), free_port());
    let _node1 = start_node1(peer1, peer2, dir.path());
    let addr = SocketAddr::from(([127, 0, 0, 1], peer1));
    let mut flood: Vec<TcpStream> = (0..100)
        .map(|_| {
            let c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c
        })
        .collect();
    // Past 64 in their handshake, the rest are closed at once.
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let mut closed_at_once = 0;
    for c in flood.iter_mut().rev().take(36) {
        if matches!(c.read(&mut byte), Ok(0) | Err(_)) {
            closed_at_once += 1;
        }
    }
    assert_eq!(closed_at_once, 36);
    assert!(started.elapsed() < Duration::from_secs(3));
    // The 64 that stay silent are closed after the handshake timeout.
    for c in flood.iter_mut().take(64) {
        assert!(matches!(c.read(&mut byte), Ok(0) | Err(_)));
    }
    assert!(started.elapsed() < Duration::from_secs(9));
    // And the port takes a real handshake again.
    let (reply, _) = dial(addr, 2, SECRET.as_bytes());
    assert!(matches!(reply, HelloReply::Welcome { .. }), "{reply:?}");
}
