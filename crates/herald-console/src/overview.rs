//! The console's first page: the admin's list of apps, or an app's overview (devices per
//! platform, connections now, pushes today, delivery and open rates of the last 7 days).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use std::collections::BTreeMap;

use axum::http::StatusCode;
use chrono::{Duration, NaiveDate, Utc};
use herald_core::AppId;
use herald_service::reports::{self, ratio, Day};
use herald_service::{Service, ServiceError};
use herald_store::PushFilter;
use serde::Deserialize;
use serde_json::json;

use crate::frame::{page_app, Frame};
use crate::session::Session;
use crate::{ConsoleError, ConsoleHost};

#[derive(Deserialize)]
pub struct OverviewQuery {
    app: Option<AppId>,
}

/// One day of the last seven, as shown.
pub struct DayRow {
    pub day: String,
    pub pushes: u64,
    pub delivered: u64,
    pub opened: u64,
    /// Devices delivered / accounts targeted, of the pushes sent that day.
    pub delivery_rate: String,
    pub open_rate: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    frame: Frame,
    devices: Vec<(String, u64)>,
    devices_total: u64,
    online: u64,
    pushes_today: u64,
    days: Vec<DayRow>,
    /// uPlot's data: `[[unix seconds...], [delivery rate %...], [open rate %...]]`.
    chart: String,
    /// Vendor failures of the last 7 days' pushes, by reason.
    vendor_failures: Vec<(String, u64)>,
}

pub async fn page<S: ConsoleHost>(
    State(state): State<S>,
    session: Session,
    Query(query): Query<OverviewQuery>,
) -> Result<Response, ConsoleError> {
    if session.is_admin() && query.app.is_none() {
        return crate::apps::page(&state, &session, None, StatusCode::OK).await;
    }
    let app = page_app(&state, &session, query.app).await?;
    let service = state.service();
    let counts = service.store.device_counts(app.id).await.map_err(ServiceError::from)?;
    let days = every_day(reports::app_days(service, app.id, None, None).await?);
    let recent = recent(service, app.id).await?;
    let page = OverviewPage {
        frame: Frame::new(&session, Some(&app), "overview"),
        devices: counts.by_platform.into_iter().collect(),
        devices_total: counts.total,
        online: state.online_now(app.id),
        pushes_today: pushes_today(&days),
        chart: chart(&days, &recent),
        days: days.into_iter().map(|day| day_row(day, &recent)).collect(),
        vendor_failures: recent.vendor_failures.into_iter().collect(),
    };
    Ok(Html(page.render()?).into_response())
}

/// The last 7 days, each once: days without pushes have no row of their own.
fn every_day(rows: Vec<Day>) -> Vec<Day> {
    let today = Utc::now().date_naive();
    (0..7)
        .rev()
        .map(|ago| (today - Duration::days(ago)).format("%Y-%m-%d").to_string())
        .map(|day| match rows.iter().find(|row| row.day == day) {
            Some(row) => row.clone(),
            None => Day { day, pushes: 0, delivered: 0, opened: 0 },
        })
        .collect()
}

/// Days without pushes have no row: today's may be missing.
fn pushes_today(days: &[Day]) -> u64 {
    let today = Utc::now().format("%Y-%m-%d").to_string();
    days.iter().find(|d| d.day == today).map_or(0, |d| d.pushes)
}

fn day_row(day: Day, recent: &Recent) -> DayRow {
    DayRow {
        delivery_rate: percent(recent.delivery_rate(&day.day)),
        open_rate: percent(ratio(day.opened, day.delivered)),
        day: day.day,
        pushes: day.pushes,
        delivered: day.delivered,
        opened: day.opened,
    }
}

fn percent(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

/// Delivery and open rates per day, in percent.
fn chart(days: &[Day], recent: &Recent) -> String {
    let time = |d: &Day| {
        NaiveDate::parse_from_str(&d.day, "%Y-%m-%d")
            .ok()
            .and_then(|date| date.and_hms_opt(0, 0, 0))
            .map_or(0, |t| t.and_utc().timestamp())
    };
    let times: Vec<i64> = days.iter().map(time).collect();
    let delivery: Vec<f64> = days.iter().map(|d| recent.delivery_rate(&d.day) * 100.0).collect();
    let open: Vec<f64> = days.iter().map(|d| ratio(d.opened, d.delivered) * 100.0).collect();
    json!([times, delivery, open]).to_string()
}

/// Pushes of the last 7 days looked at (the newest, if there are more).
const RECENT_PUSHES: u32 = 200;

/// What the last 7 days' pushes tell beyond the day counts.
#[derive(Default)]
struct Recent {
    /// Per UTC day the pushes were sent: accounts targeted and devices delivered.
    sent_by_day: BTreeMap<String, (u64, u64)>,
    vendor_failures: BTreeMap<String, u64>,
}

impl Recent {
    fn delivery_rate(&self, day: &str) -> f64 {
        self.sent_by_day.get(day).map_or(0.0, |(targeted, delivered)| ratio(*delivered, *targeted))
    }
}

async fn recent(service: &Service, app: AppId) -> Result<Recent, ServiceError> {
    let filter = PushFilter {
        from: Some(Utc::now() - Duration::days(7)),
        limit: RECENT_PUSHES,
        ..Default::default()
    };
    let pushes = service.store.pushes_page(app, &filter).await?;
    let funnels = reports::push_totals(service, &pushes).await?;
    let mut recent = Recent::default();
    for (push, funnel) in pushes.iter().zip(funnels) {
        let day = push.started_at.unwrap_or(push.push_at).format("%Y-%m-%d").to_string();
        let sent = recent.sent_by_day.entry(day).or_default();
        sent.0 += funnel.targeted;
        sent.1 += funnel.delivered;
        for (reason, count) in funnel.vendor_failed {
            *recent.vendor_failures.entry(reason).or_default() += count;
        }
    }
    Ok(recent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_every_day_of_the_week() {
        let today = Utc::now().format("%Y-%m-%d").to_string();
        let rows = vec![Day { day: today.clone(), pushes: 2, delivered: 5, opened: 1 }];
        let days = every_day(rows);
        assert_eq!(days.len(), 7);
        assert_eq!(days.last().map(|d| (d.day.as_str(), d.pushes)), Some((today.as_str(), 2)));
        assert_eq!(days.iter().map(|d| d.pushes).sum::<u64>(), 2);
        assert_eq!(pushes_today(&days), 2);
    }
}
