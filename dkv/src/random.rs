//! Random bytes from the kernel (`getrandom(2)`): the handshake's nonces
//! and the cluster secrets dkv generates when the operator gives none.
//! Nothing here is seeded or deterministic; the simulator never calls it.

use std::fmt::Write as _;

/// Fills `buf` from the kernel's CSPRNG. Blocks only until the kernel's
/// pool is initialised at boot; retries on interruption.
///
/// # Panics
///
/// If `getrandom(2)` itself fails for another reason (a kernel without it),
/// since no handshake or generated secret may go on with predictable
/// bytes.
pub fn fill(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: getrandom writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let error = std::io::Error::last_os_error();
            assert!(
                error.kind() == std::io::ErrorKind::Interrupted,
                "getrandom failed: {error}"
            );
            continue;
        }
        filled += n as usize;
    }
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    fill(&mut buf);
    buf
}

/// A fresh 256-bit secret as 64 lowercase hex digits, for a cluster whose
/// operator set none (`--dev`, the C ABI's and Python's local clusters).
pub fn secret_hex() -> String {
    let mut text = String::with_capacity(64);
    for byte in bytes::<32>() {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The cluster secret of every node a program starts in its own process
/// without one (the C ABI, Python): random, made up once per process, so
/// the nodes it starts find each other and nothing outside the process can
/// join them.
pub fn process_secret() -> String {
    static SECRET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SECRET.get_or_init(secret_hex).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_64_hex_digits_and_differ() {
        let (a, b) = (secret_hex(), secret_hex());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(process_secret(), process_secret());
        assert_eq!(process_secret().len(), 64);
    }
}
