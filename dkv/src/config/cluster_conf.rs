//! `cluster.conf`: the settings every node of a cluster shares, and its
//! members.
//!
//! ```text
//! # settings every node must share
//! cluster_name = dkv
//! replication_factor = 3
//! write_quorum = 2
//! read_quorum = 2
//! virtual_nodes = 128
//! # node <id> <host>:<client port> [<peer port>]
//! node 1 127.0.0.1:7001
//! node 2 127.0.0.1:7002 17002
//! ```
//!
//! Blank lines and `#` comments are ignored. Every error names the line and
//! what is wrong with it. [`ClusterConf::parse`] also checks the whole:
//! unique ids and addresses, at least `replication_factor` nodes, quorums
//! between 1 and N, and `W + R > N` unless `allow_weak_quorums = true`.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use crate::version::NodeId;

/// The peer port when a node line gives none: client port + this.
pub const PEER_PORT_OFFSET: u16 = 10_000;

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    /// Its id.
    pub id: NodeId,
    /// Where clients reach it (RESP).
    pub client: SocketAddr,
    /// Where peers reach it (binary frames).
    pub peer: SocketAddr,
}

/// A parsed and validated `cluster.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConf {
    /// Name peers compare in the handshake.
    pub cluster_name: String,
    /// N: replicas per key.
    pub replication_factor: usize,
    /// W: acknowledgements a write needs.
    pub write_quorum: usize,
    /// R: replies a read needs.
    pub read_quorum: usize,
    /// Tokens per node on the ring.
    pub virtual_nodes: usize,
    /// Whether `W + R <= N` is allowed (eventual consistency only).
    pub allow_weak_quorums: bool,
    /// The members, in file order.
    pub nodes: Vec<NodeAddr>,
}

/// A problem in `cluster.conf`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfError {
    /// 1-based line number, or 0 for a problem with the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "cluster.conf: {}", self.message)
        } else {
            write!(f, "cluster.conf line {}: {}", self.line, self.message)
        }
    }
}

fn err(line: usize, message: impl Into<String>) -> ConfError {
    ConfError {
        line,
        message: message.into(),
    }
}

impl Default for ClusterConf {
    fn default() -> Self {
        ClusterConf {
            cluster_name: "dkv".into(),
            replication_factor: 3,
            write_quorum: 2,
            read_quorum: 2,
            virtual_nodes: 128,
            allow_weak_quorums: false,
            nodes: Vec::new(),
        }
    }
}

