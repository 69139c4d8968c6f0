//! An app's settings: attribute names and limits (read-only here), APNs and FCM credentials
//! (set, seen redacted, deleted), the webhook, and for the admin the compat layers.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use herald_core::{App, AppId, LimitsPatch};
use herald_service::layers::{self, Layer};
use herald_service::{apps, directory, webhooks, ServiceError};
use serde::Deserialize;
use serde_json::Value;

use crate::error::service_status;
use crate::form::Checked;
use crate::frame::{page_app, Frame};
use crate::session::Session;
use crate::{ConsoleError, ConsoleHost};

const VENDORS: [&str; 2] = ["apns", "fcm"];
const LAYERS: [&str; 2] = ["tencent", "rongcloud"];

/// One vendor's credentials as stored, secrets redacted.
pub struct VendorView {
    pub vendor: &'static str,
    pub redacted: Option<String>,
    /// The fields the vendor's credentials take, as the API takes them.
    pub example: &'static str,
}

fn example(vendor: &str) -> &'static str {
    match vendor {
        "apns" => {
            r#"{"key_p8": "<the .p8 file>", "key_id": "<key id>", "team_id": "<team id>", "topic": "<bundle id>", "environment": "production"}"#
        }
        _ => {
            r#"{"service_account_json": <the service account file>, "project_id": "<project id>"}"#
        }
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    frame: Frame,
    /// Every attribute slot of the app with its name (empty: unnamed).
    slots: Vec<(usize, String)>,
    limits: Vec<(String, String)>,
    vendors: Vec<VendorView>,
    webhook_url: String,
    webhook_events: String,
    known_events: String,
    layers: Vec<(&'static str, String)>,
    /// A change done, or refused, shown above the section (`vendor`, `webhook`).
    notice: Option<(&'static str, String)>,
    error: Option<(&'static str, String)>,
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    app: Option<AppId>,
}

pub async fn page<S: ConsoleHost>(
    State(state): State<S>,
    session: Session,
    Query(query): Query<SettingsQuery>,
) -> Result<Response, ConsoleError> {
    let app = page_app(&state, &session, query.app).await?;
    render(&state, &session, &app, Said::Nothing).await
}

/// What the page says after a change.
enum Said {
    Nothing,
    Done(&'static str, String),
    Refused(&'static str, ServiceError),
}

async fn render<S: ConsoleHost>(
    state: &S,
    session: &Session,
    app: &App,
    said: Said,
) -> Result<Response, ConsoleError> {
    let service = state.service();
    let store = &service.store;
    let names = store.attribute_names(app.id).await.map_err(ServiceError::from)?;
    let mut vendors = Vec::new();
    for vendor in VENDORS {
        let redacted = match service.vendors.get(store, app, vendor).await {
            Ok(value) => Some(serde_json::to_string_pretty(&value).unwrap_or_default()),
            Err(ServiceError::NotFound { .. }) => None,
            Err(other) => return Err(other.into()),
        };
        vendors.push(VendorView { vendor, redacted, example: example(vendor) });
    }
    let webhook = store.webhook(app.id).await.map_err(ServiceError::from)?;
    let mut layers = Vec::new();
    if session.is_admin() {
        for layer in LAYERS {
            let stored = store.compat_layer(app.id, layer).await.map_err(ServiceError::from)?;
            layers.push((layer, stored.unwrap_or_default()));
        }
    }
    let (status, notice, error) = match said {
        Said::Nothing => (StatusCode::OK, None, None),
        Said::Done(section, text) => (StatusCode::OK, Some((section, text)), None),
        Said::Refused(section, err) => {
            (service_status(&err), None, Some((section, err.to_string())))
        }
    };
    let page = SettingsPage {
        frame: Frame::new(session, Some(app), "settings"),
        slots: (0..app.limits.attribute_slots as usize)
            .map(|slot| (slot, names.get(slot).cloned().flatten().unwrap_or_default()))
            .collect(),
        limits: limits(app),
        vendors,
        webhook_url: webhook.as_ref().map(|w| w.url.clone()).unwrap_or_default(),
        webhook_events: webhook.map(|w| w.events.join(", ")).unwrap_or_default(),
        known_events: webhooks::EVENTS.join(", "),
        layers,
        notice,
        error,
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// The app's limits by name, as the API shows them.
fn limits(app: &App) -> Vec<(String, String)> {
    let Ok(Value::Object(map)) = serde_json::to_value(app.limits) else { return Vec::new() };
    map.into_iter().map(|(name, value)| (name, value.to_string())).collect()
}

#[derive(Deserialize)]
pub struct VendorForm {
    app: Option<AppId>,
    vendor: String,
    /// `set` or `delete`.
    action: String,
    #[serde(default)]
    credentials: String,
}

/// Sets or deletes an app's APNs / FCM credentials, through the service's vendors.
pub async fn vendor<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<VendorForm>,
) -> Result<Response, ConsoleError> {
    let app = page_app(&state, &session, form.app).await?;
    let service = state.service();
    let done = match form.action.as_str() {
        "delete" => service.delete_vendor_credentials(&app, &form.vendor).await.map(|()| "deleted"),
        _ => match serde_json::from_str::<Value>(&form.credentials) {
            Ok(json) => {
                service.set_vendor_credentials(&app, &form.vendor, json).await.map(|_| "saved")
            }
            Err(err) => Err(ServiceError::InvalidRequest(format!("not valid JSON: {err}"))),
        },
    };
    let said = match done {
        Ok(what) => Said::Done("vendor", format!("{} credentials {what}.", form.vendor)),
        Err(err) => Said::Refused("vendor", err),
    };
    render(&state, &session, &app, said).await
}

#[derive(Deserialize)]
pub struct WebhookForm {
    app: Option<AppId>,
    /// `set` or `delete`.
    action: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    events: String,
}

pub async fn webhook<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<WebhookForm>,
) -> Result<Response, ConsoleError> {
    let app = page_app(&state, &session, form.app).await?;
    let store = &state.service().store;
    let done = match form.action.as_str() {
        "delete" => {
            store.delete_webhook(app.id).await.map(|()| "deleted").map_err(ServiceError::from)
        }
        _ => {
            let events: Vec<String> = form
                .events
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect();
            let events = (!events.is_empty()).then_some(events);
            webhooks::configure(store, app.id, &form.url, events).await.map(|_| "saved")
        }
    };
    let said = match done {
        Ok(what) => Said::Done("webhook", format!("Webhook {what}.")),
        Err(err) => Said::Refused("webhook", err),
    };
    render(&state, &session, &app, said).await
}

#[derive(Deserialize)]
pub struct LimitsForm {
    app: Option<AppId>,
    /// The limits that change, as JSON (`{"message_bytes": 4096}`), as the admin API takes them.
    #[serde(default)]
    changes: String,
}

/// Changes some limits of the app: the admin only, as in the API.
pub async fn limits_change<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<LimitsForm>,
) -> Result<Response, ConsoleError> {
    session.require_admin()?;
    let app = page_app(&state, &session, form.app).await?;
    let patch = serde_json::from_str::<LimitsPatch>(&form.changes)
        .map_err(|err| ServiceError::InvalidRequest(format!("not valid limits JSON: {err}")));
    let updated = match patch {
        Ok(patch) => apps::update(state.service(), app.id, None, Some(&patch)).await,
        Err(err) => Err(err),
    };
    match updated {
        Ok(app) => {
            render(&state, &session, &app, Said::Done("limits", "Limits saved.".into())).await
        }
        Err(err) => render(&state, &session, &app, Said::Refused("limits", err)).await,
    }
}

/// Names the app's attribute slots (`slot_N` fields); a name emptied is removed, and with it
/// that attribute of every account, as in the API.
pub async fn attribute_names<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let asked = form.iter().find(|(key, _)| key == "app").and_then(|(_, v)| v.parse().ok());
    let app = page_app(&state, &session, asked).await?;
    let service = state.service();
    let current = service.store.attribute_names(app.id).await.map_err(ServiceError::from)?;
    let changes = form
        .iter()
        .filter_map(|(key, value)| Some((key.strip_prefix("slot_")?.parse::<u8>().ok()?, value)))
        .map(|(slot, value)| (slot, Some(value.trim().to_owned()).filter(|v| !v.is_empty())))
        .filter(|(slot, name)| current.get(usize::from(*slot)).cloned().flatten() != *name)
        .collect();
    let said = match directory::set_attribute_names(&service.directory, &app, changes).await {
        Ok(_) => Said::Done("attributes", "Attribute names saved.".into()),
        Err(err) => Said::Refused("attributes", err),
    };
    render(&state, &session, &app, said).await
}

#[derive(Deserialize)]
pub struct CompatForm {
    app: Option<AppId>,
    layer: String,
    #[serde(default)]
    settings: String,
}

/// Sets an app's settings of a compat layer: the admin only, checked as the admin API checks.
pub async fn compat<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<CompatForm>,
) -> Result<Response, ConsoleError> {
    session.require_admin()?;
    let app = page_app(&state, &session, form.app).await?;
    let said = match configure_layer(&state, app.id, &form).await {
        Ok(()) => Said::Done("compat", format!("{} settings saved.", form.layer)),
        Err(err) => Said::Refused("compat", err),
    };
    render(&state, &session, &app, said).await
}

async fn configure_layer<S: ConsoleHost>(
    state: &S,
    app: AppId,
    form: &CompatForm,
) -> Result<(), ServiceError> {
    let layer = Layer::parse(&form.layer)
        .ok_or_else(|| ServiceError::NotFound { what: "compat layer", id: form.layer.clone() })?;
    let given = serde_json::from_str(&form.settings)
        .map_err(|err| ServiceError::InvalidRequest(format!("not valid JSON: {err}")))?;
    let (external_id, settings) = layers::checked_settings(layer, given)
        .map_err(|err| ServiceError::InvalidRequest(err.to_string()))?;
    layers::configure(&state.service().store, app, layer, external_id.as_deref(), &settings).await
}
