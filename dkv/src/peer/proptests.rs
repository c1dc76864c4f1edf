//! Property tests: `decode(encode(x)) == x` for every message; a stream of
//! frames split anywhere decodes the same; random and mutated bytes never
//! panic, decode the same however they are split, and whatever decodes
//! re-encodes to exactly the bytes it came from.

use proptest::prelude::*;

use super::*;
use crate::counter::{CounterError, Delta};
use crate::engine::Entry;
use crate::version::{NodeId, Timestamp, Version};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    (
        any::<u64>(),
        any::<u32>(),
        prop::option::of(bytes(48)),
        prop::option::of(any::<u64>()),
        any::<bool>(),
    )
        .prop_map(|(ts, node, value, expires_at, counter)| Entry {
            version: Version::new(Timestamp(ts), NodeId(node)),
            expires_at: value.as_ref().and(expires_at),
            counter: value.is_some() && counter,
            value,
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u64>(),
            bytes(24),
            arb_entry(),
            prop::option::of(any::<u32>())
        )
            .prop_map(|(request, key, entry, hint_for)| Message::Replicate {
                request: RequestId(request),
                write: SharedWrite::new(&key, entry.as_ref()),
                hint_for: hint_for.map(NodeId),
            }),
        (
            any::<u64>(),
            any::<bool>(),
            any::<bool>(),
            prop::option::of((any::<u64>(), any::<u32>()))
        )
            .prop_map(|(request, ok, was_live, held)| Message::ReplicateAck {
                request: RequestId(request),
                ok,
                was_live,
                held: held.map(|(ts, node)| Version::new(Timestamp(ts), NodeId(node))),
            }),
        (any::<u64>(), bytes(24)).prop_map(|(request, key)| Message::Read {
            request: RequestId(request),
            key: key.into(),
        }),
        (any::<u64>(), prop::option::of(arb_entry())).prop_map(|(request, entry)| {
            Message::ReadReply {
                request: RequestId(request),
                entry,
            }
        }),
        Just(Message::Heartbeat),
        (
            any::<u64>(),
            any::<u32>(),
            prop::collection::vec(any::<u64>(), 0..33)
        )
            .prop_map(|(exchange, partition, branches)| Message::AaeBranches {
                exchange,
                partition,
                branches,
            }),
        (
            any::<u64>(),
            any::<u32>(),
            prop::collection::vec((any::<u16>(), any::<u64>()), 0..40)
        )
            .prop_map(|(exchange, partition, leaves)| Message::AaeLeaves {
                exchange,
                partition,
                leaves,
            }),
        (
            any::<u64>(),
            any::<u32>(),
            prop::collection::vec(any::<u16>(), 0..40)
        )
            .prop_map(|(exchange, partition, segments)| Message::AaeKeysWanted {
                exchange,
                partition,
                segments,
            }),
        (
            any::<u64>(),
            any::<u32>(),
            prop::collection::vec((bytes(12), any::<u64>(), any::<u32>()), 0..8)
        )
            .prop_map(|(exchange, partition, keys)| Message::AaeKeys {
                exchange,
                partition,
                keys: keys
                    .into_iter()
                    .map(|(k, ts, node)| (k, Version::new(Timestamp(ts), NodeId(node))))
                    .collect(),
            }),
        (
            any::<u64>(),
            bytes(24),
            prop_oneof![
                any::<i64>().prop_map(Delta::Int),
                (-1e300f64..1e300).prop_map(Delta::Float)
            ]
        )
            .prop_map(|(request, key, delta)| Message::CounterAdd {
                request: RequestId(request),
                key,
                delta,
            }),
        (any::<u64>(), arb_entry(), 1u8..=7).prop_map(|(request, entry, code)| {
            Message::CounterAdded {
                request: RequestId(request),
                // Code 7 stands for success.
                result: CounterError::from_code(code).map_or(Ok(entry), Err),
            }
        }),
    ]
}

fn arb_envelope() -> impl Strategy<Value = Envelope> {
    (any::<u32>(), any::<u64>(), arb_message()).prop_map(|(from, clock, message)| Envelope {
        from: NodeId(from),
        clock: Timestamp(clock),
        message,
    })
}

