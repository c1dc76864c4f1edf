//! Both sides of the peer handshake as byte-driven state machines, with
//! no sockets: [`Listener`] for a connection this node accepted,
//! [`Dialler`] for one it opened. The peer links feed them what arrived
//! and send what they return. The rules (proofs, admission, settings)
//! are [`crate::peer`]'s; the order of the exchange is here.
//!
//! ```text
//! dialler                                  listener
//!   Hello {version, id, to, nonce_d}  -->
//!                                      <--   Challenge {nonce_l}
//!   Proof {hmac(dialler, transcript)} -->
//!                                      <--   Welcome {id, hmac(listener, transcript,
//!                                                      settings), settings}
//! ```
//!
//! The dialler proves itself first, so a stranger that connects to this
//! node's peer port gets no proof to guess the secret from; the listener
//! proves itself before the dialler sends a single envelope, so a squatter
//! on a stopped member's address learns nothing and is sent nothing.

use std::net::{IpAddr, SocketAddr};

use crate::peer::{self, FrameError, Hello, HelloReply, Proof, Transcript, PROTOCOL_VERSION};
use crate::random;
use crate::version::NodeId;

/// Who this node is to its peers, and the largest frame it accepts once a
/// peer is in.
#[derive(Debug, Clone)]
pub(crate) struct PeerIdentity {
    pub node_id: NodeId,
    /// `--cluster-secret` (empty: none, so anyone who can reach the port
    /// passes the proof; protected mode keeps such a port on loopback).
    pub secret: Vec<u8>,
    pub cluster_name: String,
    pub settings_digest: u64,
    pub max_frame: usize,
}

/// What a step of either side produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send these bytes; the handshake goes on.
    Send(Vec<u8>),
    /// The peer is in: send these bytes (possibly none), then envelopes.
    Done(NodeId, Vec<u8>),
    /// The handshake failed: send these bytes (possibly none), then close.
    /// The reason is for this node's log only.
    Refuse(Vec<u8>, String),
}

fn encoded(reply: &HelloReply) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = peer::encode_hello_reply(reply, &mut out) {
        log::error!("cannot encode a handshake reply: {e}");
    }
    out
}

fn refuse(said: &str, reason: String) -> Outcome {
    let reply = HelloReply::Refused {
        reason: said.to_string(),
    };
    Outcome::Refuse(encoded(&reply), reason)
}

/// The listener's side of one accepted connection.
#[derive(Debug)]
pub(crate) enum Listener {
    AwaitHello,
    AwaitProof {
        hello: Hello,
        nonce: [u8; peer::NONCE_LEN],
    },
}

impl Listener {
    /// Takes the next handshake frame from `buf`: `Ok(None)` until one has
    /// arrived, else what to do and the bytes it used. `Err` is a frame no
    /// handshake may carry: close without a word.
    pub fn step(
        &mut self,
        identity: &PeerIdentity,
        members: &[(NodeId, SocketAddr)],
        from: IpAddr,
        buf: &[u8],
    ) -> Result<Option<(Outcome, usize)>, FrameError> {
        match self {
            Listener::AwaitHello => {
                let (hello, used) = match peer::decode_hello(buf, peer::HANDSHAKE_MAX_FRAME) {
                    Ok(Some(found)) => found,
                    Ok(None) => return Ok(None),
                    Err(FrameError::UnsupportedVersion(version)) => {
                        let said = format!(
                            "protocol version {version} is not this node's {PROTOCOL_VERSION}"
                        );
                        let outcome = refuse(&said, said.clone());
                        return Ok(Some((outcome, buf.len())));
                    }
                    Err(e) => return Err(e),
                };
                if hello.to != identity.node_id {
                    let reason = format!(
                        "the dialler meant to reach node {}, this is node {}",
                        hello.to, identity.node_id
                    );
                    return Ok(Some((refuse(peer::UNPROVEN_REFUSAL, reason), used)));
                }
                let nonce = random::bytes::<{ peer::NONCE_LEN }>();
                let challenge = encoded(&HelloReply::Challenge { nonce });
                *self = Listener::AwaitProof { hello, nonce };
                Ok(Some((Outcome::Send(challenge), used)))
            }
            Listener::AwaitProof { hello, nonce } => {
                let Some((proof, used)) = peer::decode_proof(buf, peer::HANDSHAKE_MAX_FRAME)?
                else {
                    return Ok(None);
                };
                let transcript = Transcript::new(hello, identity.node_id, nonce);
                if !peer::dialler_proof_matches(&identity.secret, &transcript, &proof.proof) {
                    let reason = format!(
                        "a dialler claiming node {} did not prove the cluster secret",
                        hello.node_id
                    );
                    return Ok(Some((refuse(peer::UNPROVEN_REFUSAL, reason), used)));
                }
                if let Some(reason) =
                    peer::admission(members, identity.node_id, hello.node_id, from)
                {
                    return Ok(Some((refuse(&reason, reason.clone()), used)));
                }
                let welcome = HelloReply::Welcome {
                    node_id: identity.node_id,
                    proof: peer::listener_proof(
                        &identity.secret,
                        &transcript,
                        identity.settings_digest,
                        &identity.cluster_name,
                    ),
                    settings_digest: identity.settings_digest,
                    cluster_name: identity.cluster_name.clone(),
                };
                Ok(Some((
                    Outcome::Done(hello.node_id, encoded(&welcome)),
                    used,
                )))
            }
        }
    }
}

