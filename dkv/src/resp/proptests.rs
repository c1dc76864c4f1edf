//! Property tests: a pipeline split anywhere parses the same; random bytes
//! never panic and give the same results however they are split.

use proptest::prelude::*;

use super::*;

/// What a reactor sees: each command with its `consumed`, or an error.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Command(Command, usize),
    Error(ProtocolError),
}

/// Simulates a reactor: appends each chunk to a read buffer, parses every
/// complete command, drains the consumed bytes, skips recoverable errors and
/// stops at a fatal one. Checks on every call that the parser made progress
/// (consumed within the buffer) or asked for more. Returns the events and,
/// unless stopped by a fatal error, the bytes left over.
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
            let result = match stateful {
                true => parser.parse(&buf),
                false => parse_command(&buf, &limits),
            };
            match result {
                Ok(Some((command, used))) => {
                    assert!(
                        used > 0 && used <= buf.len(),
                        "consumed {used} of {}",
                        buf.len()
                    );
                    assert!(!command.is_empty());
                    buf.drain(..used);
                    events.push(Event::Command(command, used));
                }
                Ok(None) => break,
                Err(err) => {
                    events.push(Event::Error(err));
                    match err.skip() {
                        Some(n) => {
                            assert!(n > 0 && n <= buf.len(), "skip {n} of {}", buf.len());
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

/// Cuts `input` at the given sizes (cycled), each at least 1.
fn split<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = input;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
        i += 1;
    }
    chunks
}

/// How one argument of an inline line is written.
#[derive(Debug, Clone, Copy)]
enum Quote {
    Plain,
    Double,
    Single,
}

/// `arg` as an inline token: plain when it can be, else quoted.
fn inline_token(arg: &[u8], quote: Quote, first: bool, out: &mut Vec<u8>) {
    let special = |b: u8| {
        matches!(
            b,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0 | b'"' | b'\''
        )
    };
    let starts_request = first && arg.first() == Some(&b'*');
    let plain_ok = !(arg.is_empty() || starts_request || arg.iter().any(|&b| special(b)));
    let single_ok = !arg.iter().any(|&b| matches!(b, 0 | b'\n' | b'\\'));
    match quote {
        Quote::Plain if plain_ok => out.extend_from_slice(arg),
        Quote::Single if single_ok => {
            out.push(b'\'');
            for &b in arg {
                if b == b'\'' {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.push(b'\'');
        }
        _ => {
            out.push(b'"');
            for &b in arg {
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    0x20..=0x7e => out.push(b),
                    _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                }
            }
            out.push(b'"');
        }
    }
}

/// One request in a generated pipeline.
#[derive(Debug, Clone)]
struct Request {
    args: Vec<Vec<u8>>,
    inline: bool,
    quotes: Vec<Quote>,
    blank: Vec<u8>,
    crlf: bool,
    empty_before: u8,
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..24),
        proptest::collection::vec(prop::sample::select(b"ab*$\r\n\"' \\x0\t".to_vec()), 0..12),
        "[a-zA-Z0-9:_-]{1,10}".prop_map(String::into_bytes),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        proptest::collection::vec(arg(), 1..6),
        any::<bool>(),
        proptest::collection::vec(
            prop_oneof![Just(Quote::Plain), Just(Quote::Double), Just(Quote::Single)],
            6,
        ),
        prop::sample::select(vec![&b" "[..], b"  ", b"\t", b" \t "]),
        any::<bool>(),
        0u8..6,
    )
        .prop_map(
            |(args, inline, quotes, blank, crlf, empty_before)| Request {
                args,
                inline,
                quotes,
                blank: blank.to_vec(),
                crlf,
                empty_before,
            },
        )
}

/// Encodes `requests` as one pipeline, with empty requests in between.
fn encode(requests: &[Request]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in requests {
        out.extend_from_slice(match r.empty_before {
            1 => &b"\r\n"[..],
            2 => b"\n",
            3 => b" \t \r\n",
            4 => b"*0\r\n",
            5 => b"*-1\r\n",
            _ => b"",
        });
        if r.inline {
            for (i, arg) in r.args.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(&r.blank);
                }
                let quote = r.quotes.get(i).copied().unwrap_or(Quote::Double);
                inline_token(arg, quote, i == 0, &mut out);
            }
            out.extend_from_slice(if r.crlf { b"\r\n" } else { b"\n" });
        } else {
            reply::array(&mut out, r.args.len());
            for arg in &r.args {
                reply::bulk(&mut out, arg);
            }
        }
    }
    out
}

