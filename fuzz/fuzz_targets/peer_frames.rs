//! Fuzz target for the peer frame decoders (`dkv::peer`).
//!
//! Input layout: byte 0 picks the role and the limit, bytes 1..3 seed the
//! chunk sizes, the rest is the stream. The role is that of one end of a
//! connection: the accepting side (a `Hello`, a `Proof`, then envelopes),
//! the connecting side (a challenge, then a welcome, then envelopes, unless
//! refused) or a connection past its handshake (envelopes only). The stream is fed whole,
//! then in chunks; both must see the same frames and the same error, every
//! call must make progress, ask for more or fail, and every decoded frame
//! must re-encode to exactly the bytes it was decoded from.
//!
//! Run: `cargo +nightly fuzz run peer_frames` from the workspace root.

#![no_main]

use dkv::peer::{
    decode_challenge, decode_envelope, decode_hello, decode_hello_reply, decode_proof,
    encode_envelope, encode_hello, encode_hello_reply, encode_proof, Envelope, FrameError, Hello,
    HelloReply, Proof, DEFAULT_MAX_FRAME, HANDSHAKE_MAX_FRAME,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Event {
    Hello(Hello, usize),
    Proof(Proof, usize),
    Reply(HelloReply, usize),
    Envelope(Envelope, usize),
    Error(FrameError),
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Hello,
    Proof,
    Challenge,
    Welcome,
    Envelopes,
    Closed,
}

/// Decodes one frame in `phase`: the event, the bytes used (0 for an error)
/// and the next phase; `None` if the frame is incomplete.
fn step(buf: &[u8], phase: Phase, max_frame: usize) -> Option<(Event, usize, Phase)> {
    let handshake_max = max_frame.min(HANDSHAKE_MAX_FRAME);
    let mut wire = Vec::new();
    let (event, used, next) = match phase {
        Phase::Hello => match decode_hello(buf, handshake_max) {
            Ok(Some((hello, used))) => {
                encode_hello(&hello, &mut wire).unwrap();
                (Event::Hello(hello, used), used, Phase::Proof)
            }
            Ok(None) => return None,
            Err(err) => (Event::Error(err), 0, Phase::Closed),
        },
        Phase::Proof => match decode_proof(buf, handshake_max) {
            Ok(Some((proof, used))) => {
                encode_proof(&proof, &mut wire).unwrap();
                (Event::Proof(proof, used), used, Phase::Envelopes)
            }
            Ok(None) => return None,
            Err(err) => (Event::Error(err), 0, Phase::Closed),
        },
        Phase::Challenge | Phase::Welcome => {
            let decoded = if phase == Phase::Challenge {
                decode_challenge(buf, handshake_max)
            } else {
                decode_hello_reply(buf, handshake_max)
            };
            match decoded {
                Ok(Some((reply, used))) => {
                    encode_hello_reply(&reply, &mut wire).unwrap();
                    let next = match reply {
                        HelloReply::Challenge { .. } => Phase::Welcome,
                        HelloReply::Welcome { .. } => Phase::Envelopes,
                        HelloReply::Refused { .. } => Phase::Closed,
                    };
                    (Event::Reply(reply, used), used, next)
                }
                Ok(None) => return None,
                Err(err) => (Event::Error(err), 0, Phase::Closed),
            }
        }
        Phase::Envelopes => match decode_envelope(buf, max_frame) {
            Ok(Some((envelope, used))) => {
                encode_envelope(&envelope, &mut wire).unwrap();
                (Event::Envelope(envelope, used), used, Phase::Envelopes)
            }
            Ok(None) => return None,
            Err(err) => (Event::Error(err), 0, Phase::Closed),
        },
        Phase::Closed => return None,
    };
    if used > 0 {
        assert!(used <= buf.len());
        assert_eq!(
            wire,
            buf[..used],
            "decoded frame does not re-encode to its bytes"
        );
    }
    Some((event, used, next))
}

fn run<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    start: Phase,
    max_frame: usize,
) -> Vec<Event> {
    let mut phase = start;
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some((event, used, next)) = step(&buf, phase, max_frame) {
            buf.drain(..used);
            events.push(event);
            phase = next;
        }
        if phase == Phase::Closed {
            break;
        }
    }
    events
}

/// Chunk sizes from a xorshift seeded by `seed`: mostly small, sometimes large.
fn chunks(stream: &[u8], seed: u16) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 0x1_0000;
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = match state % 8 {
            0 => 1 + (state >> 8) as usize % 256,
            _ => 1 + (state >> 8) as usize % 8,
        };
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [selector, a, b, stream @ ..] = data else {
        return;
    };
    let start = match selector % 3 {
        0 => Phase::Hello,
        1 => Phase::Challenge,
        _ => Phase::Envelopes,
    };
    // Half the time a small limit the fuzzer can reach: 0 to 252 bytes.
    let max_frame = match selector & 0x80 {
        0 => DEFAULT_MAX_FRAME,
        _ => usize::from(selector & 0x7f) * 2,
    };
    let whole = run([stream], start, max_frame);
    let pieces = chunks(stream, u16::from_le_bytes([*a, *b]));
    assert_eq!(run(pieces.iter().copied(), start, max_frame), whole);
});
