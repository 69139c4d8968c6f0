//! Signed `/v1` routes with what happened: a push's report, an app's days.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use herald_core::push::PushStatus;
use herald_store::PlatformReport;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::CallingApp;
use crate::dispatch::deserialize;
use crate::error::{ApiErrorKind, ApiResult};
use crate::routes::docs::ErrorBody;
use crate::state::AppState;

/// The funnel of a push on one platform (or all of them). Accounts for `targeted` and
/// `stored_offline`; devices for the rest; `delivered` and `opened` count unique devices.
#[derive(Debug, Default, Serialize, ToSchema)]
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
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        self.delivery_rate = ratio(self.delivered, self.targeted);
        self.open_rate = ratio(self.opened, self.delivered);
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Minute {
    pub minute: DateTime<Utc>,
    pub delivered: u64,
    pub opened: u64,
}

#[derive(Debug, Serialize, ToSchema)]
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

/// Handle the `GET /v1/pushes/{push_id}/report` route: exact counts, also while the push is
/// still dispatching.
#[utoipa::path(get, path = "/v1/pushes/{push_id}/report", tag = "reports", security(("signature" = [])),
    params(("push_id" = String, Path)),
    responses((status = 200, body = PushReport), (status = 404, body = ErrorBody)))]
pub async fn push_report_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(push_id): Path<String>,
) -> ApiResult<Json<PushReport>> {
    let push = state.store.push(app.id, &push_id).await?;
    state.receipts.flush().await;
    let rows = state.store.push_report(app.id, &push_id).await?;
    let minutes = state.store.push_minutes(app.id, &push_id).await?;
    let mut totals = Funnel::default();
    let mut platforms = BTreeMap::new();
    for row in &rows {
        totals.add(row);
        platforms.entry(row.platform.clone()).or_insert_with(Funnel::default).add(row);
    }
    totals.targeted = push.targeted.unwrap_or(totals.targeted);
    totals.rates();
    let timeline = minutes
        .into_iter()
        .filter_map(|m| {
            let minute = DateTime::from_timestamp(m.minute.checked_mul(60)?, 0)?;
            Some(Minute { minute, delivered: m.delivered, opened: m.opened })
        })
        .collect();
    Ok(Json(PushReport {
        push_id,
        status: push.status,
        audience: push.targeted,
        totals,
        platforms,
        timeline,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DaysQuery {
    /// First day, `YYYY-MM-DD` (UTC); default 6 days before `to`.
    pub from: Option<NaiveDate>,
    /// Last day, `YYYY-MM-DD` (UTC); default today.
    pub to: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Day {
    pub day: String,
    /// Pushes dispatched.
    pub pushes: u64,
    /// Unique device deliveries.
    pub delivered: u64,
    pub opened: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Days {
    pub days: Vec<Day>,
}

/// Handle the `GET /v1/stats/days` route: per UTC day, pushes, deliveries, opens.
#[utoipa::path(get, path = "/v1/stats/days", tag = "reports", security(("signature" = [])),
    params(DaysQuery), responses((status = 200, body = Days), (status = 400, body = ErrorBody)))]
pub async fn days_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    query: Result<Query<DaysQuery>, QueryRejection>,
) -> ApiResult<Json<Days>> {
    let Query(query) = query.map_err(|err| ApiErrorKind::InvalidRequest(err.body_text()))?;
    let to = query.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = query.from.unwrap_or(to - Duration::days(6));
    if from > to || (to - from).num_days() > 366 {
        return Err(ApiErrorKind::InvalidRequest(
            "from must be before to, at most 366 days apart".into(),
        )
        .into());
    }
    state.receipts.flush().await;
    let format = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let rows = state.store.app_days(app.id, &format(from), &format(to)).await?;
    let days = rows
        .into_iter()
        .map(|d| Day { day: d.day, pushes: d.pushes, delivered: d.delivered, opened: d.opened })
        .collect();
    Ok(Json(Days { days }))
}
