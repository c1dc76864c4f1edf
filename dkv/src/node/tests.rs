//! Small, hand-driven scenarios; the seeded simulation lives in
//! `tests/simulation.rs`.

use std::time::Duration;

use super::*;
use crate::engine::EntryRef;
use crate::peer::RequestId;
use crate::version::Version;

/// Three nodes wired back to back: every message is delivered at once
/// unless its target is cut off.
pub(super) struct Trio {
    pub(super) nodes: Vec<Node<MemDisk>>,
    pub(super) now: u64,
    pub(super) down: Vec<NodeId>,
    pub(super) replies: Vec<(OpId, OpResult)>,
    pub(super) next_client: u64,
    /// Each node's wall clock minus the true time (ms).
    pub(super) skew_ms: Vec<i64>,
}

impl Trio {
    pub(super) fn new() -> Trio {
        Trio::with_nodes(3)
    }

    /// `count` nodes with N=3, W=2, R=2, anti-entropy off (the scenarios
    /// here look at one mechanism at a time).
    pub(super) fn with_nodes(count: u32) -> Trio {
        Trio::build(count, false)
    }

    /// `count` nodes with anti-entropy exchanging every 20 ms.
    pub(super) fn with_aae(count: u32) -> Trio {
        Trio::build(count, true)
    }

    pub(super) fn settings(id: NodeId, members: &[NodeId], aae: bool) -> NodeSettings {
        let mut settings = NodeSettings::new(id, members.to_vec(), 3, 2, 2);
        settings.request_timeout = Duration::from_millis(100);
        settings.heartbeat_interval = Duration::from_millis(10);
        settings.failure_timeout = Duration::from_millis(50);
        settings.virtual_nodes = 8;
        settings.aae_enabled = aae;
        settings.aae_interval = Duration::from_millis(20);
        settings
    }

    pub(super) fn build(count: u32, aae: bool) -> Trio {
        let members: Vec<NodeId> = (1..=count).map(NodeId).collect();
        let nodes = members
            .iter()
            .map(|&id| {
                Node::new(
                    Trio::settings(id, &members, aae),
                    MemDisk::new(),
                    Now {
                        mono: 0,
                        wall: 1_000_000,
                    },
                )
            })
            .collect();
        let mut trio = Trio {
            nodes,
            now: 0,
            down: Vec::new(),
            replies: Vec::new(),
            next_client: 0,
            skew_ms: vec![0; count as usize],
        };
        // The first heartbeats: every node hears its peers' clocks.
        trio.settle();
        trio
    }

    pub(super) fn at(&self) -> Now {
        Now {
            mono: self.now,
            wall: 1_000_000 + self.now,
        }
    }

    /// The time as node `i` (0-based) sees it.
    pub(super) fn at_node(&self, i: usize) -> Now {
        let now = self.at();
        Now {
            mono: now.mono,
            wall: now.wall.saturating_add_signed(self.skew_ms[i]),
        }
    }

    pub(super) fn index(id: NodeId) -> usize {
        id.0 as usize - 1
    }

    /// Syncs every disk and delivers messages until quiet.
    pub(super) fn settle(&mut self) {
        for _ in 0..100 {
            let mut messages = Vec::new();
            for i in 0..self.nodes.len() {
                if self.down.contains(&self.nodes[i].id()) {
                    continue;
                }
                let now = self.at_node(i);
                for durable in self.nodes[i].disk_mut().sync() {
                    self.nodes[i].handle_durable(now, durable);
                }
                self.nodes[i].handle_tick(now);
                while let Some(output) = self.nodes[i].poll_output() {
                    match output {
                        Output::Send { to, envelope } => messages.push((to, envelope)),
                        Output::Reply { op, result } => self.replies.push((op, result)),
                    }
                }
            }
            if messages.is_empty() {
                return;
            }
            for (to, envelope) in messages {
                if self.down.contains(&to) || self.down.contains(&envelope.from) {
                    continue;
                }
                let now = self.at_node(Self::index(to));
                self.nodes[Self::index(to)].handle_message(now, envelope);
            }
        }
    }

    pub(super) fn advance(&mut self, millis: u64) {
        for _ in 0..millis {
            self.now += 1;
            self.settle();
        }
    }

