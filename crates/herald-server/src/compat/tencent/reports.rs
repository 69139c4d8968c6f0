//! `openim/im_get_push_report` and `timpush/all_member_push_statistics`, read from herald's
//! push records and exact per-platform reports.
//!
//! # Format
//!
//! ```json
//! {"TaskIds":["p_1"]}  →  {"Reports":[{"TaskId":"p_1","Status":2,"StartTime":"2024-05-01 08:00:00","Finished":3,"Total":3}]}
//! {"StartTime":1714550400,"EndTime":1714636800,"TaskID":["p_1"]}
//!   →  {"Results":[{"TaskID":"p_1","TotalCount":3,"SentCount":2,"DeliveredCount":2,"ClickCount":1,
//!                   "PlatformStatistics":[{"Platform":"ios","TotalCount":1,...}]}]}
//! ```

use chrono::{DateTime, Duration, Utc};
use herald_core::push::PushStatus;
use herald_store::{PlatformReport, PushFilter, PushRecord, StoreError};
use serde_json::{json, Value};

use super::envelope::Fields;
use super::error::TencentError;
use super::request::{self, Body};
use super::Caller;
use crate::compat::Layer;
use crate::dispatch::deserialize;

/// Most tasks one statistics call may name.
const MAX_STATISTICS_TASKS: usize = 5;
/// Most tasks one statistics call answers when it names none (newest first).
const MAX_LISTED_TASKS: u32 = 100;
/// Pages of the app's push listing one statistics call reads at most, so that an app with many
/// native pushes cannot make one call scan its whole history.
const MAX_PAGES: usize = 20;
/// Window of a statistics call without `StartTime`.
const DEFAULT_WINDOW_DAYS: i64 = 7;

/// One task by id; unknown ids are refused with 90049.
async fn task(caller: &Caller, id: &str) -> Result<PushRecord, TencentError> {
    match caller.state.store.push(caller.app.id, id).await {
        Ok(push) => Ok(push),
        Err(StoreError::NotFound { .. }) => Err(TencentError::UnknownTask(id.to_owned())),
        Err(err) => Err(TencentError::Api(err.into())),
    }
}

/// Tencent's task status: 0 not started, 1 pushing, 2 finished (cancelled and failed pushes
/// are finished too; their `Finished` count is 0).
fn status(status: PushStatus) -> u8 {
    match status {
        PushStatus::Scheduled => 0,
        PushStatus::Dispatching => 1,
        PushStatus::Done | PushStatus::Cancelled | PushStatus::Failed => 2,
    }
}

/// Times as Tencent shows them; herald answers in UTC.
fn format_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Handle `POST /v4/openim/im_get_push_report`.
pub async fn push_report_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    let ids = request::distinct(&request::accounts(body, "TaskIds")?);
    let mut reports = Vec::with_capacity(ids.len());
    for id in ids {
        let push = task(caller, &id).await?;
        let total = push.targeted.unwrap_or_default();
        // A done push has put every recipient's copy online or in the inbox.
        let finished = if push.status == PushStatus::Done { total } else { 0 };
        reports.push(json!({
            "TaskId": id,
            "Status": status(push.status),
            "StartTime": format_time(push.started_at.unwrap_or(push.push_at)),
            "Finished": finished,
            "Total": total,
        }));
    }
    let mut fields = Fields::new();
    fields.insert("Reports".into(), json!(reports));
    Ok(fields)
}

/// Unix seconds, as a number or a numeric string, within the calendar less the default window
/// at its start and a second at its end: the window arithmetic below panics past them.
fn unix_time(body: &Body, field: &str) -> Result<Option<DateTime<Utc>>, TencentError> {
    let secs = match body.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    };
    let shiftable = |at: &DateTime<Utc>| {
        at.checked_sub_signed(Duration::days(DEFAULT_WINDOW_DAYS)).is_some()
            && at.checked_add_signed(Duration::seconds(1)).is_some()
    };
    secs.and_then(|secs| DateTime::from_timestamp(secs, 0))
        .filter(shiftable)
        .map(Some)
        .ok_or_else(|| request::invalid(format!("{field} must be Unix seconds")))
}

/// The tasks a statistics call is about: those it names, else the layer's pushes created
/// between `StartTime` and `EndTime`.
async fn statistics_tasks(caller: &Caller, body: &Body) -> Result<Vec<PushRecord>, TencentError> {
    let StatisticsQuery { named, start, end } = StatisticsQuery::read(body, Utc::now())?;
    if !named.is_empty() {
        let mut tasks = Vec::with_capacity(named.len());
        for id in &named {
            tasks.push(task(caller, id).await?);
        }
        return Ok(tasks);
    }
    let mut filter = PushFilter {
        from: Some(start),
        to: Some(end + Duration::seconds(1)),
        limit: MAX_LISTED_TASKS,
        ..PushFilter::default()
    };
    // The listing holds every push of the app; the layer's are picked out page by page.
    let mut tasks = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = caller
            .state
            .store
            .pushes_page(caller.app.id, &filter)
            .await
            .map_err(|err| TencentError::Api(err.into()))?;
        let last_page = page.len() < MAX_LISTED_TASKS as usize;
        filter.after = page.last().map(|p| p.id.clone());
        tasks.extend(page.into_iter().filter(|p| p.source == Layer::Tencent.as_str()));
        if last_page || tasks.len() >= MAX_LISTED_TASKS as usize {
            break;
        }
    }
    tasks.truncate(MAX_LISTED_TASKS as usize);
    Ok(tasks)
}

