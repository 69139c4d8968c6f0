//! The `request_nonces` table: replay protection for processes sharing one file.

use herald_core::AppId;
use sqlx::SqlitePool;

use crate::{StoreError, StoreResult};

/// Records `(app, nonce)` until `expires_at`; `false` if it is recorded and not expired. One
/// statement, so two processes taking the same nonce at once cannot both see it as new.
pub(super) async fn first_use(
    pool: &SqlitePool,
    app: AppId,
    nonce: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<bool> {
    let taken = sqlx::query(
        "INSERT INTO request_nonces (app_id, nonce, expires_at) VALUES (?, ?, ?) \
         ON CONFLICT (app_id, nonce) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE request_nonces.expires_at < ? \
         RETURNING app_id",
    )
    .bind(app)
    .bind(nonce)
    .bind(expires_at)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(StoreError::of_app_row(app))?;
    Ok(taken.is_some())
}

pub(super) async fn sweep(pool: &SqlitePool, now: i64) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM request_nonces WHERE expires_at < ?")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