    pub(super) fn request(
        &mut self,
        via: u32,
        request: Op<'_>,
        consistency: Consistency,
    ) -> OpResult {
        let client = OpId::single(self.next_client);
        self.next_client += 1;
        let now = self.at_node(via as usize - 1);
        self.nodes[via as usize - 1].handle_request(now, client, request, consistency, None);
        for _ in 0..500 {
            self.settle();
            if let Some(i) = self.replies.iter().position(|(c, _)| *c == client) {
                return self.replies.remove(i).1;
            }
            self.now += 1;
        }
        panic!("no reply");
    }

    pub(super) fn put(&mut self, via: u32, key: &str, value: &str) -> OpResult {
        self.request(
            via,
            Op::Put {
                key: key.as_bytes(),
                value: value.as_bytes(),
                expires_at: None,
            },
            Consistency::Quorum,
        )
    }

    pub(super) fn get(&mut self, via: u32, key: &str, consistency: Consistency) -> Option<Vec<u8>> {
        match self.request(
            via,
            Op::Get {
                key: key.as_bytes(),
            },
            consistency,
        ) {
            Ok(OpReply::Value { value, .. }) => value,
            other => panic!("read failed: {other:?}"),
        }
    }

    pub(super) fn local(&self, id: u32, key: &str) -> Option<Vec<u8>> {
        self.nodes[id as usize - 1]
            .disk()
            .get(key.as_bytes())
            .and_then(|e| e.value)
    }
}

#[test]
fn a_write_reaches_every_replica_and_reads_see_it() {
    let mut trio = Trio::new();
    assert!(matches!(
        trio.put(1, "k", "v"),
        Ok(OpReply::Written { existed: false, .. })
    ));
    trio.settle();
    for id in 1..=3 {
        assert_eq!(trio.local(id, "k").as_deref(), Some(&b"v"[..]));
    }
    assert_eq!(
        trio.get(2, "k", Consistency::Quorum).as_deref(),
        Some(&b"v"[..])
    );
    let deleted = trio.request(3, Op::Delete { key: b"k" }, Consistency::All);
    assert!(matches!(
        deleted,
        Ok(OpReply::Written { existed: true, .. })
    ));
    assert_eq!(trio.get(1, "k", Consistency::One), None);
}

#[test]
fn one_node_down_writes_succeed_and_hints_arrive_when_it_returns() {
    let mut trio = Trio::new();
    trio.down.push(NodeId(3));
    trio.advance(100); // the detector notices
    assert!(!trio.nodes[0].is_up(NodeId(3)));
    for i in 0..10 {
        let put = trio.put(1, &format!("k{i}"), "v");
        assert!(put.is_ok(), "{put:?}");
    }
    assert_eq!(trio.local(3, "k0"), None);
    assert!(trio.nodes[0]
        .hints_pending()
        .iter()
        .any(|(t, n)| *t == NodeId(3) && *n > 0));
    trio.down.clear();
    trio.advance(100);
    for i in 0..10 {
        assert_eq!(
            trio.local(3, &format!("k{i}")).as_deref(),
            Some(&b"v"[..]),
            "k{i}"
        );
    }
    assert!(trio.nodes.iter().all(|n| n.hints_pending().is_empty()));
    assert!(trio.nodes[0].stats().hints_delivered > 0);
}

#[test]
fn two_nodes_down_writes_fail_unavailable() {
    let mut trio = Trio::new();
    trio.down.extend([NodeId(2), NodeId(3)]);
    trio.advance(100);
    match trio.put(1, "k", "v") {
        Err(OpError::Unavailable {
            required: 2,
            replicas: 3,
            reachable: 1,
            ..
        }) => {}
        other => panic!("expected UNAVAILABLE, got {other:?}"),
    }
    assert!(trio.get(1, "x", Consistency::One).is_none());
    assert!(trio
        .request(1, Op::Get { key: b"x" }, Consistency::Quorum)
        .is_err());
    assert!(trio.nodes[0].stats().quorum_failures >= 2);
}

