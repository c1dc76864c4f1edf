//! [`FrameError`]: why bytes are not a valid peer frame.

use super::message::PROTOCOL_VERSION;

/// Why bytes are not a valid frame (or a message cannot be framed). Every
/// one is fatal to the connection: the stream cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// `frame_len` is over the limit (decoding), or the frame would not fit
    /// the u32 length prefix (encoding).
    #[error("peer frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The frame length (type byte and payload).
        len: u64,
        /// The limit.
        max: u64,
    },
    /// `frame_len` is 0: not even a type byte.
    #[error("empty peer frame: length 0, no message type")]
    Empty,
    /// A type byte that is unknown or not valid at this point of the
    /// connection (a message before the handshake, a hello after it).
    #[error("unexpected peer message type {0:#04x}")]
    UnexpectedType(u8),
    /// The payload ends inside a field.
    #[error("peer frame ends inside `{field}`")]
    Truncated {
        /// The field.
        field: &'static str,
    },
    /// The payload goes on after the message ends.
    #[error("peer frame has {extra} bytes after its message")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A text field that is not UTF-8.
    #[error("`{field}` in a peer frame is not valid UTF-8")]
    BadUtf8 {
        /// The field.
        field: &'static str,
    },
    /// A tag byte (presence, boolean, entry kind) with a value it cannot
    /// have.
    #[error("`{field}` in a peer frame has invalid tag {value}")]
    BadTag {
        /// The field.
        field: &'static str,
        /// The byte found.
        value: u8,
    },
    /// A field whose value cannot be (a float delta that is not finite).
    #[error("`{field}` in a peer frame is invalid: {reason}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A hello of a protocol version this node does not speak.
    #[error("peer speaks protocol version {0}; this node speaks {PROTOCOL_VERSION}")]
    UnsupportedVersion(u16),
}
