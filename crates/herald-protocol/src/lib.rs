//! herald-protocol: the client protocol, versioned JSON text frames spoken over the
//! `/v1/connect` WebSocket, and the client tokens devices present in `hello`.
//!
//! Every frame is one JSON object with a `"type"` member. Clients send [`ClientFrame`]s, the
//! server sends [`ServerFrame`]s; close codes are in [`CloseCode`]. `docs/protocol.md` is the
//! reference for people writing clients in other languages; this crate is the one both herald's
//! server and its Rust SDK compile against, so the two cannot drift apart. It depends on serde and
//! a few small crates only, so a client build carries no server stack.
//!
//! Unknown members are ignored so that a newer peer may add optional fields within a protocol
//! version; an unknown `"type"` is an error because its meaning cannot be guessed.

mod client;
mod close;
mod server;
pub mod token;

pub use client::{Ack, ClientFrame, Hello, Opened, VendorKind, VendorToken};
pub use close::{CloseCode, Retry};
pub use server::{ErrorCode, ErrorFrame, Push, Recall, ServerFrame, Welcome};

/// The protocol version this build speaks; a hello with another `v` is refused with
/// [`CloseCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Most explicit sequence numbers one `ack` frame may carry; bounds the work one frame causes.
pub const MAX_ACK_SEQS: usize = 1_000;

/// Longest device id, platform, package, locale, time zone or app version accepted in a hello.
pub const MAX_FIELD_LEN: usize = 128;

/// Longest vendor (APNs / FCM / Web Push) token accepted in a hello; FCM tokens are about 160
/// bytes, Web Push subscriptions about 600.
pub const MAX_VENDOR_TOKEN_LEN: usize = 4_096;

/// Why a text frame could not be understood. Each maps to the [`ErrorCode`] sent back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not JSON, or JSON that is not an object.
    #[error("frame is not a JSON object: {0}")]
    Malformed(String),
    /// An object without a string `"type"`.
    #[error("frame has no \"type\"")]
    MissingType,
    /// A `"type"` this protocol version does not know.
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// A known type whose members are missing, mistyped or out of range.
    #[error("invalid {kind} frame: {detail}")]
    Invalid { kind: &'static str, detail: String },
    /// A hello for a protocol version this build does not speak.
    #[error("protocol version {0} is not supported; this server speaks {PROTOCOL_VERSION}")]
    UnsupportedVersion(u64),
    /// A binary WebSocket message: the protocol is text only.
    #[error("binary frames are not part of the protocol")]
    Binary,
}

impl ProtocolError {
    /// The code sent back in the error frame.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::Malformed(_) | ProtocolError::Binary => ErrorCode::BadFrame,
            ProtocolError::MissingType | ProtocolError::UnknownType(_) => ErrorCode::UnknownType,
            ProtocolError::Invalid { .. } => ErrorCode::BadFrame,
            ProtocolError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
        }
    }
}

#[cfg(test)]
mod tests;
