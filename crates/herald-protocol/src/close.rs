//! WebSocket close codes the server uses, and what a client should do after each.

/// Why the server closed a connection; the WebSocket close code carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the client asked to close.
    Normal,
    /// 1001: the server is shutting down; reconnect (to another node) with backoff.
    ShuttingDown,
    /// 1011: the server failed (e.g. its store was unavailable); reconnect with backoff.
    Internal,
    /// 4001: the token is malformed, forged, expired or of an unknown app. Get a new token.
    Unauthorized,
    /// 4002: protocol violation: a first frame that is not a good hello, or an undecodable hello.
    ProtocolViolation,
    /// 4003: no hello within the hello timeout.
    HelloTimeout,
    /// 4004: a message larger than the maximum frame size.
    FrameTooLarge,
    /// 4005: the hello's protocol version is not spoken by this server.
    UnsupportedVersion,
    /// 4006: the server refused the login (e.g. the app is disabled). Do not retry soon.
    Refused,
    /// 4008: no frame from the client within the idle timeout (missed heartbeats).
    IdleTimeout,
    /// 4009: the client read too slowly and its outgoing queue filled up; its pushes wait in
    /// the inbox and come on reconnect.
    TooSlow,
    /// 4010: a newer connection of the same device replaced this one. Do not reconnect: the
    /// newer connection is the device's.
    Replaced,
    /// 4011: the server ended the session (device unbound, account removed); reconnect with
    /// backoff and the server decides again.
    Evicted,
    /// 4012: the app has as many connections as the server allows it; reconnect with backoff.
    TooManyConnections,
    /// 4013: the client sent frames faster than the server allows; reconnect with backoff
    /// and send less (ack cumulatively).
    RateLimited,
}

/// What a client should do after a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reconnect after a backoff delay.
    Reconnect,
    /// Reconnect only with a new token.
    NewToken,
    /// Do not reconnect.
    Stop,
}

impl CloseCode {
    /// Every code, for documentation tests and exhaustive tables.
    pub const ALL: [CloseCode; 15] = [
        CloseCode::Normal,
        CloseCode::ShuttingDown,
        CloseCode::Internal,
        CloseCode::Unauthorized,
        CloseCode::ProtocolViolation,
        CloseCode::HelloTimeout,
        CloseCode::FrameTooLarge,
        CloseCode::UnsupportedVersion,
        CloseCode::Refused,
        CloseCode::IdleTimeout,
        CloseCode::TooSlow,
        CloseCode::Replaced,
        CloseCode::Evicted,
        CloseCode::TooManyConnections,
        CloseCode::RateLimited,
    ];

    /// The numeric WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::ShuttingDown => 1001,
            CloseCode::Internal => 1011,
            CloseCode::Unauthorized => 4001,
            CloseCode::ProtocolViolation => 4002,
            CloseCode::HelloTimeout => 4003,
            CloseCode::FrameTooLarge => 4004,
            CloseCode::UnsupportedVersion => 4005,
            CloseCode::Refused => 4006,
            CloseCode::IdleTimeout => 4008,
            CloseCode::TooSlow => 4009,
            CloseCode::Replaced => 4010,
            CloseCode::Evicted => 4011,
            CloseCode::TooManyConnections => 4012,
            CloseCode::RateLimited => 4013,
        }
    }

    /// The code for a numeric close code, if it is one of herald's.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Short reason sent in the close frame (close reasons are limited to 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "closed",
            CloseCode::ShuttingDown => "server shutting down",
            CloseCode::Internal => "internal error",
            CloseCode::Unauthorized => "bad or expired token",
            CloseCode::ProtocolViolation => "protocol violation",
            CloseCode::HelloTimeout => "no hello in time",
            CloseCode::FrameTooLarge => "frame too large",
            CloseCode::UnsupportedVersion => "unsupported protocol version",
            CloseCode::Refused => "login refused",
            CloseCode::IdleTimeout => "idle timeout",
            CloseCode::TooSlow => "too slow: outgoing queue full",
            CloseCode::Replaced => "replaced by a newer connection of this device",
            CloseCode::Evicted => "session ended by the server",
            CloseCode::TooManyConnections => "too many connections for this app",
            CloseCode::RateLimited => "too many frames from the client",
        }
    }

    /// What a client should do next.
    pub fn retry(self) -> Retry {
        match self {
            CloseCode::Normal | CloseCode::Replaced => Retry::Stop,
            CloseCode::Unauthorized => Retry::NewToken,
            // A client that violated the protocol or speaks another version will do so again.
            CloseCode::ProtocolViolation | CloseCode::UnsupportedVersion => Retry::Stop,
            CloseCode::ShuttingDown
            | CloseCode::Internal
            | CloseCode::HelloTimeout
            | CloseCode::FrameTooLarge
            | CloseCode::Refused
            | CloseCode::IdleTimeout
            | CloseCode::TooSlow
            | CloseCode::Evicted
            | CloseCode::TooManyConnections
            | CloseCode::RateLimited => Retry::Reconnect,
        }
    }

    /// Label value for the disconnect metric.
    pub fn label(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal",
            CloseCode::ShuttingDown => "shutting_down",
            CloseCode::Internal => "internal",
            CloseCode::Unauthorized => "unauthorized",
            CloseCode::ProtocolViolation => "protocol_violation",
            CloseCode::HelloTimeout => "hello_timeout",
            CloseCode::FrameTooLarge => "frame_too_large",
            CloseCode::UnsupportedVersion => "unsupported_version",
            CloseCode::Refused => "refused",
            CloseCode::IdleTimeout => "idle_timeout",
            CloseCode::TooSlow => "too_slow",
            CloseCode::Replaced => "replaced",
            CloseCode::Evicted => "evicted",
            CloseCode::TooManyConnections => "too_many_connections",
            CloseCode::RateLimited => "rate_limited",
        }
    }
}