impl ClusterConf {
    /// A one-node cluster (N = W = R = 1) of node `id` at `client`.
    pub fn single(id: NodeId, client: SocketAddr) -> ClusterConf {
        ClusterConf {
            replication_factor: 1,
            write_quorum: 1,
            read_quorum: 1,
            nodes: vec![NodeAddr {
                id,
                client,
                peer: default_peer(client),
            }],
            ..ClusterConf::default()
        }
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<ClusterConf, ConfError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(0, format!("cannot read {}: {e}", path.display())))?;
        ClusterConf::parse(&text)
    }

    /// Parses and validates the text of a `cluster.conf`.
    pub fn parse(text: &str) -> Result<ClusterConf, ConfError> {
        let mut conf = ClusterConf::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            if let Some(rest) = content
                .strip_prefix("node ")
                .or_else(|| content.strip_prefix("node\t"))
            {
                conf.nodes.push(parse_node(rest, line)?);
                continue;
            }
            let Some((name, value)) = content.split_once('=') else {
                return Err(err(line, format!("expected `name = value` or `node <id> <host>:<port> [<peer port>]`, got `{content}`")));
            };
            let (name, value) = (name.trim(), value.trim());
            match name {
                "cluster_name" if !value.is_empty() && !value.contains(char::is_whitespace) => {
                    conf.cluster_name = value.to_string()
                }
                "cluster_name" => return Err(err(line, "cluster_name must be one word")),
                "replication_factor" => conf.replication_factor = parse_count(name, value, line)?,
                "write_quorum" => conf.write_quorum = parse_count(name, value, line)?,
                "read_quorum" => conf.read_quorum = parse_count(name, value, line)?,
                "virtual_nodes" => conf.virtual_nodes = parse_count(name, value, line)?,
                "allow_weak_quorums" => {
                    conf.allow_weak_quorums = match value {
                        "true" | "yes" => true,
                        "false" | "no" => false,
                        _ => {
                            return Err(err(
                                line,
                                format!("allow_weak_quorums must be true or false, got `{value}`"),
                            ))
                        }
                    }
                }
                _ => return Err(err(line, format!("unknown setting `{name}`"))),
            }
        }
        conf.validate()?;
        Ok(conf)
    }

    /// Checks the file as a whole.
    pub fn validate(&self) -> Result<(), ConfError> {
        if self.nodes.is_empty() {
            return Err(err(0, "no `node` lines"));
        }
        for (i, a) in self.nodes.iter().enumerate() {
            for b in &self.nodes[..i] {
                if a.id == b.id {
                    return Err(err(0, format!("node id {} appears twice", a.id)));
                }
                let addresses = [a.client, a.peer];
                if addresses.contains(&b.client) || addresses.contains(&b.peer) {
                    return Err(err(
                        0,
                        format!("nodes {} and {} share an address", b.id, a.id),
                    ));
                }
            }
        }
        let n = self.replication_factor;
        if n > self.nodes.len() {
            return Err(err(
                0,
                format!(
                    "replication_factor {n} is more than the {} nodes listed",
                    self.nodes.len()
                ),
            ));
        }
        for (name, q) in [
            ("write_quorum", self.write_quorum),
            ("read_quorum", self.read_quorum),
        ] {
            if q > n {
                return Err(err(
                    0,
                    format!("{name} {q} is more than replication_factor {n}"),
                ));
            }
        }
        if self.write_quorum + self.read_quorum <= n && !self.allow_weak_quorums {
            return Err(err(
                0,
                format!(
                    "write_quorum + read_quorum ({} + {}) must exceed replication_factor ({n}) \
                     so that reads see the latest acknowledged write; set allow_weak_quorums = true \
                     to accept eventual consistency",
                    self.write_quorum, self.read_quorum
                ),
            ));
        }
        Ok(())
    }

    /// The member with id `id`.
    pub fn node(&self, id: NodeId) -> Option<&NodeAddr> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

fn default_peer(client: SocketAddr) -> SocketAddr {
    SocketAddr::new(client.ip(), client.port().wrapping_add(PEER_PORT_OFFSET))
}

fn parse_count(name: &str, value: &str, line: usize) -> Result<usize, ConfError> {
    match value.parse::<usize>() {
        Ok(n) if (1..=65_536).contains(&n) => Ok(n),
        _ => Err(err(
            line,
            format!("{name} must be a whole number from 1 to 65536, got `{value}`"),
        )),
    }
}