fn arb_hello() -> impl Strategy<Value = Hello> {
    (any::<u32>(), any::<u32>(), any::<[u8; NONCE_LEN]>()).prop_map(|(node, to, nonce)| Hello {
        protocol_version: PROTOCOL_VERSION,
        node_id: NodeId(node),
        to: NodeId(to),
        nonce,
    })
}

fn arb_reply() -> impl Strategy<Value = HelloReply> {
    prop_oneof![
        (
            any::<u32>(),
            any::<[u8; PROOF_LEN]>(),
            any::<u64>(),
            ".{0,12}"
        )
            .prop_map(
                |(id, proof, settings_digest, cluster_name)| HelloReply::Welcome {
                    node_id: NodeId(id),
                    proof,
                    settings_digest,
                    cluster_name,
                }
            ),
        ".{0,24}".prop_map(|reason| HelloReply::Refused { reason }),
    ]
}

fn encode_all(envelopes: &[Envelope]) -> Vec<u8> {
    let mut wire = Vec::new();
    for envelope in envelopes {
        encode_envelope(envelope, &mut wire).unwrap();
    }
    wire
}

/// `stream` cut into pieces of the given sizes, the rest in one piece.
fn chunks<'a>(stream: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    for &size in sizes {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out.push(rest);
    out
}

type Decoded<T> = Result<(T, usize), FrameError>;

/// What a reactor does: append each chunk to a read buffer, decode every
/// whole frame, drop its bytes; stop at the first error (fatal). Checks
/// that every decoded frame re-encodes to exactly the bytes it used.
/// Returns the events and the bytes left over.
fn run<T>(
    pieces: &[&[u8]],
    decode: impl Fn(&[u8]) -> Result<Option<(T, usize)>, FrameError>,
    encode: impl Fn(&T) -> Vec<u8>,
) -> (Vec<Decoded<T>>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decode(&buf) {
                Ok(Some((item, used))) => {
                    assert!(used > LEN_PREFIX && used <= buf.len());
                    assert_eq!(encode(&item), buf[..used], "not canonical");
                    buf.drain(..used);
                    events.push(Ok((item, used)));
                }
                Ok(None) => break,
                Err(err) => {
                    events.push(Err(err));
                    return (events, buf);
                }
            }
        }
    }
    (events, buf)
}

fn reencode_envelope(envelope: &Envelope) -> Vec<u8> {
    let mut out = Vec::new();
    encode_envelope(envelope, &mut out).unwrap();
    out
}

fn reencode_hello(hello: &Hello) -> Vec<u8> {
    let mut out = Vec::new();
    encode_hello(hello, &mut out).unwrap();
    out
}

fn reencode_reply(reply: &HelloReply) -> Vec<u8> {
    let mut out = Vec::new();
    encode_hello_reply(reply, &mut out).unwrap();
    out
}

fn reencode_proof(proof: &Proof) -> Vec<u8> {
    let mut out = Vec::new();
    encode_proof(proof, &mut out).unwrap();
    out
}

/// Runs every decoder over `stream` whole and in `sizes` pieces, with
/// `max_frame`; each must give the same events both ways, and the same
/// bytes left over unless it stopped at an error (a split stream stops
/// before the rest of it arrives).
fn same_however_split(stream: &[u8], sizes: &[usize], max_frame: usize) {
    fn check<T: PartialEq + std::fmt::Debug>(
        split: (Vec<Decoded<T>>, Vec<u8>),
        whole: (Vec<Decoded<T>>, Vec<u8>),
    ) {
        assert_eq!(split.0, whole.0);
        if !matches!(whole.0.last(), Some(Err(_))) {
            assert_eq!(split.1, whole.1);
        }
    }
    let pieces = chunks(stream, sizes);
    let envelope = |b: &[u8]| decode_envelope(b, max_frame);
    let hello = |b: &[u8]| decode_hello(b, max_frame);
    let reply = |b: &[u8]| decode_hello_reply(b, max_frame);
    let challenge = |b: &[u8]| decode_challenge(b, max_frame);
    let proof = |b: &[u8]| decode_proof(b, max_frame);
    check(
        run(&pieces, envelope, reencode_envelope),
        run(&[stream], envelope, reencode_envelope),
    );
    check(
        run(&pieces, hello, reencode_hello),
        run(&[stream], hello, reencode_hello),
    );
    check(
        run(&pieces, reply, reencode_reply),
        run(&[stream], reply, reencode_reply),
    );
    check(
        run(&pieces, challenge, reencode_reply),
        run(&[stream], challenge, reencode_reply),
    );
    check(
        run(&pieces, proof, reencode_proof),
        run(&[stream], proof, reencode_proof),
    );
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(u8),
    Nudge(i8),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<u8>().prop_map(Mutation::Set),
        prop_oneof![-3..0i8, 1..4i8].prop_map(Mutation::Nudge),
    ]
}

