//! The client protocol of the `herald-protocol` crate, re-exported so server code names one
//! path, plus [`Frame`]: one encoded server frame that many connections share.

use tokio_tungstenite::tungstenite::Utf8Bytes;

pub use herald_protocol::*;

/// One encoded server frame. Cloning shares the bytes, so a push is encoded once per platform
/// and handed to any number of connections (DESIGN principle 3).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame(Utf8Bytes);

impl Frame {
    /// Encodes `frame` once; the result is cheap to clone to any number of connections.
    pub fn encode(frame: &ServerFrame) -> Self {
        Frame(Utf8Bytes::from(frame.encode()))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame is empty (never, for an encoded frame).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_text(self) -> Utf8Bytes {
        self.0
    }
}

impl From<&ServerFrame> for Frame {
    fn from(frame: &ServerFrame) -> Self {
        Frame::encode(frame)
    }
}
