//! Types of the report and webhook part of the [`Store`](crate::Store).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::AppId;

use crate::{Cursor, StoreError, StoreResult};

/// The report of one push on one platform. `delivered` and `opened` are serialized bitmaps of
/// device keys, so counts stay exact (unique devices) across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlatformReport {
    pub app: AppId,
    pub push_id: String,
    pub platform: String,
    pub targeted: u64,
    pub sent_online: u64,
    pub stored_offline: u64,
    pub vendor_sent: u64,
    /// Vendor failures by reason (e.g. `Unregistered`, `BadDeviceToken`).
    pub vendor_failed: BTreeMap<String, u64>,
    pub delivered: Vec<u8>,
    pub opened: Vec<u8>,
}

impl PlatformReport {
    /// This report merged into `stored`, the row as another writer may have left it: counts
    /// keep the larger value (each is written by the node that dispatches the push and only
    /// grows), failures the larger count per reason, and the unique sets are united. Writing
    /// the merge is what lets several nodes flush reports of one push without losing any.
    pub fn merged_into(&self, stored: Option<PlatformReport>) -> StoreResult<PlatformReport> {
        let Some(stored) = stored else { return Ok(self.clone()) };
        let mut vendor_failed = stored.vendor_failed;
        for (reason, count) in &self.vendor_failed {
            let kept = vendor_failed.entry(reason.clone()).or_default();
            *kept = (*kept).max(*count);
        }
        Ok(PlatformReport {
            targeted: self.targeted.max(stored.targeted),
            sent_online: self.sent_online.max(stored.sent_online),
            stored_offline: self.stored_offline.max(stored.stored_offline),
            vendor_sent: self.vendor_sent.max(stored.vendor_sent),
            vendor_failed,
            delivered: union(&stored.delivered, &self.delivered)?,
            opened: union(&stored.opened, &self.opened)?,
            ..self.clone()
        })
    }
}

/// The union of two bitmaps in Roaring's portable format; empty bytes are the empty set.
fn union(a: &[u8], b: &[u8]) -> StoreResult<Vec<u8>> {
    let read = |bytes: &[u8]| -> StoreResult<roaring::RoaringBitmap> {
        if bytes.is_empty() {
            return Ok(roaring::RoaringBitmap::new());
        }
        roaring::RoaringBitmap::deserialize_from(bytes)
            .map_err(|err| StoreError::Corrupt(format!("report bitmap: {err}")))
    };
    if a.is_empty() || a == b {
        return Ok(b.to_vec());
    }
    if b.is_empty() {
        return Ok(a.to_vec());
    }
    let united = read(a)? | read(b)?;
    let mut bytes = Vec::with_capacity(united.serialized_size());
    united.serialize_into(&mut bytes).map_err(|err| StoreError::Corrupt(err.to_string()))?;
    Ok(bytes)
}

/// Deliveries and opens of one push in one minute (Unix minutes), to add to what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteCount {
    pub app: AppId,
    pub push_id: String,
    pub minute: i64,
    pub delivered: u64,
    pub opened: u64,
}

/// An app's totals of one UTC day (`YYYY-MM-DD`), as stored or as an increment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayCount {
    pub app: AppId,
    pub day: String,
    pub pushes: u64,
    pub delivered: u64,
    pub opened: u64,
}

/// Everything receipts changed since the last flush, written in one transaction: device
/// cursors and report counts move together, so after a crash a device re-sends exactly the
/// acks whose counts were lost, and unique counting absorbs the repeats.
#[derive(Debug, Clone, Default)]
pub struct ReceiptsFlush {
    pub cursors: Vec<(AppId, String, Cursor)>,
    /// Rows merged into what is stored ([`PlatformReport::merged_into`]).
    pub reports: Vec<PlatformReport>,
    /// Increments.
    pub minutes: Vec<MinuteCount>,
    /// Increments.
    pub days: Vec<DayCount>,
}

impl ReceiptsFlush {
    pub fn is_empty(&self) -> bool {
        self.cursors.is_empty()
            && self.reports.is_empty()
            && self.minutes.is_empty()
            && self.days.is_empty()
    }
}

/// Where an app's events are posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub app: AppId,
    pub url: String,
    /// Event kinds it receives, e.g. `push.finished`.
    pub events: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

/// An event waiting in (or done with) the webhook outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: i64,
    pub app: AppId,
    pub kind: String,
    /// The JSON body posted.
    pub payload: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAttempt {
    Delivered,
    /// Try again at `next`.
    Retry {
        next: DateTime<Utc>,
        error: String,
    },
    /// Given up.
    Failed {
        error: String,
    },
}