/// The dialler's side of one connection to `expected`.
#[derive(Debug)]
pub(crate) struct Dialler {
    hello: Hello,
    /// Set once the challenge is answered.
    transcript: Option<Transcript>,
}

impl Dialler {
    /// A fresh handshake with node `to`, and the Hello that opens it.
    pub fn start(identity: &PeerIdentity, to: NodeId) -> (Dialler, Vec<u8>) {
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            node_id: identity.node_id,
            to,
            nonce: random::bytes::<{ peer::NONCE_LEN }>(),
        };
        let mut out = Vec::new();
        if let Err(e) = peer::encode_hello(&hello, &mut out) {
            log::error!("cannot encode this node's handshake: {e}");
        }
        let dialler = Dialler {
            hello,
            transcript: None,
        };
        (dialler, out)
    }

    /// Takes the listener's next handshake frame from `buf`, like
    /// [`Listener::step`].
    pub fn step(
        &mut self,
        identity: &PeerIdentity,
        buf: &[u8],
    ) -> Result<Option<(Outcome, usize)>, FrameError> {
        let to = self.hello.to;
        let Some(transcript) = &self.transcript else {
            let Some((reply, used)) = peer::decode_challenge(buf, peer::HANDSHAKE_MAX_FRAME)?
            else {
                return Ok(None);
            };
            let nonce = match reply {
                HelloReply::Challenge { nonce } => nonce,
                HelloReply::Refused { reason } => {
                    let why = format!("node {to} refused this node: {reason}");
                    return Ok(Some((Outcome::Refuse(Vec::new(), why), used)));
                }
                HelloReply::Welcome { .. } => {
                    return Err(FrameError::UnexpectedType(peer::frame_type::WELCOME))
                }
            };
            let transcript = Transcript::new(&self.hello, to, &nonce);
            let proof = Proof {
                proof: peer::dialler_proof(&identity.secret, &transcript),
            };
            self.transcript = Some(transcript);
            let mut out = Vec::new();
            peer::encode_proof(&proof, &mut out)?;
            return Ok(Some((Outcome::Send(out), used)));
        };
        let Some((reply, used)) = peer::decode_hello_reply(buf, peer::HANDSHAKE_MAX_FRAME)? else {
            return Ok(None);
        };
        let outcome = match reply {
            HelloReply::Welcome {
                node_id,
                proof,
                settings_digest,
                cluster_name,
            } => {
                let proven = peer::listener_proof_matches(
                    &identity.secret,
                    transcript,
                    settings_digest,
                    &cluster_name,
                    &proof,
                );
                let ours = (identity.settings_digest, identity.cluster_name.as_str());
                if !proven {
                    Outcome::Refuse(
                        Vec::new(),
                        format!("the node at node {to}'s address did not prove the cluster secret"),
                    )
                } else if node_id != to {
                    Outcome::Refuse(
                        Vec::new(),
                        format!("node {to}'s address answered as node {node_id}"),
                    )
                } else if let Some(reason) =
                    peer::settings_mismatch(ours, settings_digest, &cluster_name)
                {
                    Outcome::Refuse(Vec::new(), format!("node {to}: {reason}"))
                } else {
                    Outcome::Done(to, Vec::new())
                }
            }
            HelloReply::Refused { reason } => {
                Outcome::Refuse(Vec::new(), format!("node {to} refused this node: {reason}"))
            }
            HelloReply::Challenge { .. } => {
                return Err(FrameError::UnexpectedType(peer::frame_type::CHALLENGE))
            }
        };
        Ok(Some((outcome, used)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(id: u32, secret: &str, digest: u64) -> PeerIdentity {
        PeerIdentity {
            node_id: NodeId(id),
            secret: secret.as_bytes().to_vec(),
            cluster_name: "dkv".into(),
            settings_digest: digest,
            max_frame: 1 << 20,
        }
    }

    fn members() -> Vec<(NodeId, SocketAddr)> {
        vec![
            (NodeId(1), "127.0.0.1:17001".parse().unwrap()),
            (NodeId(2), "127.0.0.1:17002".parse().unwrap()),
        ]
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// Runs a whole handshake between node 1 dialling and node 2 listening;
    /// returns each side's final outcome and every byte that crossed.
    fn run(dialler: &PeerIdentity, listener: &PeerIdentity) -> (Outcome, Outcome, Vec<u8>) {
        let (mut d, hello) = Dialler::start(dialler, NodeId(2));
        let mut l = Listener::AwaitHello;
        let mut wire = hello.clone();
        let mut to_listener = hello;
        for _ in 0..4 {
            let (heard, used) = l
                .step(listener, &members(), LOOPBACK, &to_listener)
                .unwrap()
                .unwrap();
            assert_eq!(used, to_listener.len());
            let bytes = match &heard {
                Outcome::Send(b) | Outcome::Done(_, b) | Outcome::Refuse(b, _) => b.clone(),
            };
            wire.extend_from_slice(&bytes);
            let (said, used) = d.step(dialler, &bytes).unwrap().unwrap();
            assert_eq!(used, bytes.len());
            match said {
                Outcome::Send(b) => {
                    wire.extend_from_slice(&b);
                    to_listener = b;
                }
                done => return (done, heard, wire),
            }
        }
        panic!("the handshake did not end");
    }

    #[test]
    fn nodes_sharing_the_secret_both_get_in_and_the_secret_never_crosses() {
        let (d, l, wire) = run(
            &identity(1, "s3cret-s3cret", 7),
            &identity(2, "s3cret-s3cret", 7),
        );
        assert!(matches!(d, Outcome::Done(NodeId(2), _)), "{d:?}");
        assert!(matches!(l, Outcome::Done(NodeId(1), _)), "{l:?}");
        assert!(!wire.windows(6).any(|w| w == b"s3cret"));
    }

    #[test]
    fn a_stranger_without_the_secret_learns_nothing() {
        let (d, l, wire) = run(&identity(1, "guess", 7), &identity(2, "s3cret", 7));
        let Outcome::Refuse(_, reason) = &l else {
            panic!("{l:?}")
        };
        assert!(reason.contains("did not prove"), "{reason}");
        let Outcome::Refuse(_, told) = &d else {
            panic!("{d:?}")
        };
        assert!(told.ends_with(peer::UNPROVEN_REFUSAL), "{told}");
        // Neither the cluster name nor the digest went out.
        assert!(!wire.windows(3).any(|w| w == b"dkv"));
        assert!(!wire.windows(8).any(|w| w == 7u64.to_le_bytes()));
    }

    #[test]
    fn a_squatter_on_a_members_address_cannot_pass_as_the_member() {
        // The dialler proves itself to whoever listens; the squatter cannot
        // prove itself back, so the dialler never counts the link as up.
        let squatter = identity(2, "", 7);
        let (mut d, hello) = Dialler::start(&identity(1, "s3cret", 7), NodeId(2));
        let mut l = Listener::AwaitHello;
        let (challenge, _) = l
            .step(&squatter, &members(), LOOPBACK, &hello)
            .unwrap()
            .unwrap();
        let Outcome::Send(challenge) = challenge else {
            panic!()
        };
        let (proof, _) = d
            .step(&identity(1, "s3cret", 7), &challenge)
            .unwrap()
            .unwrap();
        let Outcome::Send(proof) = proof else {
            panic!()
        };
        // The squatter forges a welcome with a proof under another secret.
        let Listener::AwaitProof { hello, nonce } = &l else {
            panic!()
        };
        let transcript = Transcript::new(hello, NodeId(2), nonce);
        let forged = encoded(&HelloReply::Welcome {
            node_id: NodeId(2),
            proof: peer::listener_proof(b"", &transcript, 7, "dkv"),
            settings_digest: 7,
            cluster_name: "dkv".into(),
        });
        assert_eq!(proof.len(), 4 + 1 + peer::PROOF_LEN);
        let (verdict, _) = d.step(&identity(1, "s3cret", 7), &forged).unwrap().unwrap();
        let Outcome::Refuse(_, reason) = verdict else {
            panic!("{verdict:?}")
        };
        assert!(reason.contains("did not prove"), "{reason}");
    }

    #[test]
    fn different_settings_are_told_only_after_both_proofs() {
        let (d, l, _) = run(&identity(1, "s", 7), &identity(2, "s", 8));
        assert!(matches!(l, Outcome::Done(..)));
        let Outcome::Refuse(_, reason) = d else {
            panic!("{d:?}")
        };
        assert!(reason.contains("settings digest"), "{reason}");
    }

    #[test]
    fn members_only_from_their_own_address() {
        let dialler = identity(9, "s", 7);
        let (d, l, _) = run(&dialler, &identity(2, "s", 7));
        let Outcome::Refuse(_, reason) = &l else {
            panic!("{l:?}")
        };
        assert!(reason.contains("not a member"), "{reason}");
        assert!(matches!(d, Outcome::Refuse(..)));

        let (_, hello) = Dialler::start(&identity(1, "s", 7), NodeId(2));
        let mut l = Listener::AwaitHello;
        let elsewhere: IpAddr = "10.1.2.3".parse().unwrap();
        let listener = identity(2, "s", 7);
        l.step(&listener, &members(), elsewhere, &hello).unwrap();
        let Listener::AwaitProof { hello: h, nonce } = &l else {
            panic!()
        };
        let proof = Proof {
            proof: peer::dialler_proof(b"s", &Transcript::new(h, NodeId(2), nonce)),
        };
        let mut wire = Vec::new();
        peer::encode_proof(&proof, &mut wire).unwrap();
        let (verdict, _) = l
            .step(&listener, &members(), elsewhere, &wire)
            .unwrap()
            .unwrap();
        let Outcome::Refuse(_, reason) = verdict else {
            panic!("{verdict:?}")
        };
        assert!(reason.contains("comes from 10.1.2.3"), "{reason}");
    }

    #[test]
    fn a_hello_for_another_node_or_version_is_refused() {
        let (_, hello) = Dialler::start(&identity(1, "s", 7), NodeId(3));
        let mut l = Listener::AwaitHello;
        let (verdict, _) = l
            .step(&identity(2, "s", 7), &members(), LOOPBACK, &hello)
            .unwrap()
            .unwrap();
        assert!(matches!(verdict, Outcome::Refuse(..)), "{verdict:?}");
        let mut old = hello.clone();
        old[5] = 2; // protocol version 2
        let mut l = Listener::AwaitHello;
        let (verdict, _) = l
            .step(&identity(2, "s", 7), &members(), LOOPBACK, &old)
            .unwrap()
            .unwrap();
        let Outcome::Refuse(bytes, reason) = verdict else {
            panic!()
        };
        assert!(reason.contains("protocol version 2"), "{reason}");
        assert!(!bytes.is_empty());
    }
}
