//! The `push_reports`, `push_report_minutes` and `app_days` tables, and the receipts flush.

use std::collections::HashSet;

use herald_core::AppId;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::pushes;
use crate::rows::{self, int};
use crate::{DayCount, MinuteCount, PlatformReport, ReceiptsFlush, StoreError, StoreResult};

fn count(row: &SqliteRow, column: &str) -> StoreResult<u64> {
    Ok(rows::count(row.try_get(column)?))
}

pub(super) async fn flush(pool: &SqlitePool, flush: &ReceiptsFlush) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    // Receipts of an app deleted since they were counted are dropped with it: written, they
    // would break the foreign key and fail every app's flush, again and again.
    let apps: HashSet<AppId> =
        sqlx::query_scalar("SELECT id FROM apps").fetch_all(&mut *tx).await?.into_iter().collect();
    let cursors: Vec<_> =
        flush.cursors.iter().filter(|(app, _, _)| apps.contains(app)).cloned().collect();
    pushes::save_cursors(&mut tx, &cursors).await?;
    // In one order on every node: two flushes locking the same rows never wait in a circle.
    let mut reports: Vec<_> = flush.reports.iter().filter(|r| apps.contains(&r.app)).collect();
    reports.sort_by(|a, b| (a.app, &a.push_id, &a.platform).cmp(&(b.app, &b.push_id, &b.platform)));
    for report in reports {
        let report = report.merged_into(stored_report(&mut tx, report).await?)?;
        let failed = serde_json::to_string(&report.vendor_failed)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        sqlx::query(
            "INSERT INTO push_reports (app_id, push_id, platform, targeted, sent_online, \
             stored_offline, vendor_sent, vendor_failed, delivered, opened) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (app_id, push_id, platform) DO UPDATE SET targeted = excluded.targeted, \
             sent_online = excluded.sent_online, stored_offline = excluded.stored_offline, \
             vendor_sent = excluded.vendor_sent, vendor_failed = excluded.vendor_failed, \
             delivered = excluded.delivered, opened = excluded.opened",
        )
        .bind(report.app)
        .bind(&report.push_id)
        .bind(&report.platform)
        .bind(int(report.targeted))
        .bind(int(report.sent_online))
        .bind(int(report.stored_offline))
        .bind(int(report.vendor_sent))
        .bind(failed)
        .bind(&report.delivered)
        .bind(&report.opened)
        .execute(&mut *tx)
        .await?;
    }
    for minute in flush.minutes.iter().filter(|m| apps.contains(&m.app)) {
        sqlx::query(
            "INSERT INTO push_report_minutes (app_id, push_id, minute, delivered, opened) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id, push_id, minute) DO UPDATE SET \
             delivered = delivered + excluded.delivered, opened = opened + excluded.opened",
        )
        .bind(minute.app)
        .bind(&minute.push_id)
        .bind(minute.minute)
        .bind(int(minute.delivered))
        .bind(int(minute.opened))
        .execute(&mut *tx)
        .await?;
    }
    for day in flush.days.iter().filter(|d| apps.contains(&d.app)) {
        sqlx::query(
            "INSERT INTO app_days (app_id, day, pushes, delivered, opened) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (app_id, day) DO UPDATE SET pushes = pushes + excluded.pushes, \
             delivered = delivered + excluded.delivered, opened = opened + excluded.opened",
        )
        .bind(day.app)
        .bind(&day.day)
        .bind(int(day.pushes))
        .bind(int(day.delivered))
        .bind(int(day.opened))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn push_report(
    pool: &SqlitePool,
    app: AppId,
    push_id: &str,
) -> StoreResult<Vec<PlatformReport>> {
    let rows = sqlx::query(
        "SELECT platform, targeted, sent_online, stored_offline, vendor_sent, vendor_failed, \
         delivered, opened FROM push_reports WHERE app_id = ? AND push_id = ? ORDER BY platform",
    )
    .bind(app)
    .bind(push_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|row| report_of(row, app, push_id)).collect()
}

pub(super) async fn push_minutes(
    pool: &SqlitePool,
    app: AppId,
    push_id: &str,
) -> StoreResult<Vec<MinuteCount>> {
    let rows = sqlx::query(
        "SELECT minute, delivered, opened FROM push_report_minutes WHERE app_id = ? AND push_id = ? \
         ORDER BY minute",
    )
    .bind(app)
    .bind(push_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(MinuteCount {
                app,
                push_id: push_id.to_owned(),
                minute: row.try_get("minute")?,
                delivered: count(row, "delivered")?,
                opened: count(row, "opened")?,
            })
        })
        .collect()
}

pub(super) async fn days(
    pool: &SqlitePool,
    app: AppId,
    from: &str,
    to: &str,
) -> StoreResult<Vec<DayCount>> {
    let rows = sqlx::query(
        "SELECT day, pushes, delivered, opened FROM app_days WHERE app_id = ? AND day >= ? AND day <= ? \
         ORDER BY day",
    )
    .bind(app)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DayCount {
                app,
                day: row.try_get("day")?,
                pushes: count(row, "pushes")?,
                delivered: count(row, "delivered")?,
                opened: count(row, "opened")?,
            })
        })
        .collect()
}

/// The stored row a flushed report merges into, locked until the flush commits.
async fn stored_report(
    conn: &mut sqlx::SqliteConnection,
    report: &PlatformReport,
) -> StoreResult<Option<PlatformReport>> {
    // A row first written by two flushes at once: both insert an empty one (one of them
    // does nothing), then each merges into it under the row's lock.
    sqlx::query(
        "INSERT INTO push_reports (app_id, push_id, platform, targeted, sent_online, \
         stored_offline, vendor_sent, vendor_failed) VALUES (?, ?, ?, 0, 0, 0, 0, '{}') \
         ON CONFLICT (app_id, push_id, platform) DO NOTHING",
    )
    .bind(report.app)
    .bind(&report.push_id)
    .bind(&report.platform)
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(
        "SELECT platform, targeted, sent_online, stored_offline, vendor_sent, vendor_failed, \
         delivered, opened FROM push_reports WHERE app_id = ? AND push_id = ? AND platform = ?",
    )
    .bind(report.app)
    .bind(&report.push_id)
    .bind(&report.platform)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| report_of(&row, report.app, &report.push_id)).transpose()
}

fn report_of(row: &SqliteRow, app: AppId, push_id: &str) -> StoreResult<PlatformReport> {
    let failed: String = row.try_get("vendor_failed")?;
    let delivered: Option<Vec<u8>> = row.try_get("delivered")?;
    let opened: Option<Vec<u8>> = row.try_get("opened")?;
    Ok(PlatformReport {
        app,
        push_id: push_id.to_owned(),
        platform: row.try_get("platform")?,
        targeted: count(row, "targeted")?,
        sent_online: count(row, "sent_online")?,
        stored_offline: count(row, "stored_offline")?,
        vendor_sent: count(row, "vendor_sent")?,
        vendor_failed: serde_json::from_str(&failed)
            .map_err(|err| StoreError::Corrupt(format!("vendor_failed: {err}")))?,
        delivered: delivered.unwrap_or_default(),
        opened: opened.unwrap_or_default(),
    })
}
