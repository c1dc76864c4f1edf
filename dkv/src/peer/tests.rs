//! Peer protocol unit tests: golden bytes for every frame type (written by
//! hand from `docs/peer-protocol.md`, fields separated by `|`), each error,
//! the settings digest and the handshake rules.

use super::*;
use crate::config::ClusterConf;
use crate::engine::{Entry, EntryRef};
use crate::version::{NodeId, Timestamp, Version};

/// Bytes from hex, ignoring spaces and `|`.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

const MAX: usize = DEFAULT_MAX_FRAME;

fn envelope(message: Message) -> Envelope {
    Envelope {
        from: NodeId(1),
        clock: Timestamp(0x1122_3344_5566_7788),
        message,
    }
}

fn v(ts: u64, node: u32) -> Version {
    Version::new(Timestamp(ts), NodeId(node))
}

/// Prefix, type, `from` = 1 and `clock` = 0x1122334455667788.
const HEAD: &str = "01000000 | 8877665544332211";

fn golden_envelopes() -> Vec<(Envelope, String)> {
    vec![
        (
            envelope(Message::Replicate {
                request: RequestId(9),
                write: SharedWrite::new(b"k", EntryRef::value(v(0x10, 2), b"v")),
                hint_for: Some(NodeId(3)),
            }),
            format!(
                "31000000 10 | {HEAD} | 0900000000000000 | 01000000 6b \
                 | 1000000000000000 02000000 00 01000000 76 | 01 03000000"
            ),
        ),
        (
            envelope(Message::Replicate {
                request: RequestId(9),
                write: SharedWrite::new(b"k", EntryRef::tombstone(v(0x11, 2))),
                hint_for: None,
            }),
            format!(
                "28000000 10 | {HEAD} | 0900000000000000 | 01000000 6b \
                 | 1100000000000000 02000000 01 | 00"
            ),
        ),
        (
            envelope(Message::Replicate {
                request: RequestId(9),
                write: SharedWrite::new(b"k", EntryRef::new(v(0x10, 2), Some(b"v"), Some(0x0102))),
                hint_for: None,
            }),
            format!(
                "35000000 10 | {HEAD} | 0900000000000000 | 01000000 6b \
                 | 1000000000000000 02000000 02 0201000000000000 01000000 76 | 00"
            ),
        ),
        (
            envelope(Message::ReplicateAck {
                request: RequestId(9),
                ok: true,
                was_live: false,
                held: None,
            }),
            format!("16000000 11 | {HEAD} | 0900000000000000 | 01"),
        ),
        (
            envelope(Message::ReplicateAck {
                request: RequestId(9),
                ok: true,
                was_live: true,
                held: Some(Version::new(Timestamp(0x12), NodeId(3))),
            }),
            format!("22000000 11 | {HEAD} | 0900000000000000 | 07 | 1200000000000000 03000000"),
        ),
        (
            envelope(Message::Read {
                request: RequestId(10),
                key: b"k"[..].into(),
            }),
            format!("1a000000 12 | {HEAD} | 0a00000000000000 | 01000000 6b"),
        ),
        (
            envelope(Message::ReadReply {
                request: RequestId(10),
                entry: None,
            }),
            format!("16000000 13 | {HEAD} | 0a00000000000000 | 00"),
        ),
        (
            envelope(Message::ReadReply {
                request: RequestId(10),
                entry: Some(Entry::tombstone(v(0x11, 2))),
            }),
            format!("23000000 13 | {HEAD} | 0a00000000000000 | 01 | 1100000000000000 02000000 01"),
        ),
        (
            envelope(Message::Heartbeat),
            format!("0d000000 14 | {HEAD}"),
        ),
        (
            envelope(Message::AaeBranches {
                exchange: 5,
                partition: 2,
                branches: vec![1, 2],
            }),
            format!(
                "2d000000 15 | {HEAD} | 0500000000000000 | 02000000 | 02000000 \
                 | 0100000000000000 0200000000000000"
            ),
        ),
        (
            envelope(Message::AaeLeaves {
                exchange: 5,
                partition: 2,
                leaves: vec![(3, 7)],
            }),
            format!(
                "27000000 16 | {HEAD} | 0500000000000000 | 02000000 | 01000000 \
                 | 0300 0700000000000000"
            ),
        ),
        (
            envelope(Message::AaeKeysWanted {
                exchange: 5,
                partition: 2,
                segments: vec![3, 4],
            }),
            format!("21000000 17 | {HEAD} | 0500000000000000 | 02000000 | 02000000 | 0300 0400"),
        ),
        (
            envelope(Message::AaeKeys {
                exchange: 5,
                partition: 2,
                keys: vec![(b"k".to_vec(), v(0x10, 2))],
            }),
            format!(
                "2e000000 18 | {HEAD} | 0500000000000000 | 02000000 | 01000000 \
                 | 01000000 6b | 1000000000000000 02000000"
            ),
        ),
        (
            envelope(Message::Flush {
                request: 7,
                floor: v(0x20, 3),
            }),
            format!("21000000 19 | {HEAD} | 0700000000000000 | 2000000000000000 03000000"),
        ),
        (
            envelope(Message::FlushAck { request: 7 }),
            format!("15000000 1a | {HEAD} | 0700000000000000"),
        ),
        (
            envelope(Message::Scan {
                request: 8,
                from: 0x30,
                count: 10,
                pattern: b"u*".to_vec(),
            }),
            format!(
                "27000000 1b | {HEAD} | 0800000000000000 | 3000000000000000 | 0a000000 \
                 | 02000000 752a"
            ),
        ),
        (
            envelope(Message::ScanReply {
                request: 8,
                next: Some(0x31),
                live_keys: 5,
                keys: vec![b"u1".to_vec()],
            }),
            format!(
                "30000000 1c | {HEAD} | 0800000000000000 | 01 3100000000000000 \
                 | 0500000000000000 | 01000000 | 02000000 7531"
            ),
        ),
    ]
}

