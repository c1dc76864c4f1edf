//! Splitting an inline request line into arguments, as Redis's
//! `sdssplitargs` does, byte for byte.
//!
//! Rules (from `sds.c`): arguments are separated by blanks (space, `\t`,
//! `\n`, `\v`, `\f`, `\r` before an argument; space, `\t`, `\n`, `\r` end
//! one). `"..."` takes the escapes `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and
//! `\<any>` for that byte; `'...'` takes only `\'`. A quote may open in the
//! middle of an argument (`a"b c"` is `ab c`), but a closing quote must be
//! followed by a blank or the end of the line, else the quotes are
//! unbalanced. The line is a C string to Redis: a NUL byte ends it.

use super::command::Command;

/// `isspace` in the C locale.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The arguments of `line` (without its `\r\n`), or `None` when its quotes
/// are unbalanced. An empty or blank line gives an empty command.
pub(crate) fn split_args(line: &[u8]) -> Option<Command> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => line.get(..nul).unwrap_or(line),
        None => line,
    };
    // The byte at `i`, or 0 past the end: the C string's terminator.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut command = Command::with_capacity(4, line.len());
    let mut p = 0;
    loop {
        while is_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Some(command);
        }
        let (mut in_double, mut in_single, mut done) = (false, false, false);
        while !done {
            let c = at(p);
            if in_double {
                let hex = (hex_value(at(p + 2)), hex_value(at(p + 3)));
                if let (b'\\', b'x', (Some(high), Some(low))) = (c, at(p + 1), hex) {
                    command.push_byte(high * 16 + low);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    command.push_byte(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    command.push_byte(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    command.push_byte(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    command.push_byte(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => command.push_byte(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        command.end_arg();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Option<Vec<Vec<u8>>> {
        split_args(line).map(|c| c.to_vecs())
    }

    fn args(list: &[&[u8]]) -> Option<Vec<Vec<u8>>> {
        Some(list.iter().map(|a| a.to_vec()).collect())
    }

    #[test]
    fn plain_words_and_blanks() {
        assert_eq!(split(b"SET k v"), args(&[b"SET", b"k", b"v"]));
        assert_eq!(split(b"  \t GET\t\tk  "), args(&[b"GET", b"k"]));
        assert_eq!(split(b""), args(&[]));
        assert_eq!(split(b" \x0b\x0c "), args(&[]));
        // \v and \f are skipped before an argument but do not end one.
        assert_eq!(split(b"a\x0bb c"), args(&[b"a\x0bb", b"c"]));
        // An interior \r separates, as in Redis.
        assert_eq!(split(b"a\rb"), args(&[b"a", b"b"]));
        assert_eq!(split(b"caf\xc3\xa9 \xff"), args(&[b"caf\xc3\xa9", b"\xff"]));
    }

    #[test]
    fn double_quotes_and_escapes() {
        assert_eq!(split(br#"SET "a b" "c""#), args(&[b"SET", b"a b", b"c"]));
        assert_eq!(split(br#""" x"#), args(&[b"", b"x"]));
        assert_eq!(
            split(br#""\x00\xFf\x4a\n\r\t\b\a\"\\\q""#),
            args(&[b"\x00\xff\x4a\n\r\t\x08\x07\"\\q"])
        );
        // An incomplete \x escape is the escape of 'x' itself.
        assert_eq!(split(br#""\x4""#), args(&[b"x4"]));
        assert_eq!(split(br#""\xzz""#), args(&[b"xzz"]));
        // A quote may open mid-argument.
        assert_eq!(split(br#"ab"c d" e"#), args(&[b"abc d", b"e"]));
    }

    #[test]
    fn single_quotes() {
        assert_eq!(split(br"'a b' 'it\'s'"), args(&[b"a b", b"it's"]));
        assert_eq!(split(br"'\n\x41'"), args(&[br"\n\x41"]));
        assert_eq!(split(b"''"), args(&[b""]));
    }

    #[test]
    fn unbalanced_quotes() {
        assert_eq!(split(br#"SET "abc"#), None);
        assert_eq!(split(br#"SET 'abc"#), None);
        assert_eq!(split(br#""abc"def"#), None);
        assert_eq!(split(br"'abc'def"), None);
        assert_eq!(split(br#""abc\"#), None);
        assert_eq!(split(br#"""#), None);
        // A closing quote followed by a blank or the end is fine.
        assert_eq!(split(b"\"a\"\tb"), args(&[b"a", b"b"]));
    }

    #[test]
    fn nul_ends_the_line_like_a_c_string() {
        assert_eq!(split(b"GET k\x00 ignored"), args(&[b"GET", b"k"]));
        assert_eq!(split(b"\"open\x00\""), None);
    }
}
