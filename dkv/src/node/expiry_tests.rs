//! Expiry across three hand-driven nodes whose clocks disagree.

use super::tests::Trio;
use super::*;

fn put_expiring(trio: &mut Trio, via: u32, key: &str, value: &str, expires_at: u64) -> OpResult {
    trio.request(
        via,
        Op::Put {
            key: key.as_bytes(),
            value: value.as_bytes(),
            expires_at: Some(expires_at),
        },
        Consistency::Quorum,
    )
}

#[test]
fn an_entry_expires_at_one_moment_on_every_coordinator_and_never_comes_back() {
    let mut trio = Trio::with_aae(3);
    // Node 3's clock runs 5 s ahead, node 2's 3 s behind: within the drift
    // limit, so all of them stamp and serve.
    trio.skew_ms = vec![0, -3_000, 5_000];
    trio.advance(50);
    // Every node agrees on the time expiries go by, whatever its clock.
    let agreed: Vec<u64> = (0..3)
        .map(|i| trio.nodes[i].expiry_time(trio.at_node(i).wall))
        .collect();
    let spread = agreed.iter().max().unwrap() - agreed.iter().min().unwrap();
    assert!(spread <= 50, "agreed times {agreed:?}");
    let expires_at = agreed[0] + 10_000;
    assert!(put_expiring(&mut trio, 2, "session", "data", expires_at).is_ok());
    trio.settle();

    // Just before: every coordinator reads the value; every replica holds it.
    trio.advance(9_800);
    for via in 1..=3 {
        assert_eq!(
            trio.get(via, "session", Consistency::Quorum).as_deref(),
            Some(&b"data"[..]),
            "via node {via}"
        );
        assert!(trio.local(via, "session").is_some(), "node {via}");
    }
    // Just after: gone through every coordinator, reclaimed on every
    // replica, and anti-entropy brings nothing back.
    trio.advance(400);
    for via in 1..=3 {
        assert_eq!(
            trio.get(via, "session", Consistency::Quorum),
            None,
            "via {via}"
        );
    }
    trio.advance(500);
    for id in 1..=3 {
        assert_eq!(trio.local(id, "session"), None, "node {id}");
    }
    for via in 1..=3 {
        assert_eq!(trio.get(via, "session", Consistency::All), None);
    }
}

#[test]
fn a_replica_that_missed_the_expiring_write_does_not_bring_the_old_value_back() {
    let mut trio = Trio::with_aae(3);
    assert!(trio.put(1, "k", "old").is_ok());
    trio.settle();
    trio.down.push(NodeId(3));
    let expires_at = trio.at().wall + 1_000;
    assert!(put_expiring(&mut trio, 1, "k", "new", expires_at).is_ok());
    trio.advance(1_200);
    // Expired on nodes 1 and 2 (tombstones at the new version); node 3
    // still holds "old" at the older version.
    trio.down.clear();
    for via in 1..=3 {
        assert_eq!(trio.get(via, "k", Consistency::Quorum), None, "via {via}");
    }
    trio.advance(300);
    assert_eq!(
        trio.local(3, "k"),
        None,
        "repair brought node 3 the tombstone"
    );
    assert_eq!(trio.get(3, "k", Consistency::One), None);
}
