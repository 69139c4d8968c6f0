//! Signed `/v1` routes over attribute names (the app's slots) and accounts' attribute values.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::CallingApp;
use crate::directory::{self, AttributeChange, BatchReport};
use crate::error::{ApiErrorKind, ApiResult};
use crate::extract::ApiJson;
use crate::routes::accounts::AccountList;
use crate::routes::docs::ErrorBody;
use crate::state::AppState;

/// Attribute name by slot, e.g. `{"0":"city","1":"tier"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttributeNames {
    pub names: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAttributeNames {
    /// Slot (`"0"`..`"9"`) → name; `null` removes the name and clears that attribute everywhere.
    pub names: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountAttributes {
    pub account: String,
    /// Values by attribute name.
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAttributes {
    pub accounts: Vec<AccountAttributes>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountAttributeNames {
    pub account: String,
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveAttributes {
    pub accounts: Vec<AccountAttributeNames>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttributeValues {
    /// Attribute values by name, by account.
    pub accounts: BTreeMap<String, BTreeMap<String, String>>,
    pub unknown: Vec<String>,
}

fn names_view(names: BTreeMap<u8, String>) -> Json<AttributeNames> {
    Json(AttributeNames {
        names: names.into_iter().map(|(slot, name)| (slot.to_string(), name)).collect(),
    })
}

/// Handle the `GET /v1/attributes/names` route.
#[utoipa::path(get, path = "/v1/attributes/names", tag = "attributes", security(("signature" = [])),
    responses((status = 200, body = AttributeNames)))]
pub async fn get_attribute_names_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
) -> ApiResult<Json<AttributeNames>> {
    Ok(names_view(directory::attribute_names(&state.directory, &app).await?))
}

/// Handle the `PUT /v1/attributes/names` route: name or unname slots.
#[utoipa::path(put, path = "/v1/attributes/names", tag = "attributes", security(("signature" = [])),
    request_body = SetAttributeNames,
    responses((status = 200, body = AttributeNames), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_attribute_names_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<SetAttributeNames>,
) -> ApiResult<Json<AttributeNames>> {
    let mut changes = Vec::with_capacity(body.names.len());
    for (slot, name) in body.names {
        let slot: u8 = slot.parse().map_err(|_| {
            ApiErrorKind::InvalidRequest(format!("names: `{slot}` is not a slot number"))
        })?;
        changes.push((slot, name));
    }
    Ok(names_view(directory::set_attribute_names(&state.directory, &app, changes).await?))
}

/// Handle the `POST /v1/attributes/set` route: set values by attribute name, per account.
#[utoipa::path(post, path = "/v1/attributes/set", tag = "attributes", security(("signature" = [])),
    request_body = SetAttributes,
    responses((status = 200, body = BatchReport), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_attributes_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<SetAttributes>,
) -> ApiResult<Json<BatchReport>> {
    let updates = body
        .accounts
        .into_iter()
        .map(|a| {
            let changes =
                a.attributes.into_iter().map(|(name, value)| AttributeChange::Set { name, value });
            (a.account, changes.collect())
        })
        .collect();
    Ok(Json(directory::update_attributes(&state.directory, &app, updates).await?))
}

/// Handle the `POST /v1/attributes/remove` route.
#[utoipa::path(post, path = "/v1/attributes/remove", tag = "attributes", security(("signature" = [])),
    request_body = RemoveAttributes,
    responses((status = 200, body = BatchReport), (status = 400, body = ErrorBody)))]
pub async fn remove_attributes_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<RemoveAttributes>,
) -> ApiResult<Json<BatchReport>> {
    let updates = body
        .accounts
        .into_iter()
        .map(|a| {
            (a.account, a.names.into_iter().map(|name| AttributeChange::Remove { name }).collect())
        })
        .collect();
    Ok(Json(directory::update_attributes(&state.directory, &app, updates).await?))
}

/// Handle the `POST /v1/attributes/get` route.
#[utoipa::path(post, path = "/v1/attributes/get", tag = "attributes", security(("signature" = [])),
    request_body = AccountList,
    responses((status = 200, body = AttributeValues), (status = 400, body = ErrorBody)))]
pub async fn get_attributes_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<AccountList>,
) -> ApiResult<Json<AttributeValues>> {
    let (accounts, unknown) =
        directory::get_attributes(&state.directory, &app, &body.accounts).await?;
    Ok(Json(AttributeValues { accounts, unknown }))
}
