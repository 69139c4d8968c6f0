//! herald's domain: apps, limits and the rules every layer agrees on. No I/O lives here.

pub mod account;
pub mod app;
pub mod audience;
pub mod limits;
pub mod push;
pub mod redact;
pub mod signature;

pub use app::{App, AppId};
pub use limits::{LimitBreach, Limits, LimitsPatch};
