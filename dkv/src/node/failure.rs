//! Heartbeats and the failure detector.
//!
//! Every node sends a heartbeat to every peer each `heartbeat_interval`;
//! any message counts as a sign of life. A peer silent for longer than
//! `failure_timeout` is marked down, and up again on the next message from
//! it, at which point hints kept for it start flowing.

use crate::node::{Node, Now, Disk};
use crate::peer::Message;
use crate::version::NodeId;

/// What the detector knows of one peer.
#[derive(Debug, Clone)]
pub(super) struct PeerHealth {
    pub up: bool,
    pub last_heard: u64,
}

impl PeerHealth {
    pub fn new(now: Now) -> PeerHealth {
        PeerHealth {
            up: true,
            last_heard: now.mono,
        }
    }
}

impl<D: Disk> Node<D> {
    /// Whether `node` is believed up (this node always is).
    pub fn is_up(&self, node: NodeId) -> bool {
        node == self.settings.id || self.peers.get(&node).is_some_and(|p| p.up)
    }

    /// Every peer and whether it is believed up.
    pub fn peer_states(&self) -> Vec<(NodeId, bool)> {
        self.peers
            .iter()
            .map(|(&id, health)| (id, health.up))
            .collect()
    }

    pub(super) fn heard_from(&mut self, from: NodeId) {
        let now = self.now.mono;
        let id = self.settings.id;
        if let Some(peer) = self.peers.get_mut(&from) {
            peer.last_heard = now;
            if !peer.up {
                peer.up = true;
                log::info!("node {id}: node {from} is up");
                self.deliver_hints();
            }
        }
    }

    pub(super) fn check_failures(&mut self) {
        let timeout = self.settings.failure_timeout.as_millis() as u64;
        let now = self.now.mono;
        let id = self.settings.id;
        for (peer_id, peer) in self.peers.iter_mut() {
            if peer.up && now.saturating_sub(peer.last_heard) > timeout {
                peer.up = false;
                log::warn!(
                    "node {id}: node {peer_id} is down (silent for {} ms)",
                    now - peer.last_heard
                );
            }
        }
    }

    pub(super) fn send_heartbeats(&mut self) {
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.send(peer, Message::Heartbeat);
        }
    }
}