#[test]
fn silent_replicas_time_out_into_hints() {
    // Node 3 dies without the detector noticing in time: the write waits
    // for it until the deadline, then keeps a hint.
    let mut trio = Trio::new();
    trio.down.push(NodeId(3));
    assert!(trio.put(1, "k", "v").is_ok());
    trio.advance(150);
    assert!(trio.nodes[0]
        .hints_pending()
        .iter()
        .any(|(t, _)| *t == NodeId(3)));
    trio.down.clear();
    trio.advance(100);
    assert_eq!(trio.local(3, "k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn read_repair_fixes_a_stale_replica() {
    let mut trio = Trio::new();
    assert!(trio.put(1, "k", "old").is_ok());
    trio.settle();
    // Node 3 misses the newer write and its hint is dropped.
    trio.down.push(NodeId(3));
    assert!(trio.put(1, "k", "new").is_ok());
    trio.advance(150);
    for node in trio.nodes.iter_mut() {
        node.handoff.forget_all();
    }
    trio.down.clear();
    trio.advance(100);
    assert_eq!(trio.local(3, "k").as_deref(), Some(&b"old"[..]));
    assert_eq!(
        trio.get(2, "k", Consistency::All).as_deref(),
        Some(&b"new"[..])
    );
    trio.settle();
    assert_eq!(trio.local(3, "k").as_deref(), Some(&b"new"[..]));
    assert!(trio.nodes[1].stats().read_repairs >= 1);
}

/// A write that reached one replica only (its coordinator died, say), as
/// seen by a quorum read of that replica and a stale one: the read may
/// answer with the new value only once a quorum of owners holds it, or a
/// later quorum read of the other two would go back to the old one.
#[test]
fn quorum_reads_do_not_go_back_in_time() {
    let mut trio = Trio::new();
    assert!(trio.put(1, "k", "old").is_ok());
    trio.settle();
    let newer = crate::version::Version::new(
        crate::version::Timestamp::from_millis(trio.at().wall + 1),
        NodeId(1),
    );
    trio.nodes[0]
        .disk_mut()
        .apply(b"k", EntryRef::new(newer, Some(b"new"), None))
        .expect("apply");
    trio.down.push(NodeId(3));
    assert_eq!(
        trio.get(1, "k", Consistency::Quorum).as_deref(),
        Some(&b"new"[..])
    );
    // The answer left "new" on node 2 before it went out.
    assert_eq!(trio.local(2, "k").as_deref(), Some(&b"new"[..]));
    trio.down = vec![NodeId(1)];
    trio.advance(100);
    assert_eq!(
        trio.get(2, "k", Consistency::Quorum).as_deref(),
        Some(&b"new"[..])
    );
}

/// Nodes 2 and 3 hold a version of "k" stamped ahead of node 1's clock;
/// node 1 coordinates a write with the client's `deadline` whose messages
/// are held for 10 ms. Returns the write's result and node 1's restamps.
fn write_refused_late(deadline: impl Fn(u64) -> Option<u64>) -> (OpResult, u64) {
    let mut trio = Trio::new();
    let ahead = crate::version::Version::new(
        crate::version::Timestamp::from_millis(trio.at().wall + 5_000),
        NodeId(2),
    );
    for node in &mut trio.nodes[1..] {
        node.disk_mut()
            .apply(b"k", EntryRef::new(ahead, Some(b"ahead"), None))
            .expect("apply");
    }
    let client = OpId::single(1_000);
    let now = trio.at();
    let put = Op::Put {
        key: b"k",
        value: b"mine",
        expires_at: None,
    };
    trio.nodes[0].handle_request(now, client, put, Consistency::Quorum, deadline(now.wall));
    let mut held = Vec::new();
    while let Some(output) = trio.nodes[0].poll_output() {
        if let Output::Send { to, envelope } = output {
            held.push((to, envelope));
        }
    }
    trio.now += 10;
    let now = trio.at();
    for (to, envelope) in held {
        trio.nodes[Trio::index(to)].handle_message(now, envelope);
    }
    for _ in 0..300 {
        trio.settle();
        if let Some(i) = trio.replies.iter().position(|(c, _)| *c == client) {
            let result = trio.replies.remove(i).1;
            return (result, trio.nodes[0].stats().restamps);
        }
        trio.now += 1;
    }
    panic!("no reply");
}

/// A write the client has given up on is not stamped again: a second
/// stamp could take effect behind the client's next write.
#[test]
fn no_write_is_stamped_again_after_the_clients_deadline() {
    let (result, restamps) = write_refused_late(|_| None);
    assert!(matches!(result, Ok(OpReply::Written { .. })), "{result:?}");
    assert_eq!(restamps, 1);
    let (result, restamps) = write_refused_late(|wall| Some(wall + 5));
    assert!(
        matches!(result, Err(OpError::Unavailable { .. })),
        "{result:?}"
    );
    assert_eq!(restamps, 0);
}

/// A node whose clock is a minute behind its peers' judges a client's
/// deadline by their time: a request whose deadline passed a few seconds
/// ago is refused though the node's own clock says it is still early.
#[test]
fn a_node_a_minute_behind_judges_deadlines_by_its_peers_time() {
    let members = vec![NodeId(1), NodeId(2), NodeId(3)];
    let settings = NodeSettings::new(NodeId(1), members, 3, 2, 2);
    let now = Now {
        mono: 0,
        wall: 1_000_000_000,
    };
    let mut node = Node::new(settings, MemDisk::new(), now);
    for peer in [2, 3] {
        node.handle_message(
            now,
            Envelope {
                from: NodeId(peer),
                clock: crate::version::Timestamp::from_millis(now.wall + 60_000),
                message: Message::Heartbeat,
            },
        );
    }
    while node.poll_output().is_some() {}
    let client = OpId::single(7);
    let deadline = now.wall + 55_000;
    node.handle_request(
        now,
        client,
        Op::Get { key: b"k" },
        Consistency::Quorum,
        Some(deadline),
    );
    let refused = std::iter::from_fn(|| node.poll_output()).any(|output| {
        matches!(
            output,
            Output::Reply {
                op,
                result: Err(OpError::DeadlinePassed)
            } if op == client
        )
    });
    assert!(refused);
}

/// Replicas that agree cost a quorum read nothing: no repair is sent.
#[test]
fn agreeing_replicas_answer_without_repair() {
    let mut trio = Trio::new();
    assert!(trio.put(1, "k", "v").is_ok());
    trio.settle();
    trio.down.push(NodeId(3));
    let before = trio.nodes[0].stats().read_repairs;
    assert_eq!(
        trio.get(1, "k", Consistency::Quorum).as_deref(),
        Some(&b"v"[..])
    );
    trio.advance(150);
    assert_eq!(trio.nodes[0].stats().read_repairs, before);
}

#[test]
fn consistency_levels_resolve() {
    assert_eq!(Consistency::One.required(2, 3), Some(1));
    assert_eq!(Consistency::Quorum.required(2, 3), Some(2));
    assert_eq!(Consistency::All.required(2, 3), Some(3));
    assert_eq!(Consistency::Count(3).required(2, 3), Some(3));
    assert_eq!(Consistency::Count(4).required(2, 3), None);
    assert_eq!(Consistency::parse("quorum"), Some(Consistency::Quorum));
    assert_eq!(Consistency::parse("2"), Some(Consistency::Count(2)));
    assert_eq!(Consistency::parse("0"), None);
    assert_eq!(Consistency::parse("most"), None);
}

#[test]
fn a_bad_count_is_refused() {
    let mut trio = Trio::new();
    assert!(matches!(
        trio.request(1, Op::Get { key: b"k" }, Consistency::Count(5)),
        Err(OpError::BadConsistency(5, 3))
    ));
}

#[test]
fn runaway_clocks_are_refused() {
    let mut trio = Trio::new();
    let envelope = Envelope {
        from: NodeId(2),
        clock: crate::version::Timestamp::from_millis(10_000_000_000),
        message: Message::Replicate {
            request: RequestId(9),
            write: crate::peer::SharedWrite::new(
                b"k",
                crate::engine::EntryRef::value(
                    crate::version::Version::new(
                        crate::version::Timestamp::from_millis(10_000_000_000),
                        NodeId(2),
                    ),
                    b"future",
                ),
            ),
            hint_for: None,
        },
    };
    let now = trio.at();
    trio.nodes[0].handle_message(now, envelope);
    let output = trio.nodes[0].poll_output();
    assert!(matches!(
        output,
        Some(Output::Send {
            envelope: Envelope {
                message: Message::ReplicateAck { ok: false, .. },
                ..
            },
            ..
        })
    ));
    assert_eq!(trio.local(1, "k"), None);
    assert!(trio.nodes[0].stats().clock_refusals >= 1);
}

#[test]
fn a_stand_in_keeps_the_write_for_a_down_replica_and_hands_it_over() {
    // Four nodes, N=3: every key has a node outside its preference list.
    let mut nodes = Trio::with_nodes(4);
    let key = "sloppy";
    let preference = nodes.nodes[0].ring().preference_list(key.as_bytes(), 3);
    let outsider = (1..=4)
        .map(NodeId)
        .find(|id| !preference.contains(id))
        .unwrap();
    let down = preference[2];
    let coordinator = preference[0];
    nodes.down.push(down);
    nodes.advance(100);
    assert!(nodes.put(coordinator.0, key, "v").is_ok());
    nodes.settle();
    // The outsider holds a hint for the down replica, not the data itself.
    assert_eq!(nodes.local(outsider.0, key), None);
    let outsider_hints = nodes.nodes[Trio::index(outsider)].hints_pending();
    assert_eq!(outsider_hints, vec![(down, 1)]);
    nodes.down.clear();
    nodes.advance(100);
    assert_eq!(nodes.local(down.0, key).as_deref(), Some(&b"v"[..]));
    assert!(nodes.nodes[Trio::index(outsider)]
        .hints_pending()
        .is_empty());
}

#[test]
fn hints_for_nodes_that_are_not_members_are_refused() {
    let mut trio = Trio::new();
    let now = trio.at();
    let stamp = trio.nodes[1].cluster_time(now.wall);
    let envelope = Envelope {
        from: NodeId(2),
        clock: crate::version::Timestamp::from_millis(stamp),
        message: Message::Replicate {
            request: RequestId(9),
            write: crate::peer::SharedWrite::new(
                b"k",
                crate::engine::EntryRef::value(
                    crate::version::Version::new(
                        crate::version::Timestamp::from_millis(stamp),
                        NodeId(2),
                    ),
                    b"v",
                ),
            ),
            hint_for: Some(NodeId(77)),
        },
    };
    trio.nodes[0].handle_message(now, envelope);
    let output = trio.nodes[0].poll_output();
    assert!(
        matches!(
            output,
            Some(Output::Send {
                envelope: Envelope {
                    message: Message::ReplicateAck { ok: false, .. },
                    ..
                },
                ..
            })
        ),
        "{output:?}"
    );
    assert!(trio.nodes[0].hints_pending().is_empty());
}

/// Every key of node `a`'s disk with its version, as a sorted list.
fn contents(node: &Node<MemDisk>) -> Vec<(Vec<u8>, Version)> {
    let mut out = Vec::new();
    node.disk()
        .for_each_version(&mut |k, v, _| out.push((k.to_vec(), v)));
    out.sort();
    out
}

#[test]
fn anti_entropy_refills_a_replica_that_missed_writes_without_reads() {
    let mut trio = Trio::with_aae(3);
    trio.down.push(NodeId(3));
    for i in 0..200 {
        assert!(trio
            .put(1 + i % 2, &format!("k{i}"), &format!("v{i}"))
            .is_ok());
    }
    for node in trio.nodes.iter_mut() {
        node.handoff.forget_all();
    }
    assert!(contents(&trio.nodes[2]).is_empty());
    trio.down.clear();
    trio.advance(2_000);
    let reference = contents(&trio.nodes[0]);
    assert_eq!(reference.len(), 200);
    assert_eq!(contents(&trio.nodes[1]), reference);
    assert_eq!(contents(&trio.nodes[2]), reference, "node 3 not refilled");
    for i in 0..200 {
        let key = format!("k{i}");
        let roots: Vec<_> = trio
            .nodes
            .iter()
            .map(|n| n.aae_root_of(key.as_bytes()))
            .collect();
        assert!(
            roots.iter().all(|r| *r == roots[0] && r.is_some()),
            "{key}: {roots:?}"
        );
    }
    let stats = trio.nodes[0].aae_stats();
    assert!(stats.keys_repaired > 0, "{stats:?}");
    assert_eq!(stats.partitions_in_sync, stats.partitions, "{stats:?}");
}

#[test]
fn a_node_that_lost_all_its_storage_gets_everything_back() {
    let mut trio = Trio::with_aae(3);
    for i in 0..150 {
        assert!(trio.put(1, &format!("k{i}"), "v").is_ok());
    }
    // Node 2 loses its disk and starts again, empty, with its trees empty.
    let members: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let now = trio.at();
    trio.nodes[1] = Node::new(
        Trio::settings(NodeId(2), &members, true),
        MemDisk::new(),
        now,
    );
    trio.advance(2_000);
    assert_eq!(contents(&trio.nodes[1]).len(), 150);
    assert_eq!(contents(&trio.nodes[1]), contents(&trio.nodes[0]));
    // Trees built from a disk at start match trees kept up to date.
    let rebuilt = Node::new(
        Trio::settings(NodeId(1), &members, true),
        trio.nodes[0].disk().clone(),
        trio.at(),
    );
    for i in 0..150 {
        let key = format!("k{i}");
        assert_eq!(
            rebuilt.aae_root_of(key.as_bytes()),
            trio.nodes[0].aae_root_of(key.as_bytes())
        );
    }
}

/// Anti-entropy with a short grace period, for the tombstone tests.
fn trio_with_grace(grace_ms: u64) -> Trio {
    let mut trio = Trio::with_aae(3);
    for node in &mut trio.nodes {
        node.settings.tombstone_grace = Duration::from_millis(grace_ms);
    }
    trio
}

fn tombstone_of(node: &Node<MemDisk>, key: &str) -> bool {
    node.disk()
        .get(key.as_bytes())
        .is_some_and(|e| e.is_tombstone())
}

#[test]
fn a_tombstone_goes_only_once_every_replica_holds_it() {
    let mut trio = trio_with_grace(500);
    assert!(trio.put(1, "k", "v").is_ok());
    assert!(trio
        .request(1, Op::Delete { key: b"k" }, Consistency::Quorum)
        .is_ok());
    trio.advance(100);
    assert!((0..3).all(|i| tombstone_of(&trio.nodes[i], "k")));
    // Past the grace period and confirmed in sync everywhere: gone from
    // every replica, and the trees agree.
    trio.advance(2_500);
    assert!((0..3).all(|i| trio.nodes[i].disk().get(b"k").is_none()));
    let roots: Vec<_> = trio.nodes.iter().map(|n| n.aae_root_of(b"k")).collect();
    assert!(roots.iter().all(|r| *r == roots[0]), "{roots:?}");
    assert!(trio.nodes[0].aae_stats().tombstones_purged >= 1);
}

#[test]
fn a_replica_away_longer_than_the_grace_period_brings_nothing_back() {
    let mut trio = trio_with_grace(500);
    assert!(trio.put(1, "k", "old").is_ok());
    trio.settle();
    // Node 3 misses the delete and stays away four grace periods.
    trio.down.push(NodeId(3));
    assert!(trio
        .request(1, Op::Delete { key: b"k" }, Consistency::Quorum)
        .is_ok());
    for node in trio.nodes.iter_mut() {
        node.handoff.forget_all();
    }
    trio.advance(2_000);
    // The others keep the tombstone: node 3 never confirmed it.
    assert!(tombstone_of(&trio.nodes[0], "k") && tombstone_of(&trio.nodes[1], "k"));
    assert_eq!(trio.local(3, "k").as_deref(), Some(&b"old"[..]));
    // Back: anti-entropy gives it the tombstone, then all purge it.
    trio.down.clear();
    trio.advance(3_000);
    assert!((0..3).all(|i| trio.nodes[i].disk().get(b"k").is_none()));
    assert_eq!(trio.get(2, "k", Consistency::All), None);
}

#[test]
fn anti_entropy_pushes_no_more_bytes_a_second_than_allowed() {
    let mut trio = Trio::with_aae(3);
    for node in &mut trio.nodes {
        node.aae.limit_bytes_per_sec(2_000);
    }
    trio.down.push(NodeId(3));
    let value = "v".repeat(100);
    for i in 0..200 {
        assert!(trio.put(1, &format!("k{i:03}"), &value).is_ok());
    }
    // The writes time node 3 out into hints; they are dropped.
    trio.advance(200);
    for node in trio.nodes.iter_mut() {
        node.handoff.forget_all();
    }
    trio.down.clear();
    // Two pushers, each at most 2,000 bytes (19 entries of 104 bytes, plus
    // the one that crosses the limit) a second.
    let mut held = 0;
    for _ in 0..30 {
        trio.advance(1_000);
        let now = contents(&trio.nodes[2]).len();
        assert!(now - held <= 2 * 20, "{} entries in one second", now - held);
        held = now;
        if held == 200 {
            break;
        }
    }
    assert_eq!(contents(&trio.nodes[2]).len(), 200);
}
