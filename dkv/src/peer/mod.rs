//! The peer wire protocol: how nodes talk to each other on the peer port.
//! Pure: types and a codec over byte buffers; the reactor does the IO.
//!
//! A connection carries length-prefixed binary frames, little-endian:
//! `[u32 frame_len][u8 type][payload]` (byte layouts in
//! `docs/peer-protocol.md`). It opens with a handshake:
//!
//! 1. the connecting node sends a [`Hello`]: protocol version, cluster name,
//!    its node id, the [`settings_digest`] of its `cluster.conf`, and the
//!    shared secret (empty when none);
//! 2. the accepting node answers [`HelloReply::Welcome`], or
//!    [`HelloReply::Refused`] with a reason and closes the connection, when
//!    [`refusal`] finds the protocol version, secret, cluster name or
//!    settings digest differ (or the peer claims its own id).
//!
//! After a welcome, every frame in either direction is an [`Envelope`]: a
//! [`Message`] with the sender's node id and hybrid-clock reading, so that
//! clocks move together. Requests carry a [`RequestId`] that the reply
//! echoes.
//!
//! Limits: a decoder is given `max_frame` and fails as soon as a length
//! prefix exceeds it, before the frame is buffered ([`HANDSHAKE_MAX_FRAME`]
//! until the handshake passes, [`DEFAULT_MAX_FRAME`] after). Any
//! [`FrameError`] is fatal to the connection. Decoding never panics, whatever
//! the bytes.
//!
//! ```
//! use dkv::peer::{decode_envelope, encode_envelope, Envelope, Message, DEFAULT_MAX_FRAME};
//! use dkv::{NodeId, Timestamp};
//!
//! let heartbeat = Envelope { from: NodeId(1), clock: Timestamp(7), message: Message::Heartbeat };
//! let mut wire = Vec::new();
//! encode_envelope(&heartbeat, &mut wire).unwrap();
//! // A partial frame asks for more; a whole one decodes.
//! assert_eq!(decode_envelope(&wire[..5], DEFAULT_MAX_FRAME), Ok(None));
//! assert_eq!(decode_envelope(&wire, DEFAULT_MAX_FRAME), Ok(Some((heartbeat, wire.len()))));
//! ```

mod codec;
mod error;
mod handshake;
mod message;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use codec::{
    check_frame, decode_envelope, decode_hello, decode_hello_reply, encode_envelope, encode_hello,
    encode_hello_reply, envelope_frame_len, frame_type, message_type, DEFAULT_MAX_FRAME,
    HANDSHAKE_MAX_FRAME, LEN_PREFIX,
};
pub use error::FrameError;
pub use handshake::{canonical_settings, refusal, secrets_match, settings_digest};
pub use message::{Envelope, Hello, HelloReply, Message, RequestId, PROTOCOL_VERSION};
