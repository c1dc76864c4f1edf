//! Redis-style glob matching with `*` and `?`, enough for `CONFIG GET`
//! patterns, in linear time: a pattern of many stars cannot make it
//! backtrack exponentially.

/// Whether `text` matches `pattern`.
pub(crate) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
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
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_redis() {
        assert!(glob_match(b"save", b"save"));
        assert!(glob_match(b"*", b"appendonly"));
        assert!(glob_match(b"append*", b"appendfsync"));
        assert!(glob_match(b"s?ve", b"save"));
        assert!(!glob_match(b"save", b"saves"));
        assert!(!glob_match(b"x*", b"save"));
        assert!(glob_match(b"*a*e*", b"save"));
        assert!(!glob_match(
            &[b'*'; 5000]
                .iter()
                .chain(b"x")
                .copied()
                .collect::<Vec<u8>>(),
            b"appendonly-appendonly"
        ));
    }
}
