//! Types of the report and webhook part of the [`Store`](crate::Store).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::AppId;

use crate::Cursor;

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
    /// Whole rows, replacing what is stored.
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
