//! Looking up an account or a device: tags, attributes, devices with platform and whether a
//! vendor token is present, online now, and the last pushes each device received.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use herald_core::AppId;
use herald_service::{reports, ServiceError};
use herald_store::AccountRecord;
use serde::Deserialize;

use crate::frame::{page_app, Frame};
use crate::pushes::title;
use crate::session::Session;
use crate::{ConsoleError, ConsoleHost};

/// Pushes shown per device.
const RECENT_PUSHES: usize = 10;

#[derive(Deserialize)]
pub struct LookupQuery {
    app: Option<AppId>,
    #[serde(default)]
    account: String,
    #[serde(default)]
    device: String,
}

pub struct DeviceRow {
    pub device_id: String,
    pub platform: String,
    pub package: String,
    pub vendor_token: String,
    pub app_version: String,
    /// `(push id, title)`, newest first.
    pub received: Vec<(String, String)>,
}

pub struct AccountView {
    pub account: String,
    pub online: bool,
    pub tags: String,
    pub attributes: Vec<(String, String)>,
    pub devices: Vec<DeviceRow>,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    frame: Frame,
    account: String,
    device: String,
    found: Option<AccountView>,
    error: Option<String>,
}

pub async fn page<S: ConsoleHost>(
    State(state): State<S>,
    session: Session,
    Query(query): Query<LookupQuery>,
) -> Result<Html<String>, ConsoleError> {
    let app = page_app(&state, &session, query.app).await?;
    let (found, error) = match lookup(&state, app.id, &query).await {
        Ok(found) => (found, None),
        Err(ServiceError::NotFound { what, id }) => (None, Some(format!("No {what} {id}."))),
        Err(other) => return Err(other.into()),
    };
    let page = DevicesPage {
        frame: Frame::new(&session, Some(&app), "devices"),
        account: query.account,
        device: query.device,
        found,
        error,
    };
    Ok(Html(page.render()?))
}

async fn lookup<S: ConsoleHost>(
    state: &S,
    app: AppId,
    query: &LookupQuery,
) -> Result<Option<AccountView>, ServiceError> {
    let store = &state.service().store;
    let account = match (query.account.trim(), query.device.trim()) {
        ("", "") => return Ok(None),
        ("", device) => store.device(app, device).await?.0,
        (account, _) => account.to_owned(),
    };
    let record = store.account(app, &account).await?;
    let names = store.attribute_names(app).await?;
    let mut devices = Vec::new();
    for device in &record.devices {
        let received =
            reports::received_by(state.service(), app, record.id, &device.device_id, RECENT_PUSHES)
                .await?;
        devices.push(DeviceRow {
            device_id: device.device_id.clone(),
            platform: device.platform.clone(),
            package: device.package.clone(),
            vendor_token: device
                .vendor_token
                .as_ref()
                .map_or("none".into(), |token| format!("{:?}", token.kind).to_lowercase()),
            app_version: device.app_version.clone().unwrap_or_default(),
            received: received.iter().map(|push| (push.id.clone(), title(push))).collect(),
        });
    }
    Ok(Some(view(state, app, &record, &names, devices)))
}

fn view<S: ConsoleHost>(
    state: &S,
    app: AppId,
    record: &AccountRecord,
    names: &[Option<String>],
    devices: Vec<DeviceRow>,
) -> AccountView {
    let attributes = record
        .attributes
        .iter()
        .enumerate()
        .filter_map(|(slot, value)| {
            let name = names.get(slot).cloned().flatten().unwrap_or_else(|| format!("slot {slot}"));
            value.clone().map(|value| (name, value))
        })
        .collect();
    AccountView {
        account: record.account.clone(),
        online: state.is_online(app, record.id),
        tags: record.tags.join(", "),
        attributes,
        devices,
    }
}
