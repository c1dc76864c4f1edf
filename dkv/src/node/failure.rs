//! Heartbeats and the failure detector.
//!
//! Every node sends a heartbeat to every peer each `heartbeat_interval`;
//! any message counts as a sign of life. A peer silent for longer than
//! `failure_timeout` is marked down, and up again on the next message from
//! it, at which point the node starts delivering the hints it kept for it.
//!
//! The runtime also reports this node's link to each peer: a peer whose
//! link is down is not reachable, whatever the detector last heard, so
//! requests go to stand-ins at once rather than into a dead socket.

use std::collections::BTreeMap;

use crate::version::NodeId;

/// What the detector knows of one peer.
#[derive(Debug, Clone)]
struct PeerHealth {
    up: bool,
    last_heard: u64,
    /// This node's link to the peer, as the runtime reports it.
    link_up: bool,
}

/// The health of every peer and the heartbeat timer.
#[derive(Debug, Clone)]
pub(crate) struct FailureDetector {
    me: NodeId,
    peers: BTreeMap<NodeId, PeerHealth>,
    failure_timeout: u64,
    heartbeat_interval: u64,
    next_heartbeat: u64,
}

impl FailureDetector {
    /// Every peer starts presumed up, as heard from at `now` (ms).
    pub fn new(
        me: NodeId,
        members: &[NodeId],
        now: u64,
        heartbeat_interval: u64,
        failure_timeout: u64,
    ) -> FailureDetector {
        FailureDetector {
            me,
            peers: members
                .iter()
                .filter(|&&id| id != me)
                .map(|&id| {
                    (
                        id,
                        PeerHealth {
                            up: true,
                            last_heard: now,
                            link_up: true,
                        },
                    )
                })
                .collect(),
            failure_timeout,
            heartbeat_interval,
            next_heartbeat: now,
        }
    }

    /// Whether `node` is a peer this detector watches.
    pub fn knows(&self, node: NodeId) -> bool {
        self.peers.contains_key(&node)
    }

    /// Whether `node` is believed up and reachable (this node always is).
    pub fn is_up(&self, node: NodeId) -> bool {
        node == self.me || self.peers.get(&node).is_some_and(|p| p.up && p.link_up)
    }

    /// The runtime's link to `peer` went up or down; true when that makes
    /// the peer reachable again.
    pub fn set_link(&mut self, peer: NodeId, up: bool) -> bool {
        let Some(health) = self.peers.get_mut(&peer) else {
            return false;
        };
        let revived = up && !health.link_up && health.up;
        health.link_up = up;
        revived
    }

    /// Every peer and whether it is believed up (by heartbeats; links
    /// aside).
    pub fn states(&self) -> Vec<(NodeId, bool)> {
        self.peers.iter().map(|(&id, p)| (id, p.up)).collect()
    }

    /// A message from `from` arrived; true when that brings it back up.
    pub fn heard_from(&mut self, from: NodeId, now: u64) -> bool {
        let Some(peer) = self.peers.get_mut(&from) else {
            return false;
        };
        peer.last_heard = now;
        let revived = !peer.up;
        peer.up = true;
        if revived {
            log::info!("node {}: node {from} is up", self.me);
        }
        revived
    }

    /// Marks down every peer silent past the timeout.
    pub fn check(&mut self, now: u64) {
        for (id, peer) in self.peers.iter_mut() {
            if peer.up && now.saturating_sub(peer.last_heard) > self.failure_timeout {
                peer.up = false;
                log::warn!(
                    "node {}: node {id} is down (silent for {} ms)",
                    self.me,
                    now - peer.last_heard
                );
            }
        }
    }

    /// The peers to send a heartbeat to now, if one is due.
    pub fn heartbeat_due(&mut self, now: u64) -> Option<Vec<NodeId>> {
        if now < self.next_heartbeat {
            return None;
        }
        self.next_heartbeat = now + self.heartbeat_interval;
        Some(self.peers.keys().copied().collect())
    }

    /// When the next heartbeat is due (ms); failures are checked then too.
    pub fn next_deadline(&self) -> u64 {
        self.next_heartbeat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_marks_a_peer_down_and_a_message_brings_it_back() {
        let mut d = FailureDetector::new(NodeId(1), &[NodeId(1), NodeId(2)], 0, 10, 50);
        assert!(d.is_up(NodeId(1)) && d.is_up(NodeId(2)));
        assert!(!d.knows(NodeId(1)) && d.knows(NodeId(2)) && !d.knows(NodeId(3)));
        d.check(50);
        assert!(d.is_up(NodeId(2)), "exactly the timeout is not yet silence");
        d.check(51);
        assert!(!d.is_up(NodeId(2)));
        assert!(d.heard_from(NodeId(2), 60));
        assert!(!d.heard_from(NodeId(2), 61));
        assert!(d.is_up(NodeId(2)));
        assert!(!d.heard_from(NodeId(9), 61), "strangers are not tracked");
        assert!(!d.set_link(NodeId(2), false));
        assert!(
            !d.is_up(NodeId(2)),
            "a peer without a link is not reachable"
        );
        assert!(d.set_link(NodeId(2), true));
        assert!(d.is_up(NodeId(2)));
    }

    #[test]
    fn heartbeats_fall_due_once_per_interval() {
        let mut d = FailureDetector::new(NodeId(1), &[NodeId(1), NodeId(2), NodeId(3)], 0, 10, 50);
        assert_eq!(d.heartbeat_due(0), Some(vec![NodeId(2), NodeId(3)]));
        assert_eq!(d.heartbeat_due(9), None);
        assert_eq!(d.next_deadline(), 10);
        assert!(d.heartbeat_due(10).is_some());
    }
}
