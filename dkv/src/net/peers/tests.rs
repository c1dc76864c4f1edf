//! [`Peers`] against a peer played by the test over real loopback sockets:
//! what an authenticated peer can make a node hold in memory.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use mio::{Events, Poll};

use super::*;
use crate::net::handshake::{Dialler, Listener, Outcome, PeerIdentity};
use crate::peer::{Envelope, Message};
use crate::version::Timestamp;

fn identity(id: u32) -> PeerIdentity {
    PeerIdentity {
        node_id: NodeId(id),
        secret: b"peers test secret".to_vec(),
        cluster_name: "dkv".into(),
        settings_digest: 7,
        max_frame: 1 << 20,
    }
}

fn free_addr() -> SocketAddr {
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

/// Node 1's peer sockets and the poll that drives them.
struct Node1 {
    poll: Poll,
    events: Events,
    peers: Peers,
}

impl Node1 {
    fn start(members: &[(NodeId, SocketAddr)]) -> Node1 {
        let poll = Poll::new().unwrap();
        let bind = members[0].1;
        let peers = Peers::new(poll.registry(), identity(1), bind, members, None).unwrap();
        Node1 {
            poll,
            events: Events::with_capacity(64),
            peers,
        }
    }

    /// One reactor turn as [`crate::net::reactor`] runs it: what was left
    /// unread, then the events of a poll of at most 10 ms, then timers.
    /// Returns the envelopes received.
    fn turn(&mut self) -> Vec<Envelope> {
        let mut received = Vec::new();
        let registry = self.poll.registry();
        self.peers.read_unread(registry, &mut received);
        let timeout = if self.peers.has_unread() {
            Duration::ZERO
        } else {
            Duration::from_millis(10)
        };
        self.poll.poll(&mut self.events, Some(timeout)).unwrap();
        for event in self.events.iter() {
            self.peers
                .handle_event(self.poll.registry(), event.token(), &mut received);
        }
        self.peers.on_timer(self.poll.registry(), Instant::now());
        self.peers.flush(self.poll.registry());
        received
    }
}

/// Reads what `socket` (non-blocking) has into `buf`; false once closed.
fn pump(socket: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        match socket.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

fn heartbeat(clock: u64) -> Vec<u8> {
    let envelope = Envelope {
        from: NodeId(2),
        clock: Timestamp(clock),
        message: Message::Heartbeat,
    };
    let mut frame = Vec::new();
    peer::encode_envelope(&envelope, &mut frame).unwrap();
    frame
}

/// Dials node 1 as node 2 and runs the handshake to its end, turning node
/// 1 meanwhile; returns the admitted connection.
fn dial_as_node2(node1: &mut Node1, addr: SocketAddr) -> TcpStream {
    let me = identity(2);
    let mut socket = TcpStream::connect(addr).unwrap();
    socket.set_nonblocking(true).unwrap();
    let (mut dialler, hello) = Dialler::start(&me, NodeId(1));
    socket.write_all(&hello).unwrap();
    let mut heard = Vec::new();
    for _ in 0..500 {
        assert!(node1.turn().is_empty());
        assert!(pump(&mut socket, &mut heard), "node 1 closed the handshake");
        while let Some((outcome, used)) = dialler.step(&me, &heard).unwrap() {
            heard.drain(..used);
            match outcome {
                Outcome::Send(bytes) => socket.write_all(&bytes).unwrap(),
                Outcome::Done(..) => return socket,
                Outcome::Refuse(_, reason) => panic!("refused: {reason}"),
            }
        }
    }
    panic!("the handshake did not finish in 500 turns");
}

#[test]
fn an_established_link_is_read_by_its_budget_per_turn_and_the_rest_the_next() {
    let (addr1, addr2) = (free_addr(), free_addr());
    let mut node1 = Node1::start(&[(NodeId(1), addr1), (NodeId(2), addr2)]);
    let budget = 4096;
    node1.peers.read_budget = budget;
    let mut socket = dial_as_node2(&mut node1, addr1);

    // Far more than a budget waits in the socket before node 1 looks.
    let frame_len = heartbeat(0).len();
    let mut burst = Vec::new();
    let count = 64 * budget / frame_len;
    for clock in 0..count {
        burst.extend_from_slice(&heartbeat(clock as u64));
    }
    socket.set_nonblocking(false).unwrap();
    socket.write_all(&burst).unwrap();
    std::thread::sleep(Duration::from_millis(50));

    // A turn reads a link again if it stopped at its budget, and then on
    // its event: two budgets and the rest of a frame begun before, at most.
    let most = 2 * budget + frame_len;
    let mut clocks = Vec::new();
    for _ in 0..1000 {
        let received = node1.turn();
        assert!(
            received.len() * frame_len <= most,
            "{} heartbeats ({} bytes) in one turn, over {most}",
            received.len(),
            received.len() * frame_len
        );
        for key in node1.peers.inbound.keys() {
            let conn = node1.peers.inbound.get(key).unwrap();
            assert!(
                conn.input.len() < frame_len,
                "{} bytes kept",
                conn.input.len()
            );
        }
        clocks.extend(received.iter().map(|e| e.clock.0));
        if clocks.len() == count {
            break;
        }
    }
    // Nothing lost, nothing out of order.
    assert_eq!(clocks, (0..count as u64).collect::<Vec<_>>());
}

#[test]
fn a_listener_that_speaks_after_its_welcome_is_disconnected() {
    let (addr1, addr2) = (free_addr(), free_addr());
    let members = [(NodeId(1), addr1), (NodeId(2), addr2)];
    let node2 = TcpListener::bind(addr2).unwrap();
    node2.set_nonblocking(true).unwrap();
    let mut node1 = Node1::start(&members);
    let me = identity(2);

    // Node 1 dials node 2; the test answers as node 2 and welcomes it.
    let mut socket = None;
    let mut listener = Listener::AwaitHello;
    let mut heard = Vec::new();
    let mut welcomed = false;
    for _ in 0..500 {
        node1.turn();
        if socket.is_none() {
            if let Ok((s, _)) = node2.accept() {
                s.set_nonblocking(true).unwrap();
                socket = Some(s);
            }
        }
        let Some(s) = socket.as_mut() else { continue };
        assert!(pump(s, &mut heard), "node 1 closed the handshake");
        let ip = addr1.ip();
        while let Some((outcome, used)) = listener.step(&me, &members, ip, &heard).unwrap() {
            heard.drain(..used);
            match outcome {
                Outcome::Send(bytes) => s.write_all(&bytes).unwrap(),
                Outcome::Done(_, bytes) => {
                    s.write_all(&bytes).unwrap();
                    welcomed = true;
                }
                Outcome::Refuse(_, reason) => panic!("refused: {reason}"),
            }
        }
        if welcomed {
            break;
        }
    }
    assert!(welcomed, "node 1's handshake did not finish in 500 turns");
    for _ in 0..50 {
        node1.turn();
    }
    assert!(node1.peers.poll_link_changes().contains(&(NodeId(2), true)));

    // Then node 2 sends on that link, which is node 1's to send on: a
    // well-formed envelope, and then a flood. Node 1 must close the link
    // (and not keep what came).
    let mut socket = socket.unwrap();
    socket.write_all(&heartbeat(1)).unwrap();
    let mut closed = false;
    for _ in 0..500 {
        node1.turn();
        let mut sink = Vec::new();
        if !pump(&mut socket, &mut sink) {
            closed = true;
            break;
        }
        let _ = socket.write(&[0u8; 4096]);
    }
    assert!(closed, "node 1 kept a link its listener was writing to");
    let outbound = &node1.peers.outbound[&NodeId(2)];
    assert!(
        outbound.input.is_empty(),
        "{} bytes kept",
        outbound.input.len()
    );
}
