//! Schema versions: a database migrated by a newer herald is refused rather than written to
//! with an older understanding of its tables.

use sqlx::migrate::Migrator;

use crate::{StoreError, StoreResult};

/// A store as found, without changing it: what `herald doctor` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreProbe {
    /// The newest migration applied; `None` for a store never opened by herald.
    pub schema_version: Option<i64>,
    /// The newest migration this herald knows.
    pub known_version: i64,
    /// The database server's clock (PostgreSQL), to compare with this machine's.
    pub server_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl StoreProbe {
    pub(crate) fn new(
        schema_version: Option<i64>,
        migrator: &Migrator,
        server_time: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Self {
        let known_version = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        Self { schema_version, known_version, server_time }
    }
}

/// Refuses a schema whose newest applied migration `found` is past what `migrator` knows.
pub(crate) fn refuse_newer(found: Option<i64>, migrator: &Migrator) -> StoreResult<()> {
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match found {
        Some(found) if found > known => Err(StoreError::SchemaTooNew { found, known }),
        _ => Ok(()),
    }
}
