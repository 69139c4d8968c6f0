//! Signed `/v1` routes over accounts.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use herald_core::account::Device;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

use crate::auth::CallingApp;
use crate::directory::{self, ImportOutcome};
use crate::error::{ApiErrorKind, ApiResult};
use crate::extract::ApiJson;
use crate::routes::docs::ErrorBody;
use crate::state::AppState;

/// Accounts of a call, ≤ `accounts_per_batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountList {
    pub accounts: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub account: String,
    pub tags: Vec<String>,
    /// Values by attribute name.
    pub attributes: BTreeMap<String, String>,
    pub devices: Vec<Device>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountListItem {
    pub account: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    pub accounts: Vec<AccountListItem>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Accounts after this name (exclusive).
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

/// Handle the `POST /v1/accounts/import` route: creates the accounts that do not exist yet.
#[utoipa::path(post, path = "/v1/accounts/import", tag = "accounts", security(("signature" = [])),
    request_body = AccountList,
    responses((status = 200, body = ImportOutcome), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import_accounts_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<AccountList>,
) -> ApiResult<Json<ImportOutcome>> {
    Ok(Json(directory::import_accounts(&state.directory, &app, &body.accounts).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BulkQuery {
    /// Number of the body's first line in the caller's file (default 1), so that rejected
    /// lines are reported by their place in it.
    pub first_line: Option<usize>,
}

/// Handle the `POST /v1/accounts/bulk` route: NDJSON, one account per line with its tags,
/// attributes and devices (`{"account":"u1","tags":["vip"],"attributes":{"city":"sz"},
/// "devices":[{"device_id":"d1","platform":"ios","package":"com.example"}]}`). Accounts are
/// created if new; tags are added; attributes set; devices bound as `PUT /v1/devices/{id}`
/// binds them. A bad line is reported and nothing of it is written. The body may be up to
/// `max_import_body_bytes`.
#[utoipa::path(post, path = "/v1/accounts/bulk", tag = "accounts", security(("signature" = [])),
    params(BulkQuery),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 200, body = directory::BulkOutcome), (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn bulk_import_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    query: Result<Query<BulkQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Bytes,
) -> ApiResult<Json<directory::BulkOutcome>> {
    let Query(query) = query.map_err(|err| ApiErrorKind::InvalidRequest(err.body_text()))?;
    let text = std::str::from_utf8(&body)
        .map_err(|err| ApiErrorKind::InvalidRequest(format!("the body is not UTF-8: {err}")))?;
    let first_line = query.first_line.unwrap_or(1);
    Ok(Json(directory::bulk_import(&state.directory, &app, text.into(), first_line).await?))
}

/// Handle the `GET /v1/accounts` route: accounts in name order, a page at a time.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", security(("signature" = [])),
    params(PageQuery), responses((status = 200, body = AccountPage)))]
pub async fn list_accounts_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AccountPage>> {
    let Query(query) = query.map_err(|err| ApiErrorKind::InvalidRequest(err.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiErrorKind::InvalidRequest("limit must be between 1 and 1000".into()).into());
    }
    let page = state.store.accounts_page(app.id, query.after.as_deref(), limit).await?;
    let next =
        (page.len() == limit as usize).then(|| page.last().map(|a| a.account.clone())).flatten();
    let accounts = page
        .into_iter()
        .map(|a| AccountListItem { account: a.account, created_at: a.created_at })
        .collect();
    Ok(Json(AccountPage { accounts, next }))
}

/// Handle the `GET /v1/accounts/{account}` route: tags, attributes and devices of one account.
#[utoipa::path(get, path = "/v1/accounts/{account}", tag = "accounts", security(("signature" = [])),
    params(("account" = String, Path)),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody)))]
pub async fn get_account_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(account): Path<String>,
) -> ApiResult<Json<AccountView>> {
    let record = state.store.account(app.id, &account).await?;
    let names = state.directory.app(app.id).await?.attribute_names();
    Ok(Json(AccountView {
        attributes: directory::named_attributes(&names, &record.attributes),
        account: record.account,
        tags: record.tags,
        devices: record.devices,
        created_at: record.created_at,
    }))
}

/// Handle the `DELETE /v1/accounts/{account}` route: the account leaves every tag, attribute
/// and device.
#[utoipa::path(delete, path = "/v1/accounts/{account}", tag = "accounts", security(("signature" = [])),
    params(("account" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_account_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(account): Path<String>,
) -> ApiResult<StatusCode> {
    directory::delete_account(&state.directory, &app, &account).await?;
    Ok(StatusCode::NO_CONTENT)
}
