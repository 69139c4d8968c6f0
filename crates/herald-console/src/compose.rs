//! Compose: the audience builder with a live estimate per platform, the notification and its
//! previews, the custom message, delivery options; a test send to one account, then the push.
//! Every refusal of the service is shown beside the field it concerns.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{NaiveDateTime, Utc};
use herald_core::push::{AndroidNotification, IosNotification, Notification, PushContent};
use herald_core::{App, AppId};
use herald_service::directory::{self, Estimate};
use herald_service::pushes::{self, PushRequest, PushSource};
use herald_service::ServiceError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audience::{self, AudienceFields};
use crate::error::service_status;
use crate::form::Checked;
use crate::frame::{page_app, see_other, Frame};
use crate::session::Session;
use crate::{ConsoleError, ConsoleHost};

/// Above this many accounts, sending needs the typed confirmation, as for everyone.
pub const CONFIRM_ABOVE: u64 = 10_000;
/// What the operator types to confirm a push to everyone or to a large audience.
pub const CONFIRM_WORD: &str = "SEND";

/// The compose form as posted; every field is text so that what was typed comes back as typed.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ComposeForm {
    pub app: Option<AppId>,
    /// `everyone` or `builder`.
    pub audience: String,
    pub tags_all: String,
    pub tags_any: String,
    pub tags_none: String,
    pub attributes: String,
    pub platform: String,
    pub package: String,
    pub accounts: String,
    pub title: String,
    pub body: String,
    pub ios_title: String,
    pub ios_body: String,
    pub android_title: String,
    pub android_body: String,
    pub message: String,
    pub sender: String,
    /// `offline` (stored for offline devices) or `online` (online only).
    pub delivery: String,
    pub ttl_secs: String,
    /// `now` or `at`.
    pub when: String,
    /// `YYYY-MM-DDTHH:MM`, UTC (a datetime-local input).
    pub push_at: String,
    pub test_account: String,
    pub confirm: String,
}

/// Messages by form field (`general` for what concerns no field).
pub type FieldErrors = BTreeMap<&'static str, String>;

#[derive(Template)]
#[template(path = "compose.html")]
struct ComposePage {
    frame: Frame,
    form: ComposeForm,
    errors: FieldErrors,
    notice: Option<Notice>,
    confirm_word: &'static str,
    confirm_above: u64,
    max_ttl: u32,
    /// Platforms to choose from: those the app has devices of, and the usual ones.
    platforms: Vec<String>,
}

/// A line above the form after a test send.
pub struct Notice {
    pub text: String,
    pub push_id: String,
}

/// The estimate as shown: total, per platform, without a device.
pub struct EstimateView {
    pub total: u64,
    pub by_platform: Vec<(String, u64)>,
    pub without_device: u64,
    pub needs_confirm: bool,
}

impl EstimateView {
    fn new(estimate: Estimate, everyone: bool) -> Self {
        Self {
            total: estimate.total,
            by_platform: estimate.by_platform.into_iter().collect(),
            without_device: estimate.without_device,
            needs_confirm: everyone || estimate.total > CONFIRM_ABOVE,
        }
    }
}

#[derive(Template)]
#[template(path = "estimate.html")]
struct EstimateFragment {
    estimate: Option<EstimateView>,
    error: Option<String>,
    confirm_word: &'static str,
}

#[derive(Deserialize)]
pub struct ComposeQuery {
    app: Option<AppId>,
}

pub async fn page<S: ConsoleHost>(
    State(state): State<S>,
    session: Session,
    Query(query): Query<ComposeQuery>,
) -> Result<Response, ConsoleError> {
    let app = page_app(&state, &session, query.app).await?;
    let form = ComposeForm {
        app: Some(app.id),
        audience: "builder".into(),
        delivery: "offline".into(),
        when: "now".into(),
        ..Default::default()
    };
    render(&state, &session, &app, form, FieldErrors::new(), None, StatusCode::OK).await
}