fn arb_max_frame() -> impl Strategy<Value = usize> {
    prop_oneof![Just(DEFAULT_MAX_FRAME), 0..128usize]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn envelopes_round_trip(envelope in arb_envelope()) {
        let wire = reencode_envelope(&envelope);
        prop_assert_eq!(wire.len() as u64, LEN_PREFIX as u64 + envelope_frame_len(&envelope));
        prop_assert_eq!(decode_envelope(&wire, DEFAULT_MAX_FRAME), Ok(Some((envelope, wire.len()))));
    }

    #[test]
    fn handshake_frames_round_trip(
        hello in arb_hello(),
        reply in arb_reply(),
        nonce in any::<[u8; NONCE_LEN]>(),
    ) {
        let wire = reencode_hello(&hello);
        prop_assert_eq!(decode_hello(&wire, HANDSHAKE_MAX_FRAME), Ok(Some((hello, wire.len()))));
        let proof = Proof { proof: nonce };
        let wire = reencode_proof(&proof);
        prop_assert_eq!(decode_proof(&wire, HANDSHAKE_MAX_FRAME), Ok(Some((proof, wire.len()))));
        let challenge = HelloReply::Challenge { nonce };
        let wire = reencode_reply(&challenge);
        prop_assert_eq!(decode_challenge(&wire, HANDSHAKE_MAX_FRAME), Ok(Some((challenge, wire.len()))));
        let wire = reencode_reply(&reply);
        prop_assert_eq!(decode_hello_reply(&wire, HANDSHAKE_MAX_FRAME), Ok(Some((reply, wire.len()))));
    }

    #[test]
    fn a_stream_split_anywhere_decodes_the_same(
        envelopes in prop::collection::vec(arb_envelope(), 0..8),
        sizes in prop::collection::vec(0..40usize, 0..24),
    ) {
        let wire = encode_all(&envelopes);
        let pieces = chunks(&wire, &sizes);
        let (events, rest) = run(&pieces, |b| decode_envelope(b, DEFAULT_MAX_FRAME), reencode_envelope);
        let decoded: Vec<Envelope> = events.into_iter().map(|e| e.map(|(x, _)| x)).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded, envelopes);
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn random_bytes_never_panic(
        stream in bytes(256),
        sizes in prop::collection::vec(0..16usize, 0..32),
        max_frame in arb_max_frame(),
    ) {
        same_however_split(&stream, &sizes, max_frame);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn mutated_frames_never_panic(
        envelopes in prop::collection::vec(arb_envelope(), 1..4),
        hello in arb_hello(),
        lead in 0..3u8,
        mutations in prop::collection::vec((any::<prop::sample::Index>(), arb_mutation()), 0..4),
        cut in any::<prop::sample::Index>(),
        sizes in prop::collection::vec(0..24usize, 0..16),
        max_frame in arb_max_frame(),
    ) {
        // Valid frames (a hello first, sometimes), then a few bytes changed
        // and the tail cut somewhere: exercises every field's checks. A
        // nudged length field makes a frame or field overlong or short.
        let mut wire = match lead {
            0 => reencode_hello(&hello),
            1 => reencode_reply(&HelloReply::Refused { reason: format!("{hello:?}") }),
            _ => Vec::new(),
        };
        wire.extend(encode_all(&envelopes));
        for (at, mutation) in mutations {
            let at = at.index(wire.len());
            wire[at] = match mutation {
                Mutation::Set(byte) => byte,
                Mutation::Nudge(delta) => wire[at].wrapping_add_signed(delta),
            };
        }
        wire.truncate(cut.index(wire.len() + 1));
        same_however_split(&wire, &sizes, max_frame);
    }
}