fn hello() -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        node_id: NodeId(2),
        to: NodeId(3),
        nonce: [0x11; NONCE_LEN],
    }
}

const NONCE_11: &str = "11111111111111111111111111111111 11111111111111111111111111111111";
const NONCE_22: &str = "22222222222222222222222222222222 22222222222222222222222222222222";

#[test]
fn golden_handshake_frames() {
    let mut wire = Vec::new();
    assert_eq!(encode_hello(&hello(), &mut wire), Ok(47));
    let hello_bytes = format!("2b000000 01 | 0600 | 02000000 | 03000000 | {NONCE_11}");
    assert_eq!(wire, hex(&hello_bytes));
    assert_eq!(decode_hello(&wire, MAX), Ok(Some((hello(), 47))));

    let proof = Proof {
        proof: [0x22; PROOF_LEN],
    };
    let mut wire = Vec::new();
    assert_eq!(encode_proof(&proof, &mut wire), Ok(37));
    assert_eq!(wire, hex(&format!("21000000 05 | {NONCE_22}")));
    assert_eq!(decode_proof(&wire, MAX), Ok(Some((proof, 37))));

    let challenge = HelloReply::Challenge {
        nonce: [0x22; NONCE_LEN],
    };
    let welcome = HelloReply::Welcome {
        node_id: NodeId(3),
        proof: [0x11; PROOF_LEN],
        settings_digest: 0x0102_0304_0506_0708,
        cluster_name: "dkv".into(),
    };
    let refused = HelloReply::Refused {
        reason: "no".into(),
    };
    let replies = [
        (challenge, format!("21000000 04 | {NONCE_22}"), true),
        (
            welcome,
            format!("34000000 02 | 03000000 | {NONCE_11} | 0807060504030201 | 03000000 646b76"),
            false,
        ),
        (refused.clone(), "07000000 03 | 02000000 6e6f".into(), false),
        (refused, "07000000 03 | 02000000 6e6f".into(), true),
    ];
    for (reply, bytes, first) in replies {
        let mut wire = Vec::new();
        encode_hello_reply(&reply, &mut wire).unwrap();
        assert_eq!(wire, hex(&bytes), "{reply:?}");
        let decode = if first {
            decode_challenge
        } else {
            decode_hello_reply
        };
        assert_eq!(decode(&wire, MAX), Ok(Some((reply, wire.len()))));
    }
}

#[test]
fn golden_envelope_frames() {
    for (envelope, bytes) in golden_envelopes() {
        let expected = hex(&bytes);
        let mut wire = vec![0xee]; // encoding appends
        let used = encode_envelope(&envelope, &mut wire).unwrap();
        assert_eq!(&wire[1..], expected, "{envelope:?}");
        assert_eq!(used, expected.len());
        assert_eq!(envelope_frame_len(&envelope), (used - LEN_PREFIX) as u64);
        assert_eq!(message_type(&envelope.message), expected[4]);
        assert_eq!(
            decode_envelope(&expected, MAX),
            Ok(Some((envelope, expected.len())))
        );
    }
}

