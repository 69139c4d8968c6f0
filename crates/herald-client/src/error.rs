//! Errors of the client SDK.

/// Why the client could not connect or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The WebSocket connection could not be made (address, TCP, TLS, HTTP upgrade).
    #[error("could not connect: {0}")]
    Connect(String),
    /// The server closed the connection, e.g. 4001 for a bad token; see
    /// `herald_protocol::CloseCode` for the codes.
    #[error("server closed the connection: {code} {reason}")]
    Closed { code: u16, reason: String },
    /// The server sent something this client does not understand where it mattered.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The token provider failed.
    #[error("no token: {0}")]
    Token(String),
    /// No answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The client was closed, or gave up reconnecting.
    #[error("the client is closed")]
    Stopped,
}

impl ClientError {
    /// The server's close code, if the server closed the connection.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            ClientError::Closed { code, .. } => Some(*code),
            _ => None,
        }
    }
}
