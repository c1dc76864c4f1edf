//! Fuzz target for the RESP2 request parser (`dkv::resp`).
//!
//! Input layout: byte 0 picks the limits (defaults, or small ones that the
//! fuzzer can reach), bytes 1..3 seed the chunk sizes, the rest is the
//! stream. The stream is fed to a simulated reactor whole, then in chunks,
//! through a stateful `Parser` and through the stateless `parse_command`;
//! all three must see the same commands, `consumed` counts and errors, and
//! every call must make progress, ask for more, or fail.
//!
//! Run: `cargo +nightly fuzz run resp_parser` from the workspace root.

#![no_main]

use dkv::resp::{parse_command, Command, Limits, Parser, ProtocolError};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Event {
    Command(Command, usize),
    Error(ProtocolError),
}

fn run<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    limits: Limits,
    stateful: bool,
) -> (Vec<Event>, Option<Vec<u8>>) {
    let mut parser = Parser::new(limits);
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let result = if stateful {
                parser.parse(&buf)
            } else {
                parse_command(&buf, &limits)
            };
            match result {
                Ok(Some((command, used))) => {
                    assert!(used > 0 && used <= buf.len());
                    assert!(!command.is_empty());
                    buf.drain(..used);
                    events.push(Event::Command(command, used));
                }
                Ok(None) => break,
                Err(err) => {
                    events.push(Event::Error(err));
                    match err.skip() {
                        Some(n) => {
                            assert!(n > 0 && n <= buf.len());
                            buf.drain(..n);
                        }
                        None => return (events, None),
                    }
                }
            }
        }
    }
    (events, Some(buf))
}

fn limits(selector: u8) -> Limits {
    if selector & 1 == 0 {
        return Limits::default();
    }
    let s = usize::from(selector >> 1);
    Limits {
        max_bulk_len: 1 + (s & 0x0f) * 4,
        max_args: 1 + (s >> 4),
        max_inline_len: 4 + (s & 0x07) * 8,
        max_request_len: 16 + s * 4,
        unauthenticated: s & 0x08 != 0,
    }
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
    let limits = limits(*selector);
    let whole = run([stream], limits, true);
    let pieces = chunks(stream, u16::from_le_bytes([*a, *b]));
    assert_eq!(run(pieces.iter().copied(), limits, true), whole);
    assert_eq!(run(pieces.iter().copied(), limits, false), whole);
});
