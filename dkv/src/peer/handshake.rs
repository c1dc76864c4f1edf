//! The handshake's rules: the digest of the settings every node must share,
//! the proofs each side gives that it knows the cluster secret (HMAC-SHA256
//! over both nonces, never the secret itself), and whether a node admits a
//! peer. Pure functions.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::message::{Hello, NONCE_LEN, PROOF_LEN};
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

/// The bytes both proofs cover: the protocol version, the dialler's and
/// the listener's ids and both nonces, so a proof is good for one
/// connection between two given nodes and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript([u8; TRANSCRIPT_LEN]);

const TRANSCRIPT_LEN: usize = 2 + 4 + 4 + 2 * NONCE_LEN;
/// Labels that keep a dialler's proof from ever passing as a listener's.
const DIALLER_LABEL: &[u8] = b"dkv peer handshake v3: dialler";
const LISTENER_LABEL: &[u8] = b"dkv peer handshake v3: listener";

impl Transcript {
    /// The transcript of a handshake in which `hello` reached `listener`,
    /// which answered with `listener_nonce`.
    pub fn new(hello: &Hello, listener: NodeId, listener_nonce: &[u8; NONCE_LEN]) -> Transcript {
        let mut bytes = [0u8; TRANSCRIPT_LEN];
        bytes[0..2].copy_from_slice(&hello.protocol_version.to_le_bytes());
        bytes[2..6].copy_from_slice(&hello.node_id.0.to_le_bytes());
        bytes[6..10].copy_from_slice(&listener.0.to_le_bytes());
        bytes[10..10 + NONCE_LEN].copy_from_slice(&hello.nonce);
        bytes[10 + NONCE_LEN..].copy_from_slice(listener_nonce);
        Transcript(bytes)
    }
}

fn mac(secret: &[u8], label: &[u8], transcript: &Transcript, extra: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(label);
    mac.update(&transcript.0);
    for part in extra {
        mac.update(&(part.len() as u32).to_le_bytes());
        mac.update(part);
    }
    mac
}

/// The dialler's proof: HMAC-SHA256 keyed with the cluster secret over
/// [`DIALLER_LABEL`] and the transcript.
pub fn dialler_proof(secret: &[u8], transcript: &Transcript) -> [u8; PROOF_LEN] {
    mac(secret, DIALLER_LABEL, transcript, &[])
        .finalize()
        .into_bytes()
        .into()
}

/// The listener's proof: HMAC-SHA256 keyed with the cluster secret over
/// [`LISTENER_LABEL`], the transcript, and the settings the welcome names
/// (each as a u32 length and its bytes), so nobody between the two nodes
/// can change them.
pub fn listener_proof(
    secret: &[u8],
    transcript: &Transcript,
    settings_digest: u64,
    cluster_name: &str,
) -> [u8; PROOF_LEN] {
    listener_mac(secret, transcript, settings_digest, cluster_name)
        .finalize()
        .into_bytes()
        .into()
}

fn listener_mac(
    secret: &[u8],
    transcript: &Transcript,
    settings_digest: u64,
    cluster_name: &str,
) -> Hmac<Sha256> {
    let digest = settings_digest.to_le_bytes();
    mac(
        secret,
        LISTENER_LABEL,
        transcript,
        &[&digest, cluster_name.as_bytes()],
    )
}

/// Whether `proof` is the dialler's proof for `transcript`, compared in
/// constant time.
pub fn dialler_proof_matches(secret: &[u8], transcript: &Transcript, proof: &[u8]) -> bool {
    mac(secret, DIALLER_LABEL, transcript, &[])
        .verify_slice(proof)
        .is_ok()
}

/// Whether `proof` is the listener's proof for `transcript` and these
/// settings, compared in constant time.
pub fn listener_proof_matches(
    secret: &[u8],
    transcript: &Transcript,
    settings_digest: u64,
    cluster_name: &str,
    proof: &[u8],
) -> bool {
    listener_mac(secret, transcript, settings_digest, cluster_name)
        .verify_slice(proof)
        .is_ok()
}

/// What a listener refuses a dialler that has not proven itself with:
/// nothing about the cluster, the reason stays in the listener's log.
pub const UNPROVEN_REFUSAL: &str = "handshake refused";

/// Why a listener refuses a dialler that has proven it knows the secret,
/// or `None` to welcome it: the claimed id must be another member's, and
/// the connection must come from that member's peer address (its IP; the
/// port is the dialler's own). `members` holds each member's peer address.
pub fn admission(
    members: &[(NodeId, SocketAddr)],
    listener: NodeId,
    claimed: NodeId,
    from: IpAddr,
) -> Option<String> {
    if claimed == listener {
        return Some(format!("node id {claimed} is this node's own"));
    }
    let Some(&(_, addr)) = members.iter().find(|(id, _)| *id == claimed) else {
        return Some(format!("node {claimed} is not a member of this cluster"));
    };
    if !same_host(addr.ip(), from) {
        return Some(format!(
            "node {claimed}'s peer address is {}, this connection comes from {from}",
            addr.ip()
        ));
    }
    None
}

/// IPv4 addresses compare equal to their IPv4-mapped IPv6 forms; a member
/// listed on an unspecified address (`0.0.0.0`) may dial from any.
fn same_host(listed: IpAddr, from: IpAddr) -> bool {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    listed.is_unspecified() || canonical(listed) == canonical(from)
}

/// Why a dialler whose own settings are `(digest, name)` rejects a
/// listener's welcome, or `None` when the settings agree. Checked after the
/// listener's proof, so only a node that knows the secret learns this.
pub fn settings_mismatch(
    ours: (u64, &str),
    welcome_digest: u64,
    welcome_name: &str,
) -> Option<String> {
    if welcome_name != ours.1 {
        return Some(format!(
            "cluster name `{welcome_name}` is not this node's `{}`",
            ours.1
        ));
    }
    if welcome_digest != ours.0 {
        return Some(format!(
            "settings digest {welcome_digest:016x} is not this node's {:016x}: the shared \
             settings or node lines of cluster.conf differ",
            ours.0
        ));
    }
    None
}

/// Compares secrets (`AUTH` passwords in the server) reading all of
/// `expected` whatever it finds, so the time taken says nothing about
/// where a guess first differs, nor about the secret's length beyond the
/// guess's own.
pub fn secrets_match(expected: &[u8], given: &[u8]) -> bool {
    let mut diff = expected.len() ^ given.len();
    for (i, x) in expected.iter().enumerate() {
        diff |= usize::from(std::hint::black_box(x ^ given.get(i).copied().unwrap_or(0)));
    }
    diff == 0
}
