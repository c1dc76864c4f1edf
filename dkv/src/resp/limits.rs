//! [`Limits`]: the bounds a request must respect before the parser buffers it.
//!
//! Every limit is checked as soon as the bytes that decide it have arrived
//! (a header's declared length, the end of an inline line), so a connection
//! never holds more than about `max_request_len + max_inline_len` bytes of
//! one unfinished request, whatever a client declares.

/// Bounds on one request. `Copy`, so a connection can switch between
/// [`Limits::default`] and [`Limits::unauthenticated`] after `AUTH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (`$<len>`) accepted: the one bound on a key or a
    /// value, which the WAL, snapshots and peer frames are sized from.
    /// Default 64 MiB, at most [`Limits::MAX_BULK_LEN_CEILING`] (Redis's
    /// `proto-max-bulk-len` is 512 MiB, far more than a KV value needs).
    pub max_bulk_len: usize,
    /// Most arguments in one request, the command name included. Default
    /// 1,048,576 (Redis allows up to `INT_MAX`, bounded only by its query
    /// buffer limit). Values above `i32::MAX` act as `i32::MAX`.
    pub max_args: usize,
    /// Longest inline line, `\r` included, `\n` excluded. Default 64 KiB,
    /// Redis's `PROTO_INLINE_MAX_SIZE`.
    pub max_inline_len: usize,
    /// Most bytes one request may occupy in the read buffer: its headers,
    /// data and CRLFs, plus any empty requests (blank lines, `*0`) skipped
    /// just before it. Default 128 MiB (two maximal bulks). Redis's
    /// analogue is `client-query-buffer-limit` (1 GiB).
    pub max_request_len: usize,
    /// When true, an argument count or bulk length over the limit is
    /// reported in the words Redis uses for a client that still has to
    /// authenticate (`Protocol error: unauthenticated multibulk length`).
    pub unauthenticated: bool,
}

impl Limits {
    /// Default largest bulk: 64 MiB.
    pub const DEFAULT_MAX_BULK_LEN: usize = 64 << 20;
    /// The most `max_bulk_len` may be: 256 MiB, so that a record of a key
    /// and a value of that size fits a WAL record and a snapshot block.
    pub const MAX_BULK_LEN_CEILING: usize = 256 << 20;
    /// Default most arguments: 1,048,576.
    pub const DEFAULT_MAX_ARGS: usize = 1 << 20;
    /// Default longest inline line: 64 KiB.
    pub const DEFAULT_MAX_INLINE_LEN: usize = 64 << 10;
    /// Default largest request: 128 MiB.
    pub const DEFAULT_MAX_REQUEST_LEN: usize = 128 << 20;

    /// The limits for a connection that has not authenticated yet, as Redis
    /// applies them when a password is required: at most 10 arguments of at
    /// most 16 KiB each (enough for `AUTH` and `HELLO 2 AUTH user pass`).
    pub fn unauthenticated() -> Limits {
        Limits {
            max_bulk_len: 16 << 10,
            max_args: 10,
            max_inline_len: Self::DEFAULT_MAX_INLINE_LEN,
            max_request_len: 256 << 10,
            unauthenticated: true,
        }
    }

    /// The limits for a connection that has authenticated, with
    /// `max_bulk_len` as given and room in `max_request_len` for a request
    /// of two such bulks, whatever else was asked.
    pub fn for_bulk_len(max_bulk_len: usize, max_request_len: usize) -> Limits {
        Limits {
            max_bulk_len,
            max_request_len: max_request_len.max(2 * max_bulk_len + (1 << 20)),
            ..Limits::default()
        }
    }

    /// `max_args` capped at `i32::MAX`, as Redis caps a multibulk count.
    pub(crate) fn arg_cap(&self) -> u64 {
        (self.max_args as u64).min(i32::MAX as u64)
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bulk_len: Self::DEFAULT_MAX_BULK_LEN,
            max_args: Self::DEFAULT_MAX_ARGS,
            max_inline_len: Self::DEFAULT_MAX_INLINE_LEN,
            max_request_len: Self::DEFAULT_MAX_REQUEST_LEN,
            unauthenticated: false,
        }
    }
}
