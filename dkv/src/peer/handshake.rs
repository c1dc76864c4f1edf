//! The handshake's rules: the digest of the settings every node must share,
//! and whether a node accepts a peer's [`Hello`]. Pure functions.

use std::fmt::Write as _;

use super::message::{Hello, PROTOCOL_VERSION};
use crate::config::{ClusterConf, NodeAddr};
use crate::hash::murmur3_x64_128;
use crate::version::NodeId;

/// The canonical text of the settings every node must share: one
/// `name = value` line each for `cluster_name`, `replication_factor`,
/// `write_quorum`, `read_quorum`, `virtual_nodes` and `allow_weak_quorums`
/// (`true` or `false`), in that order, then one `node <id> <client address>
/// <peer port>` line per member in ascending id order. Every line ends with
/// `\n`; addresses are written as Rust's `SocketAddr` shows them (IPv4
/// dotted decimal, IPv6 as RFC 5952 in brackets). The text is itself a valid
/// `cluster.conf`.
pub fn canonical_settings(conf: &ClusterConf) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "cluster_name = {}\nreplication_factor = {}\nwrite_quorum = {}\nread_quorum = {}\n\
         virtual_nodes = {}\nallow_weak_quorums = {}\n",
        conf.cluster_name,
        conf.replication_factor,
        conf.write_quorum,
        conf.read_quorum,
        conf.virtual_nodes,
        conf.allow_weak_quorums,
    );
    let mut nodes: Vec<&NodeAddr> = conf.nodes.iter().collect();
    nodes.sort_by_key(|node| node.id);
    for node in nodes {
        let _ = writeln!(
            text,
            "node {} {} {}",
            node.id,
            node.client,
            node.peer.port()
        );
    }
    text
}

/// The digest peers compare in the handshake: MurmurHash3 x64-128, seed 0,
/// low 64 bits, of [`canonical_settings`]. Two nodes whose confs differ in
/// any shared setting or member almost surely get different digests.
pub fn settings_digest(conf: &ClusterConf) -> u64 {
    murmur3_x64_128(canonical_settings(conf).as_bytes(), 0) as u64
}

impl Hello {
    /// The hello node `node_id` sends under `conf`, with `secret` (empty for
    /// none).
    pub fn for_conf(conf: &ClusterConf, node_id: NodeId, secret: &[u8]) -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            cluster_name: conf.cluster_name.clone(),
            node_id,
            settings_digest: settings_digest(conf),
            secret: secret.to_vec(),
        }
    }
}

/// Why a node whose own hello is `ours` refuses a peer's `theirs`, or
/// `None` to welcome it. Checked in this order: protocol version, secret,
/// cluster name, settings digest, and that the peer does not claim this
/// node's own id. The secret is checked before anything that would tell a
/// stranger about the cluster, and compared without stopping at the first
/// differing byte.
pub fn refusal(ours: &Hello, theirs: &Hello) -> Option<String> {
    if theirs.protocol_version != ours.protocol_version {
        return Some(format!(
            "protocol version {} is not this node's {}",
            theirs.protocol_version, ours.protocol_version
        ));
    }
    if !secrets_match(&ours.secret, &theirs.secret) {
        return Some("cluster secret does not match".into());
    }
    if theirs.cluster_name != ours.cluster_name {
        return Some(format!(
            "cluster name `{}` is not this node's `{}`",
            theirs.cluster_name, ours.cluster_name
        ));
    }
    if theirs.settings_digest != ours.settings_digest {
        return Some(format!(
            "settings digest {:016x} is not this node's {:016x}: the shared settings or node \
             lines of cluster.conf differ",
            theirs.settings_digest, ours.settings_digest
        ));
    }
    if theirs.node_id == ours.node_id {
        return Some(format!("node id {} is this node's own", theirs.node_id));
    }
    None
}

/// Compares secrets (the cluster secret here, `AUTH` passwords in the
/// server) reading all of `expected` whatever it finds, so the time taken
/// says nothing about where a guess first differs, nor about the secret's
/// length beyond the guess's own.
pub fn secrets_match(expected: &[u8], given: &[u8]) -> bool {
    let mut diff = expected.len() ^ given.len();
    for (i, x) in expected.iter().enumerate() {
        diff |= usize::from(std::hint::black_box(x ^ given.get(i).copied().unwrap_or(0)));
    }
    diff == 0
}
