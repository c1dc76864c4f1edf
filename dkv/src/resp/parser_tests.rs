//! Unit tests of the request parser: frames, inline quoting, limits,
//! malformed input and pipelines.

use super::*;
use ProtocolErrorKind as K;

type Args = Vec<Vec<u8>>;

fn args(list: &[&[u8]]) -> Args {
    list.iter().map(|a| a.to_vec()).collect()
}

/// Parses one command from `input` with default limits.
fn one(input: &[u8]) -> Option<(Args, usize)> {
    parse_command(input, &Limits::default())
        .unwrap()
        .map(|(c, n)| (c.to_vecs(), n))
}

fn err_with(input: &[u8], limits: Limits) -> ProtocolError {
    match parse_command(input, &limits) {
        Err(err) => err,
        other => panic!(
            "expected an error for {:?}, got {other:?}",
            input.escape_ascii()
        ),
    }
}

fn err(input: &[u8]) -> ProtocolErrorKind {
    err_with(input, Limits::default()).kind()
}

/// Feeds `input` one byte at a time to one [`Parser`], as a reactor would,
/// and collects every command.
fn bytewise(input: &[u8], limits: Limits) -> Result<Vec<Args>, ProtocolError> {
    let mut parser = Parser::new(limits);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for &byte in input {
        buf.push(byte);
        while let Some((command, used)) = parser.parse(&buf)? {
            buf.drain(..used);
            out.push(command.to_vecs());
        }
    }
    Ok(out)
}

#[test]
fn multibulk_frames() {
    let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
    assert_eq!(
        one(input),
        Some((args(&[b"SET", b"k", b"hello"]), input.len()))
    );
    // Binary-safe: CR, LF, NUL and high bytes inside a bulk.
    let input = b"*2\r\n$4\r\n\r\n\x00\xff\r\n$0\r\n\r\n";
    assert_eq!(
        one(input),
        Some((args(&[b"\r\n\x00\xff", b""]), input.len()))
    );
    // Trailing bytes belong to the next command.
    assert_eq!(one(b"*1\r\n$4\r\nPING\r\n*1"), Some((args(&[b"PING"]), 14)));
}

#[test]
fn every_proper_prefix_is_incomplete() {
    let input = b"*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n";
    for end in 0..input.len() {
        assert_eq!(one(&input[..end]), None, "prefix of {end} bytes");
    }
    let input = b"SET \"a b\" 'c'\r\n";
    for end in 0..input.len() {
        assert_eq!(one(&input[..end]), None, "prefix of {end} bytes");
    }
}

#[test]
fn inline_frames() {
    assert_eq!(one(b"PING\r\n"), Some((args(&[b"PING"]), 6)));
    assert_eq!(one(b"PING\n"), Some((args(&[b"PING"]), 5)));
    assert_eq!(
        one(b"  set k  v \r\n"),
        Some((args(&[b"set", b"k", b"v"]), 13))
    );
    assert_eq!(
        one(b"SET \"hello world\" '\\'q\\''\n"),
        Some((args(&[b"SET", b"hello world", b"'q'"]), 26))
    );
    assert_eq!(
        one(b"SET k \"\\x00\\r\\n\\\"\"\r\n"),
        Some((args(&[b"SET", b"k", b"\x00\r\n\""]), 20))
    );
    // Only the \r right before \n is part of the line ending.
    assert_eq!(one(b"a\rb\r\r\n"), Some((args(&[b"a", b"b"]), 6)));
    // A line starting with a blank is inline even if a `*` follows.
    assert_eq!(one(b" *3\n"), Some((args(&[b"*3"]), 4)));
}

#[test]
fn empty_requests_are_skipped_and_counted_into_the_next() {
    assert_eq!(
        one(b"\r\n\n   \r\n*0\r\n*-1\r\nPING\r\n"),
        Some((args(&[b"PING"]), 23))
    );
    assert_eq!(one(b"*0\r\n*-5\r\n\n"), None);
    let mut parser = Parser::new(Limits::default());
    assert_eq!(parser.parse(b"*0\r\n\n").unwrap(), None);
    let (command, used) = parser.parse(b"*0\r\n\n*1\r\n$1\r\nx\r\n").unwrap().unwrap();
    assert_eq!((command.to_vecs(), used), (args(&[b"x"]), 16));
}

