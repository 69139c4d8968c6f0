//! herald-gateway: client connections. The wire protocol and client tokens so far; the registry
//! of live sessions and the WebSocket session follow.

pub mod protocol;
pub mod token;
