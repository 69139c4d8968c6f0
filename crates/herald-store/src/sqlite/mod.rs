//! The embedded default backend: one SQLite file in WAL mode inside the data directory.
//!
//! Writes go through a single connection so that SQLite never has to resolve two writers
//! (which would surface as `SQLITE_BUSY` mid-transaction); reads use a small pool of their own.

mod apps;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{App, AppId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::{AppUpdate, NewApp, Store, StoreResult};

/// How the SQLite file is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `true` fsyncs every commit (survives power loss); `false` only survives a process crash.
    pub sync_full: bool,
    /// Connections used for reads.
    pub readers: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { sync_full: true, readers: 4 }
    }
}

/// [`Store`] on one SQLite file.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `herald.db` in `dir` and applies pending migrations.
    pub async fn open(dir: &Path, options: SqliteOptions) -> StoreResult<Self> {
        let file = dir.join("herald.db");
        let base = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.sync_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(base.clone()).await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .connect_with(base.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn close(&self) {
        self.reader.close().await;
        // A checkpoint folds the WAL back into the main file so a copied data directory is whole.
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await
        {
            tracing::warn!(%err, "WAL checkpoint at close failed");
        }
        self.writer.close().await;
    }

    async fn create_app(&self, app: NewApp) -> StoreResult<App> {
        apps::create(&self.writer, app).await
    }

    async fn app(&self, id: AppId) -> StoreResult<App> {
        apps::by_id(&self.reader, id).await
    }

    async fn app_by_key(&self, key: &str) -> StoreResult<App> {
        apps::by_key(&self.reader, key).await
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        apps::all(&self.reader).await
    }

    async fn update_app(&self, id: AppId, update: AppUpdate) -> StoreResult<App> {
        apps::update(&self.writer, id, update).await
    }

    async fn rotate_secret(
        &self,
        id: AppId,
        secret: String,
        previous_valid_until: DateTime<Utc>,
    ) -> StoreResult<App> {
        apps::rotate_secret(&self.writer, id, secret, previous_valid_until).await
    }

    async fn delete_app(&self, id: AppId) -> StoreResult<()> {
        apps::delete(&self.writer, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).await.unwrap();
        (dir, store)
    }

    crate::contract::suite!(store);

    #[tokio::test]
    async fn data_survives_reopen() {
        let (dir, store) = store().await;
        let app = crate::contract::create_demo_app(&store, "kept").await;
        store.close().await;
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).await.unwrap();
        assert_eq!(store.app(app.id).await.unwrap(), app);
    }
}