#[test]
fn pipeline_of_many_commands_in_one_buffer() {
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1000 {
        let key = format!("key:{i}");
        if i % 3 == 0 {
            input.extend_from_slice(format!("GET {key}\r\n").as_bytes());
            expected.push(args(&[b"GET", key.as_bytes()]));
        } else {
            let value = vec![b'\n'; i % 7];
            let mut cmd = Vec::new();
            reply::array(&mut cmd, 3);
            for arg in [&b"SET"[..], key.as_bytes(), &value] {
                reply::bulk(&mut cmd, arg);
            }
            input.extend_from_slice(&cmd);
            expected.push(args(&[b"SET", key.as_bytes(), &value]));
        }
    }
    let mut parser = Parser::new(Limits::default());
    let mut at = 0;
    let mut got = Vec::new();
    while let Some((command, used)) = parser.parse(&input[at..]).unwrap() {
        at += used;
        got.push(command.to_vecs());
    }
    assert_eq!(at, input.len());
    assert_eq!(got, expected);
    assert_eq!(bytewise(&input, Limits::default()).unwrap(), expected);
}

#[test]
fn bad_multibulk_lengths() {
    for input in [
        &b"*abc\r\n"[..],
        b"*\r\n",
        b"*-\r\n",
        b"*-0\r\n",
        b"*+1\r\n",
        b"*01\r\n",
        b"*1 \r\n",
        b"*1\rX",
        b"*1\n",
        b"*99999999999999999999\r\n",
        b"*2147483648\r\n",
    ] {
        assert_eq!(
            err(input),
            K::InvalidMultibulkLength,
            "{:?}",
            input.escape_ascii()
        );
    }
    // A non-digit fails at once, without waiting for a CRLF.
    assert_eq!(err(b"*12a"), K::InvalidMultibulkLength);
    // Numbers that string2ll accepts but are <= 0 are empty requests.
    assert_eq!(one(b"*-9223372036854775808\r\n"), None);
    assert_eq!(err(b"*-9223372036854775809\r\n"), K::InvalidMultibulkLength);
}

#[test]
fn bad_bulk_headers() {
    assert_eq!(err(b"*1\r\n+PING\r\n"), K::ExpectedDollar(b'+'));
    assert_eq!(
        err_with(b"*2\r\n$1\r\na\r\nx", Limits::default()).to_string(),
        "Protocol error: expected '$', got 'x'"
    );
    for input in [
        &b"*1\r\n$-1\r\n"[..],
        b"*1\r\n$-5\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$\r\n",
        b"*1\r\n$01\r\n",
        b"*1\r\n$1x",
        b"*1\r\n$99999999999999999999999\r\n",
    ] {
        assert_eq!(
            err(input),
            K::InvalidBulkLength,
            "{:?}",
            input.escape_ascii()
        );
    }
}

#[test]
fn bulk_data_must_end_with_crlf() {
    assert_eq!(err(b"*1\r\n$3\r\nfooXY"), K::MissingBulkCrlf);
    assert_eq!(err(b"*1\r\n$3\r\nfoo\n\r"), K::MissingBulkCrlf);
    assert_eq!(err(b"*1\r\n$3\r\nfoo\rX"), K::MissingBulkCrlf);
    // One byte of the two is not enough to decide.
    assert_eq!(one(b"*1\r\n$3\r\nfoo\r"), None);
}

#[test]
fn bulk_length_limit() {
    let limits = Limits {
        max_bulk_len: 4,
        ..Limits::default()
    };
    assert_eq!(
        bytewise(b"*1\r\n$4\r\nabcd\r\n", limits).unwrap(),
        [args(&[b"abcd"])]
    );
    let e = err_with(b"*1\r\n$5\r\n", limits);
    assert_eq!((e.kind(), e.skip()), (K::BulkOverLimit(4), None));
    // Redis's words first, then the limit by name.
    assert_eq!(
        e.to_string(),
        "Protocol error: invalid bulk length (over --max-bulk-len, 4 bytes)"
    );
    // Refused from the header alone: the data never has to arrive.
    assert_eq!(
        err_with(b"*1\r\n$67108865\r\n", Limits::default()).kind(),
        K::BulkOverLimit(64 << 20)
    );
    assert_eq!(
        err_with(b"*1\r\n$9223372036854775807\r\n", Limits::default()).kind(),
        K::BulkOverLimit(64 << 20)
    );
    let e = err_with(b"*1\r\n$16385\r\n", Limits::unauthenticated());
    assert_eq!(e.to_string(), "Protocol error: unauthenticated bulk length");
}