async fn render<S: ConsoleHost>(
    state: &S,
    session: &Session,
    app: &App,
    form: ComposeForm,
    errors: FieldErrors,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, ConsoleError> {
    let counts = state.service().store.device_counts(app.id).await.map_err(ServiceError::from)?;
    let mut platforms: Vec<String> = counts.by_platform.into_keys().collect();
    for usual in ["android", "ios"] {
        if !platforms.iter().any(|p| p == usual) {
            platforms.push(usual.to_owned());
        }
    }
    platforms.sort();
    let page = ComposePage {
        platforms,
        frame: Frame::new(session, Some(app), "compose"),
        form,
        errors,
        notice,
        confirm_word: CONFIRM_WORD,
        confirm_above: CONFIRM_ABOVE,
        max_ttl: app.limits.max_offline_ttl_secs,
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// The live estimate while the audience is edited (an htmx fragment).
pub async fn estimate<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<ComposeForm>,
) -> Result<Html<String>, ConsoleError> {
    let app = page_app(&state, &session, form.app).await?;
    let (estimate, error) = match estimate_of(&state, &app, &form).await {
        Ok(estimate) => (Some(estimate), None),
        Err(errors) => (None, errors.into_values().next()),
    };
    Ok(Html(EstimateFragment { estimate, error, confirm_word: CONFIRM_WORD }.render()?))
}

async fn estimate_of<S: ConsoleHost>(
    state: &S,
    app: &App,
    form: &ComposeForm,
) -> Result<EstimateView, FieldErrors> {
    let audience = audience_of(form)?;
    let estimate = directory::estimate(&state.service().directory, app, &audience).await;
    estimate.map(|e| EstimateView::new(e, is_everyone(form))).map_err(|err| field_error(&err))
}

/// One push to one account with the same content, to see it on a real device first.
pub async fn test_send<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<ComposeForm>,
) -> Result<Response, ConsoleError> {
    let app = page_app(&state, &session, form.app).await?;
    let account = form.test_account.trim().to_owned();
    if account.is_empty() {
        let errors = FieldErrors::from([("test_account", "name the account to test with".into())]);
        return render(
            &state,
            &session,
            &app,
            form,
            errors,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let request = content_of(&app, &form).map(|(content, _)| PushRequest {
        source: PushSource::Native,
        audience: json!({"accounts": [account]}),
        content,
        push_at: None,
    });
    let accepted = match request {
        Ok(request) => {
            pushes::accept(state.service(), &app, request).await.map_err(|e| field_error(&e))
        }
        Err(errors) => Err(errors),
    };
    match accepted {
        Ok((push, _)) => {
            let text = format!("Test push sent to {account}.");
            let notice = Some(Notice { text, push_id: push.id });
            render(&state, &session, &app, form, FieldErrors::new(), notice, StatusCode::OK).await
        }
        Err(errors) => {
            render(&state, &session, &app, form, errors, None, StatusCode::UNPROCESSABLE_ENTITY)
                .await
        }
    }
}

/// Sends (or schedules) the push, then shows its report.
pub async fn send<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<ComposeForm>,
) -> Result<Response, ConsoleError> {
    let app = page_app(&state, &session, form.app).await?;
    match accept(&state, &app, &form).await {
        Ok(push_id) => {
            let push = serde_urlencoded::to_string([("push", push_id)]).unwrap_or_default();
            Ok(see_other(&format!("report?app={}&{push}", app.id)))
        }
        Err((errors, status)) => render(&state, &session, &app, form, errors, None, status).await,
    }
}

async fn accept<S: ConsoleHost>(
    state: &S,
    app: &App,
    form: &ComposeForm,
) -> Result<String, (FieldErrors, StatusCode)> {
    let invalid = |errors| (errors, StatusCode::UNPROCESSABLE_ENTITY);
    let audience = audience_of(form).map_err(invalid)?;
    let (content, push_at) = content_of(app, form).map_err(invalid)?;
    let estimate = estimate_of(state, app, form).await.map_err(invalid)?;
    if estimate.needs_confirm && form.confirm.trim() != CONFIRM_WORD {
        let message = format!(
            "this push reaches {} accounts: type {CONFIRM_WORD} to confirm",
            estimate.total
        );
        return Err(invalid(FieldErrors::from([("confirm", message)])));
    }
    let request = PushRequest { source: PushSource::Native, audience, content, push_at };
    match pushes::accept(state.service(), app, request).await {
        Ok((push, _)) => Ok(push.id),
        Err(err) => Err((field_error(&err), service_status(&err))),
    }
}

fn is_everyone(form: &ComposeForm) -> bool {
    form.audience == "everyone"
}

fn audience_of(form: &ComposeForm) -> Result<Value, FieldErrors> {
    let fields = AudienceFields {
        everyone: is_everyone(form),
        tags_all: &form.tags_all,
        tags_any: &form.tags_any,
        tags_none: &form.tags_none,
        attributes: &form.attributes,
        platform: &form.platform,
        package: &form.package,
        accounts: &form.accounts,
    };
    audience::build(&fields).map_err(|err| FieldErrors::from([("audience", err.to_string())]))
}

/// The push's content and time from the form; every problem found, by field.
fn content_of(
    app: &App,
    form: &ComposeForm,
) -> Result<(PushContent, Option<chrono::DateTime<Utc>>), FieldErrors> {
    let mut errors = FieldErrors::new();
    let message = match form.message.trim() {
        "" => Value::Null,
        text => serde_json::from_str(text).unwrap_or_else(|err| {
            errors.insert("message", format!("not valid JSON: {err}"));
            Value::Null
        }),
    };
    let online_only = form.delivery == "online";
    let ttl = match form.ttl_secs.trim() {
        "" => None,
        text => text.parse::<u32>().map(Some).unwrap_or_else(|_| {
            errors.insert("ttl_secs", "seconds, a whole number".into());
            None
        }),
    };
    let ttl_secs = pushes::offline_ttl(app, online_only, ttl.filter(|_| !online_only))
        .unwrap_or_else(|err| {
            errors.insert("ttl_secs", err.to_string());
            0
        });
    let push_at = push_time(form).unwrap_or_else(|message| {
        errors.insert("push_at", message);
        None
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    let content = PushContent {
        message,
        notification: notification(form),
        sender: Some(form.sender.trim().to_owned()).filter(|s| !s.is_empty()),
        platforms: None,
        ttl_secs,
        idempotency_key: None,
        vendor_push: true,
    };
    content.check(&app.limits).map_err(|err| field_error(&err.into()))?;
    Ok((content, push_at))
}

fn push_time(form: &ComposeForm) -> Result<Option<chrono::DateTime<Utc>>, String> {
    if form.when != "at" {
        return Ok(None);
    }
    NaiveDateTime::parse_from_str(form.push_at.trim(), "%Y-%m-%dT%H:%M")
        .map(|at| Some(at.and_utc()))
        .map_err(|_| "choose a date and time (UTC)".into())
}

fn text(field: &str) -> Option<String> {
    Some(field.trim().to_owned()).filter(|t| !t.is_empty())
}

fn notification(form: &ComposeForm) -> Option<Notification> {
    let ios = (text(&form.ios_title).is_some() || text(&form.ios_body).is_some()).then(|| {
        IosNotification {
            title: text(&form.ios_title),
            body: text(&form.ios_body),
            ..Default::default()
        }
    });
    let android =
        (text(&form.android_title).is_some() || text(&form.android_body).is_some()).then(|| {
            AndroidNotification {
                title: text(&form.android_title),
                body: text(&form.android_body),
                ..Default::default()
            }
        });
    let notification = Notification {
        title: text(&form.title),
        body: text(&form.body),
        image: None,
        ios,
        android,
    };
    (notification != Notification::default()).then_some(notification)
}

/// The form field a refusal of the service concerns.
pub fn field_error(err: &ServiceError) -> FieldErrors {
    let field = match err {
        ServiceError::LimitExceeded(breach) => field_of_limit(breach.limit),
        ServiceError::InvalidAudience(_) => "audience",
        ServiceError::RateLimited { .. } => "general",
        ServiceError::InvalidRequest(message) => field_of_message(message),
        _ => "general",
    };
    FieldErrors::from([(field, err.to_string())])
}

fn field_of_limit(limit: &str) -> &'static str {
    match limit {
        "message_bytes" => "message",
        "max_offline_ttl_secs" => "ttl_secs",
        "title" => "title",
        "body" => "body",
        "ios.title" => "ios_title",
        "ios.body" => "ios_body",
        "android.title" => "android_title",
        "android.body" => "android_body",
        "sender" | "account" => "sender",
        "accounts_per_push"
        | "audience_depth"
        | "audience_nodes"
        | "tag_bytes"
        | "attribute_value_bytes" => "audience",
        _ => "general",
    }
}

fn field_of_message(message: &str) -> &'static str {
    if message.contains("message or a notification") {
        "title"
    } else if message.contains("sender") || message.contains("account") {
        "sender"
    } else {
        "general"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::LimitBreach;

    #[test]
    fn limit_errors_land_on_their_field() {
        let breach = LimitBreach { limit: "message_bytes", value: 10, actual: 11 };
        let errors = field_error(&ServiceError::LimitExceeded(breach));
        assert!(errors.contains_key("message"));
        let breach = LimitBreach { limit: "audience_nodes", value: 1, actual: 2 };
        assert!(field_error(&ServiceError::LimitExceeded(breach)).contains_key("audience"));
    }

    #[test]
    fn overrides_make_platform_notifications() {
        let form =
            ComposeForm { title: "Hi".into(), ios_body: "iOS only".into(), ..Default::default() };
        let notification = notification(&form).unwrap_or_default();
        assert_eq!(notification.title.as_deref(), Some("Hi"));
        assert_eq!(notification.ios.and_then(|i| i.body).as_deref(), Some("iOS only"));
        assert!(notification.android.is_none());
        assert!(super::notification(&ComposeForm::default()).is_none());
    }

    #[test]
    fn a_scheduled_time_is_utc() {
        let form = ComposeForm {
            when: "at".into(),
            push_at: "2030-01-02T03:04".into(),
            ..Default::default()
        };
        let at = push_time(&form).ok().flatten().map(|t| t.to_rfc3339());
        assert_eq!(at.as_deref(), Some("2030-01-02T03:04:00+00:00"));
        let bad = ComposeForm { when: "at".into(), ..Default::default() };
        assert!(push_time(&bad).is_err());
    }
}
