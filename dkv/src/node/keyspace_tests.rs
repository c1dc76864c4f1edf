//! Flushes and scans across three hand-driven nodes.

use super::tests::Trio;
use super::*;

fn keyspace(trio: &mut Trio, via: u32, request: KeyspaceOp<'_>) -> OpResult {
    let client = OpId::single(trio.next_client);
    trio.next_client += 1;
    let now = trio.at();
    trio.nodes[via as usize - 1].handle_keyspace(now, client, request);
    for _ in 0..500 {
        trio.settle();
        if let Some(i) = trio.replies.iter().position(|(c, _)| *c == client) {
            return trio.replies.remove(i).1;
        }
        trio.now += 1;
    }
    panic!("no reply");
}

fn links_up(trio: &mut Trio, id: u32) {
    let now = trio.at();
    for peer in 1..=trio.nodes.len() as u32 {
        if peer != id {
            trio.nodes[id as usize - 1].handle_link(now, NodeId(peer), true);
            trio.nodes[peer as usize - 1].handle_link(now, NodeId(id), true);
        }
    }
    trio.settle();
}

#[test]
fn a_flush_with_a_node_away_never_comes_back_through_reads_hints_or_repair() {
    let mut trio = Trio::with_aae(3);
    for i in 0..20 {
        assert!(trio.put(1, &format!("k{i}"), "old").is_ok());
    }
    trio.settle();
    trio.down.push(NodeId(3));
    // Written while node 3 is away: hints for it wait on nodes 1 and 2.
    assert!(trio.put(1, "hinted", "old").is_ok());
    assert_eq!(
        keyspace(&mut trio, 1, KeyspaceOp::Flush),
        Ok(OpReply::Flushed)
    );
    assert_eq!(trio.get(2, "k1", Consistency::Quorum), None);
    assert_eq!(trio.get(1, "hinted", Consistency::Quorum), None);

    // Node 3 is back and still holds everything; before it hears of the
    // flush it coordinates reads, which meet a replica that flushed.
    trio.down.clear();
    trio.settle();
    assert_eq!(trio.local(3, "k1").as_deref(), Some(&b"old"[..]));
    assert_eq!(trio.get(3, "k1", Consistency::Quorum), None);
    assert_eq!(trio.get(3, "hinted", Consistency::Quorum), None);

    // Its links come up: it learns the floor and drops what it covers;
    // anti-entropy then finds every replica alike.
    links_up(&mut trio, 3);
    trio.advance(300);
    for id in 1..=3 {
        for i in 0..20 {
            assert_eq!(trio.local(id, &format!("k{i}")), None, "node {id} k{i}");
        }
        assert_eq!(trio.local(id, "hinted"), None, "node {id} hinted");
    }
    // Writes after the flush are kept.
    assert!(trio.put(3, "k1", "new").is_ok());
    assert_eq!(
        trio.get(1, "k1", Consistency::Quorum).as_deref(),
        Some(&b"new"[..])
    );
}

#[test]
fn a_flush_needs_all_but_r_minus_one_members() {
    let mut trio = Trio::new();
    trio.down.push(NodeId(2));
    trio.down.push(NodeId(3));
    assert!(matches!(
        keyspace(&mut trio, 1, KeyspaceOp::Flush),
        Err(OpError::Unavailable {
            answered: 1,
            required: 2,
            ..
        })
    ));
}

#[test]
fn scans_cover_every_member_and_pass_over_one_that_is_down() {
    let mut trio = Trio::new();
    for i in 0..50 {
        assert!(trio.put(1, &format!("user:{i}"), "v").is_ok());
    }
    assert!(trio.put(1, "other", "v").is_ok());
    trio.settle();
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = 0;
    let mut calls = 0;
    loop {
        let scan = KeyspaceOp::Scan {
            cursor,
            count: 7,
            pattern: b"user:*",
        };
        let Ok(OpReply::Keys { keys, cursor: next }) = keyspace(&mut trio, 2, scan) else {
            panic!("scan failed");
        };
        seen.extend(keys);
        calls += 1;
        if calls == 3 {
            // A member goes down mid-scan: its keys come from the others.
            trio.down.push(NodeId(1));
        }
        if next == 0 {
            break;
        }
        cursor = next;
        assert!(calls < 100);
    }
    assert_eq!(seen.len(), 50);
    assert!(!seen.contains(b"other".as_slice()));
    trio.down.clear();
    trio.settle();
    assert_eq!(
        keyspace(&mut trio, 3, KeyspaceOp::Count),
        Ok(OpReply::Count(51))
    );
    let Ok(OpReply::Keys { keys, .. }) = keyspace(
        &mut trio,
        3,
        KeyspaceOp::Keys {
            pattern: b"user:1*",
        },
    ) else {
        panic!("keys failed");
    };
    assert_eq!(keys.len(), 11);
    let Ok(OpReply::Keys { keys, .. }) = keyspace(&mut trio, 3, KeyspaceOp::RandomKey) else {
        panic!("randomkey failed");
    };
    assert_eq!(keys.len(), 1);
}
