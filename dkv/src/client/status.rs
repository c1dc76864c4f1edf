//! [`NodeStatus`]: a node's view of its cluster, parsed from the `INFO
//! cluster` text (`node_<id>:up,connected`, `hints_pending_node_<id>:<n>`,
//! `hints_pending:<n>`, ...). Unknown lines are ignored, so newer servers
//! that add lines still parse.

use std::net::SocketAddr;

use crate::version::NodeId;

/// One peer as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's id.
    pub id: NodeId,
    /// Whether the failure detector thinks it is up.
    pub up: bool,
    /// Whether the answering node's link to it is connected.
    pub connected: bool,
    /// Hints the answering node holds for it.
    pub hints_pending: u64,
}

/// A node's view of its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeStatus {
    /// The answering node's id (0 if the server did not say).
    pub node_id: NodeId,
    /// The cluster's name.
    pub cluster_name: String,
    /// N.
    pub replication_factor: usize,
    /// W.
    pub write_quorum: usize,
    /// R.
    pub read_quorum: usize,
    /// Every other member, by id.
    pub peers: Vec<PeerStatus>,
    /// Hints held for all targets.
    pub hints_pending: u64,
    /// Tokens per node on the ring (0 if the server did not say).
    pub virtual_nodes: usize,
    /// Where clients reach each member, by id (`member_<id>:<addr>`; empty
    /// for a node alone or an older server).
    pub members: Vec<(NodeId, SocketAddr)>,
}

impl NodeStatus {
    /// Parses the text of `INFO cluster`.
    pub fn parse(text: &str) -> NodeStatus {
        let mut status = NodeStatus::default();
        let mut hints: Vec<(u32, u64)> = Vec::new();
        for line in text.lines() {
            let Some((key, value)) = line.trim_end().split_once(':') else {
                continue;
            };
            let number = || value.parse::<u64>().ok();
            let count = || value.parse::<usize>().ok();
            if let Some(id) = key.strip_prefix("hints_pending_node_") {
                if let (Ok(id), Some(n)) = (id.parse(), number()) {
                    hints.push((id, n));
                }
            } else if let Some(id) = key.strip_prefix("member_") {
                if let (Ok(id), Ok(addr)) = (id.parse::<u32>(), value.parse::<SocketAddr>()) {
                    status.members.push((NodeId(id), addr));
                }
            } else if let Some(id) = key.strip_prefix("node_") {
                let Ok(id) = id.parse::<u32>() else { continue };
                let mut flags = value.split(',');
                match flags.next() {
                    Some("self") => status.node_id = NodeId(id),
                    state @ (Some("up") | Some("down")) => status.peers.push(PeerStatus {
                        id: NodeId(id),
                        up: state == Some("up"),
                        connected: flags.next() == Some("connected"),
                        hints_pending: 0,
                    }),
                    _ => {}
                }
            } else {
                match key {
                    "cluster_name" => status.cluster_name = value.to_string(),
                    "replication_factor" => status.replication_factor = count().unwrap_or(0),
                    "write_quorum" => status.write_quorum = count().unwrap_or(0),
                    "read_quorum" => status.read_quorum = count().unwrap_or(0),
                    "hints_pending" => status.hints_pending = number().unwrap_or(0),
                    "virtual_nodes" => status.virtual_nodes = count().unwrap_or(0),
                    _ => {}
                }
            }
        }
        for (id, n) in hints {
            if let Some(peer) = status.peers.iter_mut().find(|p| p.id == NodeId(id)) {
                peer.hints_pending = n;
            }
        }
        status.peers.sort_by_key(|p| p.id);
        status.members.sort();
        status
    }

    /// The peer with this id.
    pub fn peer(&self, id: NodeId) -> Option<&PeerStatus> {
        self.peers.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_info_cluster_section() {
        let text = "# Cluster\r\ncluster_name:test\r\ncluster_mode:replicated\r\n\
            replication_factor:3\r\nwrite_quorum:2\r\nread_quorum:2\r\nvirtual_nodes:128\r\n\
            cluster_size:3\r\nring_tokens:384\r\nnode_2:self,up\r\nnode_3:down,disconnected\r\n\
            node_1:up,connected\r\nhints_pending:7\r\nhints_pending_node_3:7\r\n\
            hints_delivered:0\r\nfuture_line:x\r\nnode_x:up\r\n\
            member_2:127.0.0.1:7002\r\nmember_1:127.0.0.1:7001\r\nmember_9:nowhere\r\n";
        let status = NodeStatus::parse(text);
        assert_eq!(status.node_id, NodeId(2));
        assert_eq!(status.cluster_name, "test");
        assert_eq!(
            (
                status.replication_factor,
                status.write_quorum,
                status.read_quorum
            ),
            (3, 2, 2)
        );
        assert_eq!(status.hints_pending, 7);
        assert_eq!(status.virtual_nodes, 128);
        assert_eq!(
            status.members,
            vec![
                (NodeId(1), "127.0.0.1:7001".parse().unwrap()),
                (NodeId(2), "127.0.0.1:7002".parse().unwrap())
            ]
        );
        assert_eq!(
            status.peers,
            vec![
                PeerStatus {
                    id: NodeId(1),
                    up: true,
                    connected: true,
                    hints_pending: 0
                },
                PeerStatus {
                    id: NodeId(3),
                    up: false,
                    connected: false,
                    hints_pending: 7
                },
            ]
        );
        assert!(status.peer(NodeId(3)).is_some_and(|p| !p.up));
    }

    #[test]
    fn a_single_node_has_no_peers() {
        let status = NodeStatus::parse("node_1:self,up\r\nhints_pending:0\r\n");
        assert_eq!(status.node_id, NodeId(1));
        assert!(status.peers.is_empty());
    }
}
