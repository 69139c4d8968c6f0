//! herald persistence. Everything herald keeps goes through the [`Store`] trait; the SQLite
//! backend is the embedded default. Nothing outside this crate writes SQL.

mod error;
mod sqlite;
mod time;

#[cfg(test)]
mod contract;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{App, AppId, Limits};

pub use error::{StoreError, StoreResult};
pub use sqlite::{SqliteOptions, SqliteStore};

/// A new app as the caller chose it; the store assigns the id and timestamps.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub name: String,
    pub key: String,
    pub secret: String,
    pub limits: Limits,
}

/// Changes to an app; `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct AppUpdate {
    pub name: Option<String>,
    pub limits: Option<Limits>,
}

/// All of herald's durable state.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the backend answers; used by readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Flushes and closes; later calls fail.
    async fn close(&self);

    async fn create_app(&self, app: NewApp) -> StoreResult<App>;
    async fn app(&self, id: AppId) -> StoreResult<App>;
    async fn app_by_key(&self, key: &str) -> StoreResult<App>;
    async fn apps(&self) -> StoreResult<Vec<App>>;
    async fn update_app(&self, id: AppId, update: AppUpdate) -> StoreResult<App>;
    /// Makes `secret` current and keeps the old one valid until `previous_valid_until`.
    async fn rotate_secret(
        &self,
        id: AppId,
        secret: String,
        previous_valid_until: DateTime<Utc>,
    ) -> StoreResult<App>;
    /// Deletes the app and everything that belongs to it.
    async fn delete_app(&self, id: AppId) -> StoreResult<()>;
}

/// Shared handle the rest of herald holds.
pub type DynStore = Arc<dyn Store>;
