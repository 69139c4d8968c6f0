//! Schema versions: a database migrated by a newer herald is refused rather than written to
//! with an older understanding of its tables.

use sqlx::migrate::Migrator;

use crate::{StoreError, StoreResult};

/// Refuses a schema whose newest applied migration `found` is past what `migrator` knows.
pub(crate) fn refuse_newer(found: Option<i64>, migrator: &Migrator) -> StoreResult<()> {
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match found {
        Some(found) if found > known => Err(StoreError::SchemaTooNew { found, known }),
        _ => Ok(()),
    }
}