#[test]
fn incomplete_frames_ask_for_more() {
    for (_, bytes) in golden_envelopes() {
        let wire = hex(&bytes);
        for cut in 0..wire.len() {
            assert_eq!(decode_envelope(&wire[..cut], MAX), Ok(None), "cut at {cut}");
            assert_eq!(check_frame(&wire[..cut], MAX), Ok(None));
        }
        assert_eq!(check_frame(&wire, MAX), Ok(Some(wire.len())));
    }
}

#[test]
fn oversize_and_empty_frames_fail_on_the_prefix_alone() {
    let huge = u32::MAX.to_le_bytes();
    let err = FrameError::TooLarge {
        len: u64::from(u32::MAX),
        max: MAX as u64,
    };
    assert_eq!(decode_envelope(&huge, MAX), Err(err.clone()));
    assert_eq!(decode_hello(&huge, MAX), Err(err.clone()));
    assert_eq!(check_frame(&huge, MAX), Err(err));
    // The limit is inclusive.
    let heartbeat = hex(&golden_envelopes()[8].1);
    assert!(decode_envelope(&heartbeat, 13).unwrap().is_some());
    assert_eq!(
        decode_envelope(&heartbeat, 12),
        Err(FrameError::TooLarge { len: 13, max: 12 })
    );
    assert_eq!(decode_envelope(&[0, 0, 0, 0], MAX), Err(FrameError::Empty));
}

#[test]
fn types_are_checked_per_phase_as_soon_as_they_arrive() {
    // A 1 KiB frame announced, only its type byte present.
    let head = |kind: u8| [0x00, 0x04, 0x00, 0x00, kind];
    assert_eq!(
        decode_envelope(&head(frame_type::HELLO), MAX),
        Err(FrameError::UnexpectedType(0x01))
    );
    assert_eq!(
        decode_hello(&head(frame_type::HEARTBEAT), MAX),
        Err(FrameError::UnexpectedType(0x14))
    );
    assert_eq!(
        decode_hello_reply(&head(frame_type::HELLO), MAX),
        Err(FrameError::UnexpectedType(0x01))
    );
    // A welcome before the challenge, a challenge after it, a proof where a
    // hello belongs: each is refused on its type byte.
    assert_eq!(
        decode_challenge(&head(frame_type::WELCOME), MAX),
        Err(FrameError::UnexpectedType(0x02))
    );
    assert_eq!(
        decode_hello_reply(&head(frame_type::CHALLENGE), MAX),
        Err(FrameError::UnexpectedType(0x04))
    );
    assert_eq!(
        decode_hello(&head(frame_type::PROOF), MAX),
        Err(FrameError::UnexpectedType(0x05))
    );
    assert_eq!(
        decode_envelope(&head(0x7f), MAX),
        Err(FrameError::UnexpectedType(0x7f))
    );
    assert_eq!(decode_envelope(&head(frame_type::READ), MAX), Ok(None));
}

/// A frame of `kind` around `payload`, with a correct prefix.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 1) as u32).to_le_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(payload);
    out
}

