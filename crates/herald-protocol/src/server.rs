//! Frames the server sends: `welcome`, `push`, `recall`, `pong`, `error`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ProtocolError;

/// A frame from server to client.
///
/// # Format
/// ```text
/// {"type":"welcome","session_id":"9f3c…","server_time":"2025-01-01T00:00:00Z","heartbeat_secs":30,"resume_from":41,
///  "webpush_key":"BNc…"}
/// {"type":"push","push_id":"p-17","seq":42,"sender":"admin","message":{…},"notification":{…},
///  "sent_at":"2025-01-01T00:00:00.120Z","expires_at":"2025-01-08T00:00:00Z"}
/// {"type":"recall","push_id":"p-17","seq":42}
/// {"type":"pong"}
/// {"type":"error","code":"unknown_seq","message":"…"}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The answer to a good hello; pushes follow.
    Welcome(Welcome),
    /// One push, in sequence order.
    Push(Push),
    /// A push was withdrawn by the app; clients remove what they show for it.
    Recall(Recall),
    /// The answer to `ping`.
    Pong {},
    /// The client sent something wrong; unless a close follows, the session goes on.
    Error(ErrorFrame),
}

impl ServerFrame {
    /// Encodes the frame as JSON text. The server wraps the text once in a shared frame
    /// (`herald_gateway::protocol::Frame`) and hands it to any number of connections.
    pub fn encode(&self) -> String {
        // Serialising these types cannot fail: every map has string keys and `Value` holds no
        // non-finite floats.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes one text frame (the client side of the protocol).
    ///
    /// # Errors
    /// [`ProtocolError::UnknownType`] for a type this build does not know, so that a client can
    /// skip frames added by a newer server; [`ProtocolError::Malformed`] or
    /// [`ProtocolError::Invalid`] otherwise.
    pub fn decode(text: &str) -> Result<Self, ProtocolError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        let serde_json::Value::Object(map) = &value else {
            return Err(ProtocolError::Malformed("expected an object".into()));
        };
        let kind: &'static str = match map.get("type") {
            Some(serde_json::Value::String(kind)) => match kind.as_str() {
                "welcome" => "welcome",
                "push" => "push",
                "recall" => "recall",
                "pong" => "pong",
                "error" => "error",
                other => return Err(ProtocolError::UnknownType(other.to_owned())),
            },
            _ => return Err(ProtocolError::MissingType),
        };
        serde_json::from_value(value)
            .map_err(|e| ProtocolError::Invalid { kind, detail: e.to_string() })
    }
}

/// Sent once after a good hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Opaque id of this connection, for support and logs.
    pub session_id: String,
    /// The server's clock, so clients can judge `sent_at` and `expires_at`.
    pub server_time: DateTime<Utc>,
    /// How often the client should send `ping` (or any frame).
    pub heartbeat_secs: u64,
    /// Pushes with `seq` above this follow: `max(hello.last_seq, the device's stored cursor)`.
    pub resume_from: u64,
    /// The app's VAPID public key (base64url), present when the app can send Web Push: what a
    /// page passes to `pushManager.subscribe` as `applicationServerKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webpush_key: Option<String>,
}

/// One push as a device receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Push {
    /// Id of the push (the task), the same for every device; used by `opened`.
    pub push_id: String,
    /// App-wide sequence number; increases with every push of the app. Pushes reach a device in
    /// increasing `seq` order, with gaps wherever a push did not target it.
    pub seq: u64,
    /// Account that sent the push, when the app named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The app's custom message: any JSON.
    pub message: serde_json::Value,
    /// The notification, already resolved for the device's platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<serde_json::Map<String, serde_json::Value>>,
    /// When the push was sent (dispatched).
    pub sent_at: DateTime<Utc>,
    /// When it stops being delivered; absent for online-only pushes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Withdraws a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recall {
    pub push_id: String,
    pub seq: u64,
}

/// What went wrong, in an error frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub code: ErrorCode,
    /// Human-readable detail; not meant for parsing.
    pub message: String,
}

impl ErrorFrame {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// Codes of error frames. Each names what the client did; see `docs/protocol.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, a binary message, or a known frame with bad members.
    BadFrame,
    /// A `"type"` the server does not know, or none.
    UnknownType,
    /// The hello's `v` is not spoken here (close 4005 follows).
    UnsupportedVersion,
    /// Something other than hello came first (close 4002 follows).
    HelloRequired,
    /// A second hello on an identified connection.
    AlreadyIdentified,
    /// The token is malformed, forged, expired or of an unknown app (close 4001 follows).
    Unauthorized,
    /// The server refused the login, e.g. the app is disabled (close 4006 follows).
    Refused,
    /// An ack named a sequence number this connection has not sent; it was ignored.
    UnknownSeq,
    /// A message larger than the limit (close 4004 follows).
    FrameTooLarge,
    /// The server failed to handle the frame; retrying later may work.
    Internal,
    /// The app has as many connections as the server allows it (close 4012 follows).
    TooManyConnections,
    /// The client sent frames faster than the server allows (close 4013 follows).
    RateLimited,
    /// A code added by a newer server.
    #[serde(other)]
    Unknown,
}
