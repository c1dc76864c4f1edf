//! Which replicas a read asks, and what it does when one of them is slow
//! or gone, across three hand-driven nodes.

use super::tests::Trio;
use super::*;

/// Every output `node` has queued, taken out.
fn drain_outputs(node: &mut Node<MemDisk>) -> Vec<Output> {
    std::iter::from_fn(|| node.poll_output()).collect()
}

/// The peers node `via` sent a `Read` to, from its outputs so far (the
/// replies and other messages stay queued for the trio).
fn reads_sent(trio: &mut Trio, via: u32) -> Vec<NodeId> {
    let node = &mut trio.nodes[via as usize - 1];
    let outputs = drain_outputs(node);
    let asked = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Send { to, envelope } if matches!(envelope.message, Message::Read { .. }) => {
                Some(*to)
            }
            _ => None,
        })
        .collect();
    node.outputs.extend(outputs);
    asked
}

fn start_get(trio: &mut Trio, via: u32, key: &'static str) -> OpId {
    let client = OpId::single(trio.next_client);
    trio.next_client += 1;
    let now = trio.at_node(via as usize - 1);
    trio.nodes[via as usize - 1].handle_request(
        now,
        client,
        Op::Get {
            key: key.as_bytes(),
        },
        Consistency::Quorum,
        None,
    );
    client
}

fn wait_reply(trio: &mut Trio, client: OpId, millis: u64) -> Option<OpResult> {
    for _ in 0..millis {
        trio.settle();
        if let Some(i) = trio.replies.iter().position(|(c, _)| *c == client) {
            return Some(trio.replies.remove(i).1);
        }
        trio.now += 1;
    }
    None
}

fn assert_reads_v(reply: &Option<OpResult>) {
    assert!(
        matches!(reply, Some(Ok(OpReply::Value { value: Some(v), .. })) if v == b"v"),
        "{reply:?}"
    );
}

/// With N=3 and R=2 a coordinator holding a copy asks one peer, and
/// successive reads take the two peers in turn.
#[test]
fn a_quorum_read_asks_its_own_copy_and_one_peer_in_turn() {
    let mut trio = Trio::new();
    assert!(trio.put(1, "k", "v").is_ok());
    trio.settle();
    let mut asked = Vec::new();
    for _ in 0..4 {
        let client = start_get(&mut trio, 1, "k");
        let sent = reads_sent(&mut trio, 1);
        assert_eq!(sent.len(), 1, "one peer asked: {sent:?}");
        asked.extend(sent);
        let reply = wait_reply(&mut trio, client, 10);
        assert_reads_v(&reply);
    }
    assert_eq!(asked[0], asked[2]);
    assert_eq!(asked[1], asked[3]);
    assert_ne!(asked[0], asked[1]);
    assert_eq!(trio.nodes[0].stats().read_hedges, 0);
}

/// A peer that stops answering but is not yet believed down (paused,
/// say): a read that asked it asks the spare at its hedge time and
/// answers long before the failure detector or the request deadline.
#[test]
fn a_read_that_asked_a_silent_peer_asks_the_spare_at_its_hedge_time() {
    let mut trio = Trio::new();
    assert!(trio.put(1, "k", "v").is_ok());
    trio.settle();
    trio.down.push(NodeId(3));
    let hedge = trio.nodes[0].settings.read_hedge_after.as_millis() as u64;
    let failure = trio.nodes[0].settings.failure_timeout.as_millis() as u64;
    assert!(
        hedge + 5 < failure,
        "the test needs the hedge to come first"
    );
    let started = trio.now;
    // One of two reads asks node 3 first.
    for _ in 0..2 {
        let client = start_get(&mut trio, 1, "k");
        let reply = wait_reply(&mut trio, client, failure);
        assert_reads_v(&reply);
    }
    assert!(trio.nodes[0].is_up(NodeId(3)), "not yet believed down");
    assert!(trio.now - started < failure);
    assert_eq!(trio.nodes[0].stats().read_hedges, 1);
}

/// An asked peer the transport cannot reach is replaced by the spare at
/// once, without waiting for the hedge.
#[test]
fn an_unreachable_peer_is_replaced_by_the_spare_at_once() {
    let mut trio = Trio::new();
    assert!(trio.put(1, "k", "v").is_ok());
    trio.settle();
    for _ in 0..2 {
        let client = start_get(&mut trio, 1, "k");
        let sent = reads_sent(&mut trio, 1);
        let [peer] = sent[..] else {
            panic!("one peer asked: {sent:?}");
        };
        let now = trio.at_node(0);
        let node = &mut trio.nodes[0];
        for output in drain_outputs(node) {
            match output {
                Output::Send { to, envelope } if to == peer => {
                    node.handle_undeliverable(now, to, envelope.message)
                }
                other => node.outputs.push_back(other),
            }
        }
        let spare = reads_sent(&mut trio, 1);
        assert_eq!(spare.len(), 1, "the spare asked: {spare:?}");
        assert_ne!(spare[0], peer);
        let reply = wait_reply(&mut trio, client, 2);
        assert_reads_v(&reply);
    }
    assert_eq!(trio.nodes[0].stats().read_hedges, 0);
}

fn replies(node: &mut Node<MemDisk>) -> Vec<(OpId, OpResult)> {
    drain_outputs(node)
        .into_iter()
        .filter_map(|output| match output {
            Output::Reply { op, result } => Some((op, result)),
            Output::Send { .. } => None,
        })
        .collect()
}

/// A read waits for the log only when its own key has a write that is not
/// durable yet: a GET of another key answers at once (before, every read
/// waited for the last write applied to any key).
#[test]
fn a_read_waits_for_its_own_keys_write_and_no_other() {
    let at = Now {
        mono: 0,
        wall: 1_000_000,
    };
    let mut node = Node::new(NodeSettings::single(NodeId(1)), MemDisk::new(), at);
    let request = |node: &mut Node<MemDisk>, call: u64, op: Op<'_>| {
        node.handle_request(at, OpId::single(call), op, Consistency::Quorum, None);
    };
    let put = |key: &'static [u8]| Op::Put {
        key,
        value: b"v",
        expires_at: None,
    };
    request(&mut node, 1, put(b"durable"));
    for ticket in node.disk_mut().sync() {
        node.handle_durable(at, ticket);
    }
    assert_eq!(replies(&mut node).len(), 1);
    request(&mut node, 2, put(b"in flight"));
    assert!(
        replies(&mut node).is_empty(),
        "the write waits for its sync"
    );
    request(&mut node, 3, Op::Get { key: b"durable" });
    request(&mut node, 4, Op::Get { key: b"in flight" });
    let now: Vec<OpId> = replies(&mut node).into_iter().map(|(op, _)| op).collect();
    assert_eq!(
        now,
        [OpId::single(3)],
        "only the other key's read answers now"
    );
    for ticket in node.disk_mut().sync() {
        node.handle_durable(at, ticket);
    }
    let later: Vec<OpId> = replies(&mut node).into_iter().map(|(op, _)| op).collect();
    assert_eq!(later, [OpId::single(2), OpId::single(4)]);
}
