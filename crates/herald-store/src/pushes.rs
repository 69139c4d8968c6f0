//! Types of the push part of the [`Store`](crate::Store).

use chrono::{DateTime, Utc};
use herald_core::push::PushStatus;
use herald_core::AppId;

/// How long an idempotency key names the same push.
pub(crate) const IDEMPOTENCY_WINDOW_DAYS: i64 = 7;

/// A push as accepted, before dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPush {
    pub app: AppId,
    pub id: String,
    /// The audience expression as the app sent it (JSON).
    pub audience: String,
    /// The custom message (JSON).
    pub message: String,
    /// The notification (JSON), if any.
    pub notification: Option<String>,
    pub sender: Option<String>,
    pub platforms: Option<Vec<String>>,
    pub ttl_secs: u32,
    pub idempotency_key: Option<String>,
    /// When to dispatch; now or earlier means at once.
    pub push_at: DateTime<Utc>,
    /// Counts against the app's broadcast interval and daily quota.
    pub broadcast: bool,
    /// The API that created it: `native`, `tencent`, `rongcloud`.
    pub source: String,
    /// Whether offline devices get the notification through their vendor.
    pub vendor_push: bool,
    /// For a broadcast: the limits it must fit, checked in the transaction that stores it.
    pub quota: Option<BroadcastQuota>,
}

/// The broadcast limits of one API. The store checks them against the pushes it holds in the
/// same transaction that stores the new one, so concurrent requests, on any node, cannot both
/// pass: the usage is counted where it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastQuota {
    /// Broadcasts allowed per UTC day.
    pub per_day: u32,
    /// Broadcasts allowed in any hour, if the API has such a cap.
    pub per_hour: Option<u32>,
    /// Seconds required between two broadcasts; 0 for none.
    pub min_interval_secs: u32,
}

/// The broadcast limit a push would break, with what the caller needs to say when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuotaBreach {
    #[error("the daily broadcast quota is used up")]
    PerDay { day_start: DateTime<Utc> },
    #[error("the hourly broadcast quota is used up")]
    PerHour { latest: Option<DateTime<Utc>> },
    #[error("the previous broadcast was too recent")]
    MinInterval { latest: DateTime<Utc> },
}

impl BroadcastQuota {
    /// The start of the UTC day of `now`.
    pub fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
        now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// The oldest moment whose broadcasts matter at `now`: the day's start, an hour ago, or
    /// the minimum interval ago, whichever is earliest.
    pub(crate) fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let interval = now - chrono::Duration::seconds(i64::from(self.min_interval_secs));
        Self::day_start(now).min(now - chrono::Duration::hours(1)).min(interval)
    }

    /// Checks usage read at `now`: `day` broadcasts since the day started, `hour` in the last
    /// hour, `latest` the newest broadcast's time.
    pub(crate) fn check(
        &self,
        now: DateTime<Utc>,
        day: u64,
        hour: u64,
        latest: Option<DateTime<Utc>>,
    ) -> Result<(), QuotaBreach> {
        if day >= u64::from(self.per_day) {
            return Err(QuotaBreach::PerDay { day_start: Self::day_start(now) });
        }
        if self.per_hour.is_some_and(|cap| hour >= u64::from(cap)) {
            return Err(QuotaBreach::PerHour { latest });
        }
        let interval = chrono::Duration::seconds(i64::from(self.min_interval_secs));
        match latest {
            Some(latest) if self.min_interval_secs > 0 && now < latest + interval => {
                Err(QuotaBreach::MinInterval { latest })
            }
            _ => Ok(()),
        }
    }
}

/// A push with its state.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRecord {
    pub app: AppId,
    pub id: String,
    pub seq: Option<u64>,
    pub status: PushStatus,
    pub audience: String,
    pub message: String,
    pub notification: Option<String>,
    pub sender: Option<String>,
    pub platforms: Option<Vec<String>>,
    pub ttl_secs: u32,
    pub idempotency_key: Option<String>,
    pub push_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the push leaves the inbox; `None` for online-only pushes.
    pub expires_at: Option<DateTime<Utc>>,
    pub recalled_at: Option<DateTime<Utc>>,
    /// Serialized audience bitmap, stored at dispatch unless the push is online-only.
    pub recipients: Option<Vec<u8>>,
    /// Audience size at dispatch.
    pub targeted: Option<u64>,
    pub error: Option<String>,
    pub broadcast: bool,
    pub source: String,
    pub vendor_push: bool,
}

/// Which pushes a listing shows: newest first, optionally by status and creation time.
#[derive(Debug, Clone, Default)]
pub struct PushFilter {
    pub status: Option<PushStatus>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// Continue after this push id (the last one of the previous page).
    pub after: Option<String>,
    pub limit: u32,
}

/// Broadcast pushes of an app since a moment: how many, and when the latest was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BroadcastUsage {
    pub count: u64,
    pub latest: Option<DateTime<Utc>>,
}

/// What the dispatcher stores when it resolves a push.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    /// Kept for every push (a recall needs to know who got it); only pushes with an expiry
    /// are in the inbox.
    pub recipients: Option<Vec<u8>>,
    pub targeted: u64,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A device's acknowledgement state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Every push with `seq <= acked` was received.
    pub acked: u64,
    /// Pushes above `acked` received one by one, sorted.
    pub acked_above: Vec<u64>,
}

impl Cursor {
    /// Whether the device already received `seq`.
    pub fn has(&self, seq: u64) -> bool {
        seq <= self.acked || self.acked_above.binary_search(&seq).is_ok()
    }

    /// Applies an ack: the cumulative part moves forward only, explicit seqs are remembered
    /// until the cumulative part passes them.
    pub fn apply(&mut self, up_to: Option<u64>, seqs: &[u64]) {
        if let Some(up_to) = up_to {
            self.acked = self.acked.max(up_to);
        }
        self.acked_above.extend(seqs.iter().copied());
        let acked = self.acked;
        self.acked_above.retain(|s| *s > acked);
        self.acked_above.sort_unstable();
        self.acked_above.dedup();
        // Explicit acks contiguous with the cursor fold into it.
        while self.acked_above.first() == Some(&(self.acked + 1)) {
            self.acked += 1;
            self.acked_above.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_moves_forward_and_folds_explicit_acks() {
        let mut cursor = Cursor::default();
        cursor.apply(None, &[3, 2]);
        assert_eq!(cursor, Cursor { acked: 0, acked_above: vec![2, 3] });
        cursor.apply(Some(1), &[]);
        assert_eq!(cursor, Cursor { acked: 3, acked_above: vec![] });
        cursor.apply(Some(2), &[9]);
        assert_eq!(cursor, Cursor { acked: 3, acked_above: vec![9] }, "never moves back");
        assert!(cursor.has(1) && cursor.has(9) && !cursor.has(4));
    }
}
