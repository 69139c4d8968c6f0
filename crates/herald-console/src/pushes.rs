//! The pushes page: an app's pushes with their status and funnel totals, filtered by status,
//! time range and text; cancel and recall.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use herald_core::push::PushStatus;
use herald_core::AppId;
use herald_service::reports::{self, Funnel};
use herald_service::{Service, ServiceError};
use herald_store::{PushFilter, PushRecord};
use serde::Deserialize;
use serde_json::Value;

use crate::audience;
use crate::form::Checked;
use crate::frame::{page_app, see_other, Frame};
use crate::session::Session;
use crate::{ConsoleError, ConsoleHost};

/// Pushes on one page of the list.
const PAGE_SIZE: u32 = 25;
/// How long after sending a push can be recalled (as the dispatcher enforces).
const RECALL_WINDOW_HOURS: i64 = 24;

#[derive(Deserialize, Default)]
pub struct PushesQuery {
    app: Option<AppId>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

/// One row of the list.
pub struct PushRow {
    pub id: String,
    pub status: &'static str,
    pub when: String,
    pub audience: String,
    pub title: String,
    pub targeted: u64,
    pub delivered: u64,
    pub opened: u64,
    pub cancellable: bool,
    pub recallable: bool,
    pub recalled: bool,
}

#[derive(Template)]
#[template(path = "pushes.html")]
struct PushesPage {
    frame: Frame,
    rows: Vec<PushRow>,
    status: String,
    from: String,
    to: String,
    q: String,
    statuses: [&'static str; 5],
    /// Query string of the next page, if any.
    next: Option<String>,
    error: Option<String>,
}

pub async fn page<S: ConsoleHost>(
    State(state): State<S>,
    session: Session,
    Query(query): Query<PushesQuery>,
) -> Result<Html<String>, ConsoleError> {
    let app = page_app(&state, &session, query.app).await?;
    let frame = Frame::new(&session, Some(&app), "pushes");
    let (filter, error) = match filter(&query) {
        Ok(filter) => (filter, None),
        Err(message) => (PushFilter { limit: PAGE_SIZE, ..Default::default() }, Some(message)),
    };
    let service = state.service();
    let (pushes, last) = matching(service, app.id, filter, &query.q).await?;
    let next = last.map(|id| next_page(&query, app.id, &id));
    let totals = reports::push_totals(service, &pushes).await?;
    let rows = pushes.iter().zip(&totals).map(|(push, funnel)| row(push, funnel)).collect();
    let page = PushesPage {
        frame,
        rows,
        status: query.status,
        from: query.from,
        to: query.to,
        q: query.q,
        statuses: ["scheduled", "dispatching", "done", "cancelled", "failed"],
        next,
        error,
    };
    Ok(Html(page.render()?))
}

/// Store pages read at most for one page of a text search.
const MAX_SCANNED_PAGES: usize = 20;

/// A page of pushes that match the text too (the store filters by status and time only: the
/// text is matched here, reading further pages until one is full); with the last push id
/// read, to continue from, when there may be more.
async fn matching(
    service: &Service,
    app: AppId,
    mut filter: PushFilter,
    text: &str,
) -> Result<(Vec<PushRecord>, Option<String>), ServiceError> {
    let mut found = Vec::new();
    for _ in 0..MAX_SCANNED_PAGES {
        let page = service.store.pushes_page(app, &filter).await?;
        let full = page.len() == PAGE_SIZE as usize;
        let last = page.last().map(|p| p.id.clone());
        for push in page.into_iter().filter(|p| matches_text(p, text)) {
            found.push(push);
        }
        if !full {
            return Ok((found, None));
        }
        if found.len() >= PAGE_SIZE as usize {
            return Ok((found, last));
        }
        filter.after = last;
    }
    let last = filter.after.clone();
    Ok((found, last))
}

fn filter(query: &PushesQuery) -> Result<PushFilter, String> {
    let status = match query.status.as_str() {
        "" => None,
        other => Some(
            serde_json::from_value::<PushStatus>(Value::String(other.to_owned()))
                .map_err(|_| format!("unknown status {other:?}"))?,
        ),
    };
    Ok(PushFilter {
        status,
        from: day_start(&query.from)?,
        // The `to` day is included: pushes created before the next day's start.
        to: day_start(&query.to)?.map(|day| day + Duration::days(1)),
        after: Some(query.after.clone()).filter(|a| !a.is_empty()),
        limit: PAGE_SIZE,
    })
}

/// `YYYY-MM-DD` (a date input) to that day's start in UTC.
fn day_start(day: &str) -> Result<Option<DateTime<Utc>>, String> {
    if day.is_empty() {
        return Ok(None);
    }
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| format!("{day:?} is not a date (YYYY-MM-DD)"))?;
    Ok(date.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
}

fn next_page(query: &PushesQuery, app: AppId, last: &str) -> String {
    let pairs = [
        ("app", app.to_string()),
        ("status", query.status.clone()),
        ("from", query.from.clone()),
        ("to", query.to.clone()),
        ("q", query.q.clone()),
        ("after", last.to_owned()),
    ];
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// The text filter looks at what the operator sees: id, audience, texts, sender.
fn matches_text(push: &PushRecord, text: &str) -> bool {
    let text = text.trim().to_lowercase();
    text.is_empty()
        || [
            push.id.as_str(),
            push.audience.as_str(),
            push.notification.as_deref().unwrap_or_default(),
            push.message.as_str(),
            push.sender.as_deref().unwrap_or_default(),
        ]
        .iter()
        .any(|field| field.to_lowercase().contains(&text))
}

fn row(push: &PushRecord, funnel: &Funnel) -> PushRow {
    let audience = serde_json::from_str(&push.audience).unwrap_or(Value::Null);
    PushRow {
        id: push.id.clone(),
        status: push.status.as_str(),
        when: push.started_at.unwrap_or(push.push_at).format("%Y-%m-%d %H:%M UTC").to_string(),
        audience: audience::summary(&audience),
        title: title(push),
        targeted: funnel.targeted,
        delivered: funnel.delivered,
        opened: funnel.opened,
        cancellable: cancellable(push),
        recallable: recallable(push, Utc::now()),
        recalled: push.recalled_at.is_some(),
    }
}

/// The notification's title, or the start of the message for silent pushes.
pub fn title(push: &PushRecord) -> String {
    let notification: Value =
        push.notification.as_deref().and_then(|n| serde_json::from_str(n).ok()).unwrap_or_default();
    match notification["title"].as_str().or(notification["body"].as_str()) {
        Some(text) => text.to_owned(),
        None => push.message.chars().take(60).collect(),
    }
}

pub fn cancellable(push: &PushRecord) -> bool {
    matches!(push.status, PushStatus::Scheduled | PushStatus::Dispatching)
}

pub fn recallable(push: &PushRecord, now: DateTime<Utc>) -> bool {
    let sent_recently =
        push.started_at.is_some_and(|at| now - at < Duration::hours(RECALL_WINDOW_HOURS));
    push.recalled_at.is_none()
        && matches!(push.status, PushStatus::Dispatching | PushStatus::Done)
        && sent_recently
}

/// What the operator can do to a push from the list or its report.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A scheduled push is not sent; a dispatching one stops.
    Cancel,
    /// A sent push leaves the offline inboxes; online devices are told to remove it.
    Recall,
}

#[derive(Deserialize)]
pub struct PushAction {
    app: Option<AppId>,
    push: String,
    action: Action,
    /// Where to go back to: the list or the report.
    #[serde(default)]
    back: String,
}

/// Cancels or recalls a push through the dispatcher, as the API does.
pub async fn act<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<PushAction>,
) -> Result<Response, ConsoleError> {
    let app = session.app_id(form.app)?;
    let dispatcher = &state.service().dispatcher;
    match form.action {
        Action::Cancel => dispatcher.cancel(app, &form.push).await.map(drop)?,
        Action::Recall => dispatcher.recall(app, &form.push).await.map(drop)?,
    }
    Ok(see_other(&back(&form, app)))
}

fn back(form: &PushAction, app: AppId) -> String {
    let push = serde_urlencoded::to_string([("push", &form.push)]).unwrap_or_default();
    match form.back.as_str() {
        "report" => format!("report?app={app}&{push}"),
        _ => format!("pushes?app={app}"),
    }
}
