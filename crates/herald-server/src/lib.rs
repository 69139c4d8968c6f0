//! The herald server: settings, wiring, HTTP routes, authentication and the operator's CLI.

pub mod auth;
pub mod cli;
pub mod compat;
pub mod config;
pub mod doctor;
pub mod error;
mod extract;
pub mod routes;
pub mod server;
pub mod state;
pub mod telemetry;

pub use herald_service::{
    apps, cluster, directory, dispatch, limits, pushes, recent_apps, reports, tasks, vendors,
    webhooks,
};

pub use config::Settings;
pub use server::{migrate, run, BusOpenError, StoreOpenError};
