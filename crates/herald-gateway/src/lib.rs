//! herald-gateway: client connections. The wire protocol, client tokens, the seams the server
//! implements ([`Authenticator`], [`Inbox`]) and the registry of live sessions with its online
//! fan-out; the WebSocket session follows.

pub mod auth;
pub mod inbox;
mod outbox;
pub mod protocol;
pub mod registry;
pub mod settings;
pub mod token;

pub use auth::{AuthError, Authenticator, Identity};
pub use inbox::{DeviceInfo, Inbox, InboxError, Login};
pub use registry::{Delivery, PushFrames, Registry};
pub use settings::GatewaySettings;
