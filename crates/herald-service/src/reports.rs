//! What happened to a push and to an app's days: the numbers behind the API's reports and the
//! console's charts, built in one place.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use herald_core::account::AccountId;
use herald_core::push::PushStatus;
use herald_core::AppId;
use herald_store::{PlatformReport, PushRecord};
use serde::Serialize;
use utoipa::ToSchema;

use crate::dispatch::deserialize;
use crate::{Service, ServiceError};

/// The funnel of a push on one platform (or all of them). Accounts for `targeted` and
/// `stored_offline`; devices for the rest; `delivered` and `opened` count unique devices.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct Funnel {
    /// Accounts of the audience with a device of the platform.
    pub targeted: u64,
    /// Devices that got the push over their live connection at dispatch.
    pub sent_online: u64,
    /// Accounts not online at dispatch, for whom the push waits in the inbox.
    pub stored_offline: u64,
    pub vendor_sent: u64,
    /// Vendor failures by reason.
    pub vendor_failed: BTreeMap<String, u64>,
    /// Devices that acked the push.
    pub delivered: u64,
    /// Devices on which the notification was opened.
    pub opened: u64,
    /// `delivered / targeted`.
    pub delivery_rate: f64,
    /// `opened / delivered`.
    pub open_rate: f64,
}

impl Funnel {
    fn add(&mut self, row: &PlatformReport) {
        self.targeted += row.targeted;
        self.sent_online += row.sent_online;
        self.stored_offline += row.stored_offline;
        self.vendor_sent += row.vendor_sent;
        for (reason, n) in &row.vendor_failed {
            *self.vendor_failed.entry(reason.clone()).or_default() += n;
        }
        self.delivered += deserialize(&row.delivered).len();
        self.opened += deserialize(&row.opened).len();
        self.rates();
    }

    fn rates(&mut self) {
        self.delivery_rate = ratio(self.delivered, self.targeted);
        self.open_rate = ratio(self.opened, self.delivered);
    }

    /// Vendor failures of every reason together.
    pub fn vendor_failed_total(&self) -> u64 {
        self.vendor_failed.values().sum()
    }
}

/// `a / b`, 0 when nothing was there to count.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Minute {
    pub minute: DateTime<Utc>,
    pub delivered: u64,
    pub opened: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PushReport {
    pub push_id: String,
    pub status: PushStatus,
    /// Audience size (accounts) at dispatch.
    pub audience: Option<u64>,
    /// All platforms together; `targeted` here is the audience size.
    pub totals: Funnel,
    pub platforms: BTreeMap<String, Funnel>,
    /// Deliveries and opens per minute, for charts.
    pub timeline: Vec<Minute>,
}

/// The report of one push: exact counts, also while it is still dispatching (receipts not yet
/// written are flushed first).
pub async fn push_report(
    service: &Service,
    app: AppId,
    push_id: &str,
) -> Result<PushReport, ServiceError> {
    let push = service.store.push(app, push_id).await?;
    service.receipts.flush().await;
    let rows = service.store.push_report(app, push_id).await?;
    let minutes = service.store.push_minutes(app, push_id).await?;
    let (totals, platforms) = funnels(&rows, push.targeted);
    let timeline = minutes
        .into_iter()
        .filter_map(|m| {
            let minute = DateTime::from_timestamp(m.minute.checked_mul(60)?, 0)?;
            Some(Minute { minute, delivered: m.delivered, opened: m.opened })
        })
        .collect();
    Ok(PushReport {
        push_id: push_id.to_owned(),
        status: push.status,
        audience: push.targeted,
        totals,
        platforms,
        timeline,
    })
}

/// The funnel of all platforms together (`targeted`: the audience size when known) and of each.
fn funnels(rows: &[PlatformReport], targeted: Option<u64>) -> (Funnel, BTreeMap<String, Funnel>) {
    let mut totals = Funnel::default();
    let mut platforms = BTreeMap::new();
    for row in rows {
        totals.add(row);
        platforms.entry(row.platform.clone()).or_insert_with(Funnel::default).add(row);
    }
    totals.targeted = targeted.unwrap_or(totals.targeted);
    totals.rates();
    (totals, platforms)
}

/// The all-platform funnels of a page of pushes, for lists: receipts are flushed once for all.
pub async fn push_totals(
    service: &Service,
    pushes: &[PushRecord],
) -> Result<Vec<Funnel>, ServiceError> {
    service.receipts.flush().await;
    let mut totals = Vec::with_capacity(pushes.len());
    for push in pushes {
        let rows = service.store.push_report(push.app, &push.id).await?;
        totals.push(funnels(&rows, push.targeted).0);
    }
    Ok(totals)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Day {
    pub day: String,
    /// Pushes dispatched.
    pub pushes: u64,
    /// Unique device deliveries.
    pub delivered: u64,
    pub opened: u64,
}

/// Per UTC day from `from` to `to` (default: the 7 days up to today), pushes, deliveries, opens.
pub async fn app_days(
    service: &Service,
    app: AppId,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<Day>, ServiceError> {
    let to = to.unwrap_or_else(|| Utc::now().date_naive());
    let from = from.unwrap_or(to - Duration::days(6));
    if from > to || (to - from).num_days() > 366 {
        return Err(ServiceError::InvalidRequest(
            "from must be before to, at most 366 days apart".into(),
        ));
    }
    service.receipts.flush().await;
    let format = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let rows = service.store.app_days(app, &format(from), &format(to)).await?;
    Ok(rows
        .into_iter()
        .map(|d| Day { day: d.day, pushes: d.pushes, delivered: d.delivered, opened: d.opened })
        .collect())
}

/// How far back (in app-wide seqs) the pushes a device received are looked for.
const RECENT_SEQS: u64 = 500;

/// The last pushes, newest first and at most `limit`, that the device `device_id` of account
/// `account` acknowledged among those that targeted the account (online-only pushes keep no
/// audience, so they are not among them).
pub async fn received_by(
    service: &Service,
    app: AppId,
    account: AccountId,
    device_id: &str,
    limit: usize,
) -> Result<Vec<PushRecord>, ServiceError> {
    let cursor = service.store.cursor(app, device_id).await?;
    let upto = cursor.acked_above.last().copied().unwrap_or(cursor.acked);
    if upto == 0 {
        return Ok(Vec::new());
    }
    let pushes = service.store.pushes_by_seq(app, upto.saturating_sub(RECENT_SEQS), upto).await?;
    Ok(pushes
        .into_iter()
        .rev()
        .filter(|push| push.seq.is_some_and(|seq| cursor.has(seq)))
        .filter(|push| push.recipients.as_deref().is_some_and(|r| deserialize(r).contains(account)))
        .take(limit)
        .collect())
}