fn parse_node(rest: &str, line: usize) -> Result<NodeAddr, ConfError> {
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if !(2..=3).contains(&fields.len()) {
        return Err(err(
            line,
            "expected `node <id> <host>:<client port> [<peer port>]`",
        ));
    }
    let id = fields[0].parse::<u32>().map_err(|_| {
        err(
            line,
            format!(
                "node id must be a number from 0 to 4294967295, got `{}`",
                fields[0]
            ),
        )
    })?;
    let client: SocketAddr = fields[1].parse().map_err(|_| {
        err(
            line,
            format!("`{}` is not an address like 127.0.0.1:7001", fields[1]),
        )
    })?;
    if client.port() == 0 {
        return Err(err(line, "client port must not be 0"));
    }
    let peer = match fields.get(2) {
        Some(port) => match port.parse::<u16>() {
            Ok(p) if p != 0 => SocketAddr::new(client.ip(), p),
            _ => {
                return Err(err(
                    line,
                    format!("peer port must be a number from 1 to 65535, got `{port}`"),
                ))
            }
        },
        None if client.port() <= u16::MAX - PEER_PORT_OFFSET => default_peer(client),
        None => {
            return Err(err(
                line,
                format!(
                    "client port {} leaves no room for peer port +{PEER_PORT_OFFSET}; give one",
                    client.port()
                ),
            ))
        }
    };
    Ok(NodeAddr {
        id: NodeId(id),
        client,
        peer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
# settings every node must share
replication_factor = 3
write_quorum = 2
read_quorum = 2
virtual_nodes = 128
# node <id> <host>:<client port> [<peer port>]
node 1 127.0.0.1:7001
node 2 127.0.0.1:7002   # trailing comment
node 3 127.0.0.1:7003 18003
";

    #[test]
    fn parses_the_design_example() {
        let conf = ClusterConf::parse(EXAMPLE).unwrap();
        assert_eq!(
            (conf.replication_factor, conf.write_quorum, conf.read_quorum),
            (3, 2, 2)
        );
        assert_eq!(conf.virtual_nodes, 128);
        assert_eq!(conf.nodes.len(), 3);
        assert_eq!(conf.nodes[0].peer, "127.0.0.1:17001".parse().unwrap());
        assert_eq!(conf.nodes[2].peer, "127.0.0.1:18003".parse().unwrap());
        assert_eq!(conf.node(NodeId(2)).unwrap().client.port(), 7002);
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../../cluster.conf.example");
        ClusterConf::parse(text).unwrap();
    }

    fn error_of(text: &str) -> String {
        ClusterConf::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        assert_eq!(
            error_of("node 1 127.0.0.1:7001\nbogus = 1\n"),
            "cluster.conf line 2: unknown setting `bogus`"
        );
        assert!(error_of("replication_factor = x\n")
            .starts_with("cluster.conf line 1: replication_factor must be"));
        assert!(error_of("node one 127.0.0.1:1\n").contains("line 1: node id"));
        assert!(error_of("node 1 localhost\n").contains("line 1: `localhost` is not an address"));
        assert!(error_of("node 1 127.0.0.1:1 0\n").contains("line 1: peer port"));
        assert!(error_of("node 1\n").contains("line 1: expected `node"));
        assert!(error_of("just words\n").contains("line 1: expected `name = value`"));
        assert!(error_of("write_quorum = 0\n").contains("line 1: write_quorum must be"));
    }

    #[test]
    fn whole_file_checks() {
        assert_eq!(error_of("# nothing\n"), "cluster.conf: no `node` lines");
        assert!(error_of("replication_factor=1\nwrite_quorum=1\nread_quorum=1\nnode 1 127.0.0.1:1\nnode 1 127.0.0.1:2\n")
            .contains("node id 1 appears twice"));
        assert!(error_of("replication_factor=1\nwrite_quorum=1\nread_quorum=1\nnode 1 127.0.0.1:1\nnode 2 127.0.0.1:1\n")
            .contains("share an address"));
        assert!(error_of("node 1 127.0.0.1:1\n")
            .contains("replication_factor 3 is more than the 1 nodes"));
        let weak = "replication_factor = 3\nwrite_quorum = 1\nread_quorum = 2\nnode 1 127.0.0.1:1\nnode 2 127.0.0.1:2\nnode 3 127.0.0.1:3\n";
        assert!(error_of(weak).contains("must exceed replication_factor"));
        let allowed = format!("{weak}allow_weak_quorums = true\n");
        assert!(ClusterConf::parse(&allowed).unwrap().allow_weak_quorums);
    }

    #[test]
    fn single_node_conf_is_valid() {
        ClusterConf::single(NodeId(1), "127.0.0.1:7001".parse().unwrap())
            .validate()
            .unwrap();
    }
}
