//! Store errors: what callers can act on, plus the backend failure kept for the logs.

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
    /// Stored data could not be read back (e.g. a limits column that no longer parses).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The backend failed (I/O, connection, SQL).
    #[error("storage backend: {0}")]
    Backend(#[from] sqlx::Error),
    /// Schema migration at start-up failed.
    #[error("schema migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub(crate) fn not_found(what: &'static str, id: impl ToString) -> Self {
        Self::NotFound { what, id: id.to_string() }
    }
}
