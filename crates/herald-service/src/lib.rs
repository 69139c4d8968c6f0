//! What herald does, whichever API asks: the directory of accounts and devices, audiences,
//! accepting and dispatching pushes, the offline inbox, receipts and reports, vendor
//! notifications, webhooks, and the cluster's part in all of them. The HTTP API, the compat
//! layers and the CLI are translations over this crate; errors come out as [`ServiceError`],
//! which each of them maps to its own answers.

pub mod apps;
pub mod cluster;
pub mod device_reports;
pub mod directory;
pub mod dispatch;
mod error;
pub mod layers;
pub mod limits;
pub mod pushes;
pub mod recent_apps;
pub mod reports;
mod service;
pub mod tasks;
pub mod token;
pub mod vendors;
pub mod webhooks;

pub use error::{ServiceError, ServiceResult};
pub use service::{AppCaches, Service};