fn commands(events: &[Event]) -> Vec<Vec<Vec<u8>>> {
    events
        .iter()
        .map(|e| match e {
            Event::Command(c, _) => c.to_vecs(),
            Event::Error(err) => panic!("unexpected error {err}"),
        })
        .collect()
}

/// Small limits, so that random bytes hit every limit.
fn small_limits() -> impl Strategy<Value = Limits> {
    (
        1usize..64,
        1usize..8,
        1usize..64,
        1usize..256,
        any::<bool>(),
    )
        .prop_map(
            |(max_bulk_len, max_args, max_inline_len, max_request_len, unauthenticated)| Limits {
                max_bulk_len,
                max_args,
                max_inline_len,
                max_request_len,
                unauthenticated,
            },
        )
}

/// Random bytes biased towards the protocol's own: single bytes and whole
/// fragments (headers, CRLFs, quotes), so that every branch is reached.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        3 => prop::sample::select(b"*$-0123456789\r\n \"'\\x".to_vec()).prop_map(|b| vec![b]),
        1 => any::<u8>().prop_map(|b| vec![b]),
        2 => prop::sample::select(vec![
            &b"*1\r\n"[..], b"*2\r\n", b"*3\r\n", b"*0\r\n", b"*-1\r\n", b"$0\r\n",
            b"$1\r\n", b"$3\r\n", b"$-1\r\n", b"$10\r\n", b"\r\n", b"abc", b"PING\r\n",
            b"\"a b\" ", b"'c\\'d' ", b"\\x41",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    proptest::collection::vec(fragment, 0..120).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_split_of_a_pipeline_parses_the_same(
        requests in proptest::collection::vec(request(), 1..16),
        sizes in proptest::collection::vec(1usize..40, 1..8),
    ) {
        let input = encode(&requests);
        let expected: Vec<Vec<Vec<u8>>> = requests.iter().map(|r| r.args.clone()).collect();
        let (whole, left) = run([&input[..]], Limits::default(), true);
        prop_assert_eq!(commands(&whole), expected);
        prop_assert_eq!(left, Some(Vec::new()));
        let chunks = split(&input, &sizes);
        prop_assert_eq!(&run(chunks.iter().copied(), Limits::default(), true), &(whole.clone(), Some(Vec::new())));
        prop_assert_eq!(&run(chunks.iter().copied(), Limits::default(), false), &(whole, Some(Vec::new())));
    }

    #[test]
    fn one_byte_at_a_time_parses_the_same(requests in proptest::collection::vec(request(), 1..6)) {
        let input = encode(&requests);
        let expected: Vec<Vec<Vec<u8>>> = requests.iter().map(|r| r.args.clone()).collect();
        let (events, left) = run(input.chunks(1), Limits::default(), true);
        prop_assert_eq!(commands(&events), expected);
        prop_assert_eq!(left, Some(Vec::new()));
    }

    #[test]
    fn random_bytes_never_panic_and_split_the_same(
        input in noise(),
        sizes in proptest::collection::vec(1usize..20, 1..6),
        limits in small_limits(),
    ) {
        let whole = run([&input[..]], limits, true);
        let chunks = split(&input, &sizes);
        prop_assert_eq!(&run(chunks.iter().copied(), limits, true), &whole);
        prop_assert_eq!(&run(chunks.iter().copied(), limits, false), &whole);
        let defaults = run([&input[..]], Limits::default(), true);
        prop_assert_eq!(&run(input.chunks(1), Limits::default(), true), &defaults);
        // One byte at a time never finds a whole request at its start, so
        // only the state machine parses; whole, the one-pass path does.
        prop_assert_eq!(&run(input.chunks(1), limits, true), &whole);
    }

    #[test]
    fn whole_requests_parse_alike_in_one_pass_and_byte_by_byte(
        requests in proptest::collection::vec(request(), 1..8),
        limits in small_limits(),
    ) {
        let input = encode(&requests);
        let whole = run([&input[..]], limits, true);
        prop_assert_eq!(&run(input.chunks(1), limits, true), &whole);
    }
}
