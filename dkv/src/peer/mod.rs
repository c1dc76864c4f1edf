//! The peer wire protocol: how nodes talk to each other on the peer port.
//! Pure: types and a codec over byte buffers; the reactor does the IO.
//!
//! A connection carries length-prefixed binary frames, little-endian:
//! `[u32 frame_len][u8 type][payload]` (byte layouts in
//! `docs/peer-protocol.md`). It opens with a mutual challenge-response
//! handshake in which neither side ever sends the cluster secret:
//!
//! 1. the connecting node (the dialler) sends a [`Hello`]: protocol
//!    version, the id it claims, the id it means to reach, a fresh nonce;
//! 2. the accepting node (the listener) answers
//!    [`HelloReply::Challenge`] with its own nonce;
//! 3. the dialler sends a [`Proof`]: HMAC-SHA256, keyed with the secret,
//!    over both ids and both nonces ([`dialler_proof`]);
//! 4. the listener checks it, then that the claimed id is another member
//!    whose peer address the connection comes from ([`admission`]), and
//!    answers [`HelloReply::Welcome`] with its own proof over the same
//!    transcript and its settings ([`listener_proof`]); the dialler checks
//!    that proof, then the cluster name and [`settings_digest`]
//!    ([`settings_mismatch`]).
//!
//! A refusal at any step is [`HelloReply::Refused`] and the connection
//! closes. Before the dialler has proven itself, a refusal says
//! [`UNPROVEN_REFUSAL`] and nothing else.
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
mod shared_write;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use codec::{
    check_frame, decode_challenge, decode_envelope, decode_hello, decode_hello_reply, decode_proof,
    encode_envelope, encode_hello, encode_hello_reply, encode_proof, envelope_frame_len,
    frame_type, message_type, DEFAULT_MAX_FRAME, HANDSHAKE_MAX_FRAME, LEN_PREFIX,
};
pub use error::FrameError;
pub use handshake::{
    admission, canonical_settings, dialler_proof, dialler_proof_matches, listener_proof,
    listener_proof_matches, secrets_match, settings_digest, settings_mismatch, Transcript,
    UNPROVEN_REFUSAL,
};
pub use message::{
    Envelope, Hello, HelloReply, Message, Proof, RequestId, NONCE_LEN, PROOF_LEN, PROTOCOL_VERSION,
};
pub use shared_write::SharedWrite;