#[test]
fn malformed_payloads_are_named() {
    let head = hex(HEAD);
    let with = |tail: &str| [head.clone(), hex(tail)].concat();
    let cases = [
        (
            frame(0x14, &head[..11]),
            FrameError::Truncated { field: "clock" },
        ),
        // An anti-entropy count larger than the frame could hold is refused
        // before anything is allocated for it.
        (
            frame(0x18, &with("0500000000000000 02000000 ffffffff")),
            FrameError::Truncated { field: "count" },
        ),
        (
            frame(
                0x15,
                &with("0500000000000000 02000000 02000000 0100000000000000"),
            ),
            FrameError::Truncated { field: "count" },
        ),
        (
            frame(0x14, &with("00")),
            FrameError::TrailingBytes { extra: 1 },
        ),
        (
            frame(0x11, &with("0900000000000000 08")),
            FrameError::BadTag {
                field: "flags",
                value: 8,
            },
        ),
        (
            frame(0x11, &with("0900000000000000 04 1200000000000000")),
            FrameError::Truncated { field: "held" },
        ),
        (
            frame(0x13, &with("0900000000000000 05")),
            FrameError::BadTag {
                field: "entry",
                value: 5,
            },
        ),
        (
            frame(
                0x13,
                &with("0900000000000000 01 1100000000000000 02000000 05"),
            ),
            FrameError::BadTag {
                field: "entry.kind",
                value: 5,
            },
        ),
        (
            frame(
                0x13,
                &with("0900000000000000 01 1100000000000000 02000000 02 0100"),
            ),
            FrameError::Truncated {
                field: "entry.expires_at",
            },
        ),
        (
            frame(
                0x10,
                &with("0900000000000000 01000000 6b 1100000000000000 02000000 01 02"),
            ),
            FrameError::BadTag {
                field: "hint_for",
                value: 2,
            },
        ),
        // A key length far beyond the frame: refused, nothing copied.
        (
            frame(0x12, &with("0900000000000000 f0ffffff 6b")),
            FrameError::Truncated { field: "key" },
        ),
        (
            frame(
                0x13,
                &with("0900000000000000 01 1100000000000000 02000000 00 05000000 76"),
            ),
            FrameError::Truncated {
                field: "entry.value",
            },
        ),
    ];
    for (bytes, err) in cases {
        assert_eq!(decode_envelope(&bytes, MAX), Err(err), "{bytes:02x?}");
    }

    let bad_name = frame(
        0x02,
        &hex(&format!(
            "03000000 {NONCE_11} 0807060504030201 02000000 c328"
        )),
    );
    assert_eq!(
        decode_hello_reply(&bad_name, MAX),
        Err(FrameError::BadUtf8 {
            field: "cluster_name"
        })
    );
    let bad_reason = frame(0x03, &hex("01000000 ff"));
    assert_eq!(
        decode_hello_reply(&bad_reason, MAX),
        Err(FrameError::BadUtf8 { field: "reason" })
    );
    // A Hello of another version is refused on its version field, before
    // the rest of the frame arrives.
    let v2 = frame(0x01, &hex("0200 whatever comes next"));
    assert_eq!(
        decode_hello(&v2[..7], MAX),
        Err(FrameError::UnsupportedVersion(2))
    );
    let long_challenge = frame(0x04, &hex(&format!("{NONCE_22} 00")));
    assert_eq!(
        decode_challenge(&long_challenge, MAX),
        Err(FrameError::TrailingBytes { extra: 1 })
    );
    let short_proof = frame(0x05, &hex("2222"));
    assert_eq!(
        decode_proof(&short_proof, MAX),
        Err(FrameError::Truncated { field: "proof" })
    );
}

#[test]
fn errors_read_well() {
    assert_eq!(
        FrameError::TooLarge { len: 100, max: 10 }.to_string(),
        "peer frame of 100 bytes exceeds the limit of 10 bytes"
    );
    assert_eq!(
        FrameError::UnsupportedVersion(1).to_string(),
        "peer speaks protocol version 1; this node speaks 6"
    );
    assert_eq!(
        FrameError::UnexpectedType(1).to_string(),
        "unexpected peer message type 0x01"
    );
}

const CONF: &str = "\
cluster_name = dkv
replication_factor = 3
write_quorum = 2
read_quorum = 2
virtual_nodes = 128
node 2 127.0.0.1:7002
node 1 127.0.0.1:7001
node 3 127.0.0.1:7003 18003
";

#[test]
fn settings_digest_is_stable_and_canonical() {
    let conf = ClusterConf::parse(CONF).unwrap();
    let text = canonical_settings(&conf);
    assert_eq!(
        text,
        "cluster_name = dkv\nreplication_factor = 3\nwrite_quorum = 2\nread_quorum = 2\n\
         virtual_nodes = 128\nallow_weak_quorums = false\nnode 1 127.0.0.1:7001 17001\n\
         node 2 127.0.0.1:7002 17002\nnode 3 127.0.0.1:7003 18003\n"
    );
    // Golden: cross-checked with an independent MurmurHash3.
    assert_eq!(settings_digest(&conf), 0x329f_2065_d6a6_f01e);
    // The canonical text is a cluster.conf with the same digest.
    assert_eq!(
        settings_digest(&ClusterConf::parse(&text).unwrap()),
        settings_digest(&conf)
    );
}

