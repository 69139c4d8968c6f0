//! The push report page: the funnel per platform with rates, the per-minute timeline (redrawn
//! while the push is still being delivered), and the same numbers as CSV.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use chrono::{Duration, Utc};
use herald_core::push::PushStatus;
use herald_core::AppId;
use herald_service::reports::{self, Funnel, Minute, PushReport};
use herald_service::ServiceError;
use herald_store::PushRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audience;
use crate::frame::{page_app, Frame};
use crate::pushes::{cancellable, recallable, title};
use crate::session::Session;
use crate::{ConsoleError, ConsoleHost};

/// After a push is done, receipts still arrive as devices come online: the page keeps
/// refreshing itself for this long.
const LIVE_AFTER_DONE_MINUTES: i64 = 30;

#[derive(Deserialize)]
pub struct ReportQuery {
    app: Option<AppId>,
    push: String,
    /// `body`: only the part that refreshes.
    #[serde(default)]
    part: String,
}

/// One column of the funnel table: all platforms, or one.
pub struct Column {
    pub name: String,
    pub funnel: Funnel,
}

impl Column {
    pub fn vendor_failed(&self) -> u64 {
        self.funnel.vendor_failed_total()
    }

    pub fn delivery_rate(&self) -> String {
        percent(self.funnel.delivery_rate)
    }

    pub fn open_rate(&self) -> String {
        percent(self.funnel.open_rate)
    }
}

fn percent(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

/// What refreshes: status, funnel, timeline.
pub struct ReportBody {
    pub app: AppId,
    pub push_id: String,
    pub status: &'static str,
    pub live: bool,
    pub columns: Vec<Column>,
    /// Vendor failures by reason, all platforms.
    pub failures: Vec<(String, u64)>,
    /// uPlot's data: `[[unix seconds...], [delivered...], [opened...]]`.
    pub timeline: String,
    pub minutes: usize,
    /// The actions refresh with the numbers: a push that finished can no longer be cancelled.
    pub cancellable: bool,
    pub recallable: bool,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    frame: Frame,
    body: ReportBody,
    audience: String,
    title: String,
    created: String,
    push_at: String,
    recalled: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "report_body.html")]
struct ReportFragment {
    body: ReportBody,
}

pub async fn page<S: ConsoleHost>(
    State(state): State<S>,
    session: Session,
    Query(query): Query<ReportQuery>,
) -> Result<Html<String>, ConsoleError> {
    let app = page_app(&state, &session, query.app).await?;
    let service = state.service();
    let push = service.store.push(app.id, &query.push).await.map_err(ServiceError::from)?;
    let report = reports::push_report(service, app.id, &query.push).await?;
    let body = report_body(app.id, &push, report, &session.csrf);
    if query.part == "body" {
        return Ok(Html(ReportFragment { body }.render()?));
    }
    let audience = serde_json::from_str(&push.audience).unwrap_or(Value::Null);
    let page = ReportPage {
        frame: Frame::new(&session, Some(&app), "pushes"),
        body,
        audience: audience::summary(&audience),
        title: title(&push),
        created: push.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        push_at: push.push_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        recalled: push.recalled_at.map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        error: push.error.clone(),
    };
    Ok(Html(page.render()?))
}

fn report_body(app: AppId, push: &PushRecord, report: PushReport, csrf: &str) -> ReportBody {
    let mut columns = vec![Column { name: "All platforms".into(), funnel: report.totals.clone() }];
    columns.extend(report.platforms.into_iter().map(|(name, funnel)| Column { name, funnel }));
    let failures = report.totals.vendor_failed.into_iter().collect();
    let (times, delivered, opened) = every_minute(&report.timeline);
    ReportBody {
        app,
        push_id: report.push_id,
        status: report.status.as_str(),
        live: is_live(push),
        columns,
        failures,
        timeline: json!([times, delivered, opened]).to_string(),
        minutes: report.timeline.len(),
        cancellable: cancellable(push),
        recallable: recallable(push, Utc::now()),
        csrf: csrf.to_owned(),
    }
}

/// Longest stretch of minutes charted; a push's first day, at most.
const MAX_MINUTES: i64 = 24 * 60;

