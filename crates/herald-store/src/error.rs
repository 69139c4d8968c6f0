//! Store errors: what callers can act on, plus the backend failure kept for the logs.

use crate::QuotaBreach;

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A uniqueness rule was broken (e.g. an app key already in use).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A broadcast push would break its API's broadcast limits; nothing was stored.
    #[error(transparent)]
    Quota(#[from] QuotaBreach),
    /// Stored data could not be read back (e.g. a limits column that no longer parses).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The backend cannot be reached or cannot take writes right now (connection lost,
    /// database restarting, pool exhausted, disk full). Nothing of the call was committed, and
    /// the same call may succeed later.
    #[error("storage unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// The backend has no room left to write (the disk or the database's quota is full).
    /// Nothing of the call was committed; reads still work, and the same call succeeds once
    /// space is freed.
    #[error("storage full: {0}")]
    Full(sqlx::Error),
    /// The backend failed otherwise (SQL, decoding).
    #[error("storage backend: {0}")]
    Backend(sqlx::Error),
    /// The database was migrated by a newer herald than this one.
    #[error(
        "the database schema is at version {found}, newer than this herald knows ({known}); \
         run the herald version that migrated it, or a newer one"
    )]
    SchemaTooNew { found: i64, known: i64 },
    /// The store was given settings it cannot use (e.g. a malformed URL).
    #[error("invalid store settings: {0}")]
    Invalid(String),
    /// Schema migration at start-up failed.
    #[error("schema migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub(crate) fn not_found(what: &'static str, id: impl ToString) -> Self {
        Self::NotFound { what, id: id.to_string() }
    }

    /// A write of a row that belongs to `app`: a foreign key broken means the app is gone.
    pub(crate) fn of_app_row(app: herald_core::AppId) -> impl FnOnce(sqlx::Error) -> Self {
        move |err| match err {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Self::not_found("app", app)
            }
            other => other.into(),
        }
    }

    /// Whether the call may succeed if made again later, once the backend is back (or has
    /// room again).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Full(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if is_full(&err) {
            Self::Full(err)
        } else if is_transient(&err) {
            Self::Unavailable(err)
        } else {
            Self::Backend(err)
        }
    }
}

/// A write refused for lack of space: SQLite's SQLITE_FULL, PostgreSQL's 53100 disk_full.
fn is_full(err: &sqlx::Error) -> bool {
    const SQLITE_FULL: u32 = 13;
    let sqlx::Error::Database(db) = err else { return false };
    let Some(code) = db.code() else { return false };
    if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
        code == "53100"
    } else {
        code.parse::<u32>().is_ok_and(|code| code & 0xff == SQLITE_FULL)
    }
}

/// Failures of reaching the database rather than of the statement.
fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        // A connection cut mid-conversation reads as a protocol error (e.g. a proxy in front
        // of the database that accepts and closes while the database is away).
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
                db.code().is_some_and(|code| transient_postgres(&code))
            } else {
                db.code().and_then(|code| code.parse().ok()).is_some_and(transient_sqlite)
            }
        }
        _ => false,
    }
}

/// SQLSTATE codes that say "not now": 08…, connection exceptions; 53…, out of resources
/// (connections, memory, disk); 57P01–57P03, the server is shutting down or starting; 57014,
/// statement timeout; 40001 and 40P01, serialisation failure or deadlock, rolled back whole.
fn transient_postgres(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "57014" | "40001" | "40P01")
}

/// SQLite result codes that say "not now": SQLITE_FULL (disk full), SQLITE_IOERR and its
/// extended codes.
fn transient_sqlite(code: u32) -> bool {
    const SQLITE_IOERR: u32 = 10;
    const SQLITE_FULL: u32 = 13;
    matches!(code & 0xff, SQLITE_IOERR | SQLITE_FULL)
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::SqlitePoolOptions;

    use super::*;

    /// A database that may not grow answers SQLITE_FULL, as one on a full disk does.
    #[tokio::test]
    async fn a_full_sqlite_database_is_full_and_worth_retrying() {
        let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await;
        let pool = pool.unwrap_or_else(|err| panic!("in-memory SQLite: {err}"));
        for sql in ["CREATE TABLE t (v BLOB)", "PRAGMA max_page_count = 8"] {
            sqlx::query(sql).execute(&pool).await.unwrap_or_else(|err| panic!("{sql}: {err}"));
        }
        let mut refused = None;
        for _ in 0..100 {
            let insert = sqlx::query("INSERT INTO t VALUES (zeroblob(4096))").execute(&pool).await;
            if let Err(err) = insert {
                refused = Some(StoreError::from(err));
                break;
            }
        }
        let err = refused.unwrap_or_else(|| panic!("the database never filled up"));
        assert!(matches!(err, StoreError::Full(_)), "{err:?}");
        assert!(err.is_unavailable());
        assert!(err.to_string().starts_with("storage full"), "{err}");
    }
}
