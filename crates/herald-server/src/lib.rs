//! The herald server: settings, wiring, HTTP routes, authentication and the operator's CLI.

pub mod auth;
pub mod cli;
pub mod cluster;
pub mod compat;
pub mod config;
pub mod directory;
pub mod dispatch;
pub mod error;
mod extract;
pub mod limits;
pub mod pushes;
pub mod recent_apps;
pub mod routes;
pub mod server;
pub mod state;
pub mod tasks;
pub mod telemetry;
pub mod vendors;
pub mod webhooks;

pub use config::Settings;
pub use server::{migrate, run, BusOpenError, StoreOpenError};