/// The timeline with the minutes that had nothing (the store keeps only minutes with counts)
/// and the minute before the first, so that the chart shows quiet minutes as zero.
fn every_minute(timeline: &[Minute]) -> (Vec<i64>, Vec<u64>, Vec<u64>) {
    let (Some(first), Some(last)) = (timeline.first(), timeline.last()) else {
        return Default::default();
    };
    let start = first.minute.timestamp() - 60;
    let end = last.minute.timestamp().min(start + MAX_MINUTES * 60);
    let mut series = (Vec::new(), Vec::new(), Vec::new());
    let mut counts = timeline.iter().peekable();
    for at in (start..=end).step_by(60) {
        let here = counts.next_if(|m| m.minute.timestamp() == at);
        series.0.push(at);
        series.1.push(here.map_or(0, |m| m.delivered));
        series.2.push(here.map_or(0, |m| m.opened));
    }
    series
}

/// Whether the numbers may still change soon: dispatch runs, or it ended a short while ago.
fn is_live(push: &PushRecord) -> bool {
    match push.status {
        PushStatus::Scheduled | PushStatus::Dispatching => true,
        PushStatus::Done => push
            .finished_at
            .is_none_or(|at| Utc::now() - at < Duration::minutes(LIVE_AFTER_DONE_MINUTES)),
        PushStatus::Cancelled | PushStatus::Failed => false,
    }
}

/// The report as CSV: one row per platform (and `all`), then the per-minute timeline.
pub async fn csv<S: ConsoleHost>(
    State(state): State<S>,
    session: Session,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ConsoleError> {
    let app = session.app_id(query.app)?;
    let report = reports::push_report(state.service(), app, &query.push).await?;
    let disposition = format!("attachment; filename=\"{}.csv\"", safe_name(&report.push_id));
    Ok((
        [(CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (CONTENT_DISPOSITION, disposition)],
        report_csv(&report),
    )
        .into_response())
}

fn safe_name(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

pub fn report_csv(report: &PushReport) -> String {
    let mut out = String::from(
        "platform,targeted,sent_online,stored_offline,vendor_sent,vendor_failed,delivered,opened,delivery_rate,open_rate\n",
    );
    let all = std::iter::once(("all", &report.totals));
    for (name, f) in all.chain(report.platforms.iter().map(|(n, f)| (n.as_str(), f))) {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{:.4},{:.4}\n",
            csv_field(name),
            f.targeted,
            f.sent_online,
            f.stored_offline,
            f.vendor_sent,
            f.vendor_failed_total(),
            f.delivered,
            f.opened,
            f.delivery_rate,
            f.open_rate
        ));
    }
    out.push_str("\nminute,delivered,opened\n");
    for minute in &report.timeline {
        out.push_str(&format!(
            "{},{},{}\n",
            minute.minute.format("%Y-%m-%dT%H:%M:%SZ"),
            minute.delivered,
            minute.opened
        ));
    }
    out
}

/// A platform name in CSV: quoted when it holds a separator, and never read as a formula.
fn csv_field(text: &str) -> String {
    let text = match text.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{text}"),
        _ => text.to_owned(),
    };
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn quiet_minutes_are_charted_as_zero() {
        let at = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
        let timeline = vec![
            Minute { minute: at(600), delivered: 3, opened: 1 },
            Minute { minute: at(780), delivered: 1, opened: 0 },
        ];
        let (times, delivered, opened) = every_minute(&timeline);
        assert_eq!(times, vec![540, 600, 660, 720, 780]);
        assert_eq!(delivered, vec![0, 3, 0, 0, 1]);
        assert_eq!(opened, vec![0, 1, 0, 0, 0]);
        assert_eq!(every_minute(&[]).0, Vec::<i64>::new());
    }

    #[test]
    fn csv_has_platforms_then_minutes() {
        let ios = Funnel { targeted: 4, delivered: 2, delivery_rate: 0.5, ..Default::default() };
        let minute = Utc::now();
        let report = PushReport {
            push_id: "p_1".into(),
            status: PushStatus::Done,
            audience: Some(4),
            totals: ios.clone(),
            platforms: BTreeMap::from([("ios".to_owned(), ios)]),
            timeline: vec![Minute { minute, delivered: 2, opened: 0 }],
        };
        let csv = report_csv(&report);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[1], "all,4,0,0,0,0,2,0,0.5000,0.0000");
        assert!(lines[2].starts_with("ios,4,"));
        assert_eq!(lines[4], "minute,delivered,opened");
        assert!(lines[5].ends_with(",2,0"));
    }

    #[test]
    fn csv_fields_cannot_become_formulas() {
        assert_eq!(csv_field("=cmd"), "'=cmd");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