/// What a statistics call asks about: the tasks it names, else the window of creation times.
pub struct StatisticsQuery {
    pub named: Vec<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl StatisticsQuery {
    /// Reads `TaskID`, `StartTime` and `EndTime`; the window ends at `now` unless given.
    pub fn read(body: &Body, now: DateTime<Utc>) -> Result<Self, TencentError> {
        let named = match body.get("TaskID") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => {
                let ids: Vec<String> = ids
                    .iter()
                    .map(|id| request::account(id, "TaskID"))
                    .collect::<Result<_, _>>()?;
                request::distinct(&ids)
            }
            Some(_) => return Err(request::invalid("TaskID must be an array".into())),
        };
        if named.len() > MAX_STATISTICS_TASKS {
            return Err(request::invalid(format!(
                "TaskID names {} tasks, at most {MAX_STATISTICS_TASKS}",
                named.len()
            )));
        }
        let end = unix_time(body, "EndTime")?.unwrap_or(now);
        let start =
            unix_time(body, "StartTime")?.unwrap_or(end - Duration::days(DEFAULT_WINDOW_DAYS));
        if start > end {
            return Err(request::invalid("StartTime is after EndTime".into()));
        }
        Ok(Self { named, start, end })
    }
}

/// Counts of one platform row, or of all rows added up.
#[derive(Default)]
struct Counts {
    total: u64,
    sent: u64,
    delivered: u64,
    clicked: u64,
}

impl Counts {
    fn add(&mut self, row: &PlatformReport) {
        self.total += row.targeted;
        self.sent += row.sent_online + row.vendor_sent;
        self.delivered += deserialize(&row.delivered).len();
        self.clicked += deserialize(&row.opened).len();
    }
}

/// Handle `POST /v4/timpush/all_member_push_statistics`.
pub async fn statistics_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    let tasks = statistics_tasks(caller, body).await?;
    // Deliveries and opens are batched in memory; the answer must include the latest.
    caller.state.receipts.flush().await;
    let mut results = Vec::with_capacity(tasks.len());
    for push in tasks {
        let rows = caller
            .state
            .store
            .push_report(caller.app.id, &push.id)
            .await
            .map_err(|err| TencentError::Api(err.into()))?;
        let mut totals = Counts::default();
        let mut platforms = Vec::with_capacity(rows.len());
        // Platforms the push did not reach at all are left out.
        let reached = rows.iter().filter(|row| {
            row.targeted + row.sent_online + row.vendor_sent > 0
                || !deserialize(&row.delivered).is_empty()
        });
        for row in reached {
            totals.add(row);
            let mut one = Counts::default();
            one.add(row);
            platforms.push(json!({
                "Platform": row.platform,
                "TotalCount": one.total,
                "SentCount": one.sent,
                "DeliveredCount": one.delivered,
                "ClickCount": one.clicked,
            }));
        }
        results.push(json!({
            "TaskID": push.id,
            // The audience counts accounts; the platform rows count accounts per platform.
            "TotalCount": push.targeted.unwrap_or(totals.total),
            "SentCount": totals.sent,
            "DeliveredCount": totals.delivered,
            "ClickCount": totals.clicked,
            "PlatformStatistics": platforms,
        }));
    }
    let mut fields = Fields::new();
    fields.insert("Results".into(), json!(results));
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_tencent() {
        assert_eq!(status(PushStatus::Scheduled), 0);
        assert_eq!(status(PushStatus::Dispatching), 1);
        assert_eq!(status(PushStatus::Done), 2);
        assert_eq!(status(PushStatus::Cancelled), 2);
    }

    #[test]
    fn times_at_the_ends_of_the_calendar_are_refused() {
        // `EndTime` at the calendar's first second made the default window start before it,
        // and at its last second the listing's end bound after it: both panicked in chrono.
        let first = DateTime::<Utc>::MIN_UTC.timestamp();
        let last = DateTime::<Utc>::MAX_UTC.timestamp();
        for body in [
            json!({"EndTime": first}),
            json!({"StartTime": 0, "EndTime": last}),
            json!({"StartTime": first.to_string(), "EndTime": 0}),
        ] {
            let body = body.as_object().cloned().unwrap_or_default();
            let err = StatisticsQuery::read(&body, Utc::now()).err();
            assert_eq!(err.map(|e| e.code()), Some(70402), "{body:?}");
        }
        let body = json!({"StartTime": first + 7 * 86_400, "EndTime": last - 1});
        let query = StatisticsQuery::read(body.as_object().unwrap_or(&Body::new()), Utc::now());
        assert!(query.is_ok());
    }

    #[test]
    fn times_are_formatted_like_tencent() {
        let at = DateTime::from_timestamp(1_714_550_400, 0).unwrap_or_default();
        assert_eq!(format_time(at), "2024-05-01 08:00:00");
    }
}
