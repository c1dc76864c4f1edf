//! Redis-style glob matching (`KEYS`, `SCAN ... MATCH`, `CONFIG GET`):
//! `*`, `?`, `[abc]`, `[a-z]`, `[^...]` and `\` escapes, as Redis's
//! `stringmatchlen`, in time linear in pattern × text: a pattern of many
//! stars cannot make it backtrack exponentially, and nothing recurses.

/// One unit of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Star,
    Any,
    Byte(u8),
    /// A class: the ranges it lists (single bytes as `(b, b)`), negated.
    Class {
        ranges: Vec<(u8, u8)>,
        negated: bool,
    },
}

impl Token {
    fn matches(&self, byte: u8) -> bool {
        match self {
            Token::Star | Token::Any => true,
            Token::Byte(b) => *b == byte,
            Token::Class { ranges, negated } => {
                ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&byte)) != *negated
            }
        }
    }
}

/// A parsed pattern, to match many texts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<Token>);

impl Pattern {
    /// Parses `pattern` as Redis reads one (an unclosed `[` runs to the
    /// end; a trailing `\` is a literal backslash).
    pub fn new(pattern: &[u8]) -> Pattern {
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < pattern.len() {
            let c = pattern[i];
            i += 1;
            tokens.push(match c {
                b'*' => {
                    if tokens.last() == Some(&Token::Star) {
                        continue;
                    }
                    Token::Star
                }
                b'?' => Token::Any,
                b'\\' if i < pattern.len() => {
                    i += 1;
                    Token::Byte(pattern[i - 1])
                }
                b'[' => {
                    let negated = pattern.get(i) == Some(&b'^');
                    i += usize::from(negated);
                    let mut ranges = Vec::new();
                    while i < pattern.len() && pattern[i] != b']' {
                        let lo = if pattern[i] == b'\\' && i + 1 < pattern.len() {
                            i += 1;
                            pattern[i]
                        } else {
                            pattern[i]
                        };
                        if pattern.get(i + 1) == Some(&b'-')
                            && i + 2 < pattern.len()
                            && pattern[i + 2] != b']'
                        {
                            let hi = pattern[i + 2];
                            ranges.push((lo.min(hi), lo.max(hi)));
                            i += 3;
                        } else {
                            ranges.push((lo, lo));
                            i += 1;
                        }
                    }
                    i += 1; // the `]`
                    Token::Class { ranges, negated }
                }
                other => Token::Byte(other),
            });
        }
        Pattern(tokens)
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &[u8]) -> bool {
        let tokens = &self.0;
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match tokens.get(p) {
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(token) if token.matches(text[t]) => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((star_p, star_t)) => {
                        p = star_p + 1;
                        t = star_t + 1;
                        star = Some((star_p, star_t + 1));
                    }
                    None => return false,
                },
            }
        }
        tokens[p.min(tokens.len())..]
            .iter()
            .all(|token| *token == Token::Star)
    }

    /// Whether every text matches (`*`): a scan need not test each key.
    pub fn matches_everything(&self) -> bool {
        self.0 == [Token::Star]
    }
}

/// Whether `text` matches `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    Pattern::new(pattern).matches(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_redis() {
        assert!(glob_match(b"save", b"save"));
        assert!(glob_match(b"*", b"appendonly"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"append*", b"appendfsync"));
        assert!(glob_match(b"s?ve", b"save"));
        assert!(!glob_match(b"save", b"saves"));
        assert!(!glob_match(b"x*", b"save"));
        assert!(glob_match(b"*a*e*", b"save"));
        assert!(glob_match(b"h[ae]llo", b"hallo"));
        assert!(!glob_match(b"h[ae]llo", b"hillo"));
        assert!(glob_match(b"h[^e]llo", b"hallo"));
        assert!(!glob_match(b"h[^e]llo", b"hello"));
        assert!(glob_match(b"h[a-b]llo", b"hbllo"));
        assert!(glob_match(b"h[b-a]llo", b"hallo"));
        assert!(glob_match(b"h\\*llo", b"h*llo"));
        assert!(!glob_match(b"h\\*llo", b"hello"));
        assert!(glob_match(b"session:*", b"session:abc"));
        assert!(!glob_match(
            &[b'*'; 5000]
                .iter()
                .chain(b"x")
                .copied()
                .collect::<Vec<u8>>(),
            b"appendonly-appendonly"
        ));
        assert!(Pattern::new(b"**").matches_everything());
        assert!(!Pattern::new(b"a*").matches_everything());
    }
}