#[test]
fn settings_digest_sees_every_shared_setting() {
    let base = settings_digest(&ClusterConf::parse(CONF).unwrap());
    let changed = [
        CONF.replace("= dkv", "= other"),
        CONF.replace("virtual_nodes = 128", "virtual_nodes = 64"),
        CONF.replace("write_quorum = 2", "write_quorum = 3"),
        CONF.replace("read_quorum = 2", "read_quorum = 3"),
        CONF.replace(
            "replication_factor = 3\nwrite_quorum = 2\nread_quorum = 2",
            "replication_factor = 2\nwrite_quorum = 2\nread_quorum = 1",
        ),
        format!("{CONF}allow_weak_quorums = true\n"),
        CONF.replace("18003", "18004"),
        CONF.replace("127.0.0.1:7003", "127.0.0.2:7003"),
        format!("{CONF}node 4 127.0.0.1:7004\n"),
    ];
    for text in changed {
        let conf = ClusterConf::parse(&text).unwrap();
        assert_ne!(settings_digest(&conf), base, "{text}");
    }
    // Order of node lines and comments do not matter.
    let reordered = format!(
        "# a comment\n{}",
        CONF.replace(
            "node 2 127.0.0.1:7002\nnode 1 127.0.0.1:7001\n",
            "node 1 127.0.0.1:7001\nnode 2 127.0.0.1:7002\n"
        )
    );
    assert_eq!(
        settings_digest(&ClusterConf::parse(&reordered).unwrap()),
        base
    );
}

fn transcript() -> Transcript {
    Transcript::new(&hello(), NodeId(3), &[0x22; NONCE_LEN])
}

#[test]
fn proofs_need_the_secret_and_fit_one_handshake_only() {
    let t = transcript();
    let proof = dialler_proof(b"s3cret", &t);
    assert!(dialler_proof_matches(b"s3cret", &t, &proof));
    assert!(!dialler_proof_matches(b"s3creT", &t, &proof));
    assert!(!dialler_proof_matches(b"", &t, &proof));
    assert!(!dialler_proof_matches(b"s3cret", &t, &proof[..31]));
    // Another nonce, another pair of nodes, another direction: no match.
    let other_nonce = Transcript::new(&hello(), NodeId(3), &[0x23; NONCE_LEN]);
    assert!(!dialler_proof_matches(b"s3cret", &other_nonce, &proof));
    let other_node = Transcript::new(&hello(), NodeId(4), &[0x22; NONCE_LEN]);
    assert!(!dialler_proof_matches(b"s3cret", &other_node, &proof));
    assert!(!listener_proof_matches(b"s3cret", &t, 7, "dkv", &proof));

    let back = listener_proof(b"s3cret", &t, 7, "dkv");
    assert!(listener_proof_matches(b"s3cret", &t, 7, "dkv", &back));
    assert!(!listener_proof_matches(b"s3cret", &t, 8, "dkv", &back));
    assert!(!listener_proof_matches(b"s3cret", &t, 7, "dkw", &back));
    assert!(!listener_proof_matches(b"other", &t, 7, "dkv", &back));
    // The tag is HMAC-SHA256 (RFC 4231 case 2 checks the primitive).
    use hmac::Mac;
    let mut rfc = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
    rfc.update(b"what do ya want for nothing?");
    assert_eq!(
        rfc.finalize().into_bytes().to_vec(),
        hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    );
}

#[test]
fn admission_wants_a_member_from_its_own_address() {
    let members = [
        (NodeId(1), "10.0.0.1:17001".parse().unwrap()),
        (NodeId(2), "10.0.0.2:17002".parse().unwrap()),
        (NodeId(3), "0.0.0.0:17003".parse().unwrap()),
    ];
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert_eq!(
        admission(&members, NodeId(1), NodeId(2), ip("10.0.0.2")),
        None
    );
    assert_eq!(
        admission(&members, NodeId(1), NodeId(2), ip("::ffff:10.0.0.2")),
        None
    );
    assert!(admission(&members, NodeId(1), NodeId(2), ip("10.0.0.9"))
        .unwrap()
        .contains("comes from 10.0.0.9"));
    assert!(admission(&members, NodeId(1), NodeId(9), ip("10.0.0.2"))
        .unwrap()
        .contains("not a member"));
    assert!(admission(&members, NodeId(1), NodeId(1), ip("10.0.0.1"))
        .unwrap()
        .contains("own"));
    assert_eq!(
        admission(&members, NodeId(1), NodeId(3), ip("10.9.9.9")),
        None
    );
}

#[test]
fn settings_are_compared_after_the_proofs() {
    assert_eq!(settings_mismatch((7, "dkv"), 7, "dkv"), None);
    assert!(settings_mismatch((7, "dkv"), 7, "x")
        .unwrap()
        .contains("cluster name `x`"));
    assert!(settings_mismatch((7, "dkv"), 1, "dkv")
        .unwrap()
        .contains("settings digest 0000000000000001"));
}
