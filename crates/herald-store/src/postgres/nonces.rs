//! The `request_nonces` table: replay protection shared by every node.

use herald_core::AppId;
use sqlx::PgPool;

use crate::{StoreError, StoreResult};

/// Records `(app, nonce)` until `expires_at`; `false` if it is recorded and not expired. One
/// statement, so two nodes taking the same nonce at once cannot both see it as new.
pub(super) async fn first_use(
    pool: &PgPool,
    app: AppId,
    nonce: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<bool> {
    let taken = sqlx::query(
        "INSERT INTO request_nonces (app_id, nonce, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (app_id, nonce) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE request_nonces.expires_at < $4 \
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

pub(super) async fn sweep(pool: &PgPool, now: i64) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM request_nonces WHERE expires_at < $1")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
