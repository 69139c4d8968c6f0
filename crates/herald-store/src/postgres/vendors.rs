//! The `vendor_credentials` table and devices' vendor tokens.

use chrono::Utc;
use herald_core::account::TokenKind;
use herald_core::AppId;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::time::{from_millis, to_millis};
use crate::{DeviceToken, SealedCredentials, StoreError, StoreResult};

fn credentials(row: &PgRow, app: AppId, vendor: &str) -> StoreResult<SealedCredentials> {
    Ok(SealedCredentials {
        app,
        vendor: vendor.to_owned(),
        sealed: row.try_get("sealed")?,
        redacted: row.try_get("redacted")?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

pub(super) async fn set(
    pool: &PgPool,
    app: AppId,
    vendor: &str,
    sealed: &[u8],
    redacted: &str,
) -> StoreResult<SealedCredentials> {
    let row = sqlx::query(
        "INSERT INTO vendor_credentials (app_id, vendor, sealed, redacted, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id, vendor) DO UPDATE SET \
         sealed = excluded.sealed, redacted = excluded.redacted, updated_at = excluded.updated_at \
         RETURNING sealed, redacted, updated_at",
    )
    .bind(app)
    .bind(vendor)
    .bind(sealed)
    .bind(redacted)
    .bind(to_millis(Utc::now()))
    .fetch_one(pool)
    .await
    .map_err(StoreError::of_app_row(app))?;
    credentials(&row, app, vendor)
}

pub(super) async fn get(
    pool: &PgPool,
    app: AppId,
    vendor: &str,
) -> StoreResult<Option<SealedCredentials>> {
    let row = sqlx::query(
        "SELECT sealed, redacted, updated_at FROM vendor_credentials WHERE app_id = $1 AND vendor = $2",
    )
    .bind(app)
    .bind(vendor)
    .fetch_optional(pool)
    .await?;
    row.map(|row| credentials(&row, app, vendor)).transpose()
}

pub(super) async fn delete(pool: &PgPool, app: AppId, vendor: &str) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM vendor_credentials WHERE app_id = $1 AND vendor = $2")
        .bind(app)
        .bind(vendor)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("vendor credentials", format!("{app}/{vendor}")));
    }
    Ok(())
}

pub(super) async fn device_tokens(
    pool: &PgPool,
    app: AppId,
    after: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<DeviceToken>> {
    let rows = sqlx::query(
        "SELECT account_id, device_id, device_key, platform, token_kind, token FROM devices \
         WHERE app_id = $1 AND device_key > $2 AND token IS NOT NULL ORDER BY device_key LIMIT $3",
    )
    .bind(app)
    .bind(after.unwrap_or(-1))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let kind: String = row.try_get("token_kind")?;
        let account: i64 = row.try_get("account_id")?;
        let key: i64 = row.try_get("device_key")?;
        let (Some(kind), Ok(account_id), Ok(device_key)) =
            (TokenKind::parse(&kind), u32::try_from(account), u32::try_from(key))
        else {
            continue;
        };
        out.push(DeviceToken {
            cursor: key,
            account_id,
            device_id: row.try_get("device_id")?,
            device_key,
            platform: row.try_get("platform")?,
            kind,
            token: row.try_get("token")?,
        });
    }
    Ok(out)
}

pub(super) async fn clear_device_token(
    pool: &PgPool,
    app: AppId,
    device_id: &str,
    token: &str,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE devices SET token = NULL, token_kind = NULL \
         WHERE app_id = $1 AND device_id = $2 AND token = $3",
    )
    .bind(app)
    .bind(device_id)
    .bind(token)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