#[test]
fn argument_count_limit() {
    let limits = Limits {
        max_args: 2,
        ..Limits::default()
    };
    assert_eq!(
        one(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n").map(|c| c.0.len()),
        Some(2)
    );
    assert_eq!(
        err_with(b"*3\r\n", limits).kind(),
        K::InvalidMultibulkLength
    );
    let e = err_with(b"*11\r\n", Limits::unauthenticated());
    assert_eq!(
        e.to_string(),
        "Protocol error: unauthenticated multibulk length"
    );
    // Inline lines are bounded too, and can be skipped.
    let e = err_with(b"a b c\r\nPING\r\n", limits);
    assert_eq!((e.kind(), e.skip()), (K::TooManyInlineArguments, Some(7)));
    assert_eq!(bytewise(b"a b\n", limits).unwrap(), [args(&[b"a", b"b"])]);
}

#[test]
fn inline_length_limit() {
    let limits = Limits {
        max_inline_len: 8,
        ..Limits::default()
    };
    // Exactly 8 bytes before \n is fine, \r included.
    assert_eq!(
        bytewise(b"1234567\r\n", limits).unwrap(),
        [args(&[b"1234567"])]
    );
    assert_eq!(
        bytewise(b"12345678\n", limits).unwrap(),
        [args(&[b"12345678"])]
    );
    let e = err_with(b"123456789\n", limits);
    assert_eq!((e.kind(), e.skip()), (K::TooBigInlineRequest, None));
    // Without a newline: refused as soon as the line cannot fit.
    assert_eq!(
        err_with(b"123456789", limits).kind(),
        K::TooBigInlineRequest
    );
    assert_eq!(parse_command(b"12345678", &limits), Ok(None));
    assert_eq!(
        err_with(b"123456789", limits).to_string(),
        "Protocol error: too big inline request"
    );
    let big = vec![b'a'; Limits::DEFAULT_MAX_INLINE_LEN + 1];
    assert_eq!(err(&big), K::TooBigInlineRequest);
}

#[test]
fn request_size_limit() {
    let limits = Limits {
        max_request_len: 21,
        ..Limits::default()
    };
    // 4 + 4 + 3 + 2 = 13 bytes and 4 + 5 + 10 + 2 = 21 bytes: both fit.
    assert!(parse_command(b"*1\r\n$3\r\nabc\r\n", &limits)
        .unwrap()
        .is_some());
    assert!(parse_command(b"*1\r\n$10\r\n", &limits).unwrap().is_none());
    // 4 + 5 + 11 + 2 = 22: refused at the header, before the data.
    assert_eq!(err_with(b"*1\r\n$11\r\n", limits).kind(), K::TooBigRequest);
    // Skipped empty requests count towards the next request.
    assert_eq!(
        err_with(&b"*0\r\n".repeat(6), limits).kind(),
        K::TooBigRequest
    );
    assert_eq!(parse_command(&b"\n".repeat(21), &limits), Ok(None));
    assert_eq!(err_with(&b"\n".repeat(22), limits).kind(), K::TooBigRequest);
    let mut input = b"\n".repeat(10);
    input.extend_from_slice(b"*1\r\n$5\r\n");
    assert_eq!(err_with(&input, limits).kind(), K::TooBigRequest);
}

#[test]
fn unbalanced_quotes_can_be_skipped() {
    let input = b"SET \"abc\r\nPING\r\n";
    let e = err_with(input, Limits::default());
    assert_eq!(
        e.to_string(),
        "Protocol error: unbalanced quotes in request"
    );
    assert_eq!(e.skip(), Some(10));
    assert_eq!(one(&input[10..]), Some((args(&[b"PING"]), 6)));
    assert_eq!(err(b"GET 'k'x\n"), K::UnbalancedQuotes);
    assert_eq!(err(b"GET \"k\"x\n"), K::UnbalancedQuotes);
}

#[test]
fn resumes_where_it_stopped_and_survives_contract_breaches() {
    let input = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
    let mut parser = Parser::new(Limits::default());
    for end in 0..input.len() {
        assert_eq!(parser.parse(&input[..end]), Ok(None));
    }
    let (command, used) = parser.parse(input).unwrap().unwrap();
    assert_eq!(
        (command.to_vecs(), used),
        (args(&[b"GET", b"key"]), input.len())
    );
    // A caller that shrinks the buffer behind the parser's back gets no panic.
    let mut parser = Parser::new(Limits::default());
    assert_eq!(parser.parse(&input[..20]), Ok(None));
    let _ = parser.parse(&input[..3]);
    let _ = parser.parse(b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\n");
    parser.reset();
    assert_eq!(parser.parse(input).unwrap().map(|c| c.1), Some(input.len()));
}

#[test]
fn errors_reset_the_parser_and_limits_can_change() {
    let mut parser = Parser::new(Limits::unauthenticated());
    assert_eq!(
        parser.parse(b"*12\r\n").unwrap_err().kind(),
        K::UnauthenticatedMultibulkLength
    );
    parser.set_limits(Limits::default());
    assert_eq!(parser.limits(), &Limits::default());
    let input = b"*12\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n\
                  $1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n";
    assert_eq!(parser.parse(input).unwrap().map(|c| c.0.len()), Some(12));
}
