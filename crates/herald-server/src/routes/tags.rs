//! Signed `/v1` routes over tags: add, remove, set, clear, get; one account or a batch.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::{Extension, Json};
use herald_store::TagOp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::CallingApp;
use crate::directory::{self, BatchReport};
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::routes::accounts::AccountList;
use crate::routes::docs::ErrorBody;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagChange {
    /// ≤ `accounts_per_batch` accounts.
    pub accounts: Vec<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountTags {
    /// Tags by account.
    pub accounts: BTreeMap<String, Vec<String>>,
    /// Named accounts that do not exist.
    pub unknown: Vec<String>,
}

async fn change(
    state: &AppState,
    app: &herald_core::App,
    accounts: Vec<String>,
    op: TagOp,
) -> ApiResult<Json<BatchReport>> {
    Ok(Json(directory::update_tags(&state.directory, app, accounts, op).await?))
}

/// Handle the `POST /v1/tags/add` route: append tags.
#[utoipa::path(post, path = "/v1/tags/add", tag = "tags", security(("signature" = [])), request_body = TagChange,
    responses((status = 200, body = BatchReport), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_tags_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<TagChange>,
) -> ApiResult<Json<BatchReport>> {
    change(&state, &app, body.accounts, TagOp::Add(body.tags)).await
}

/// Handle the `POST /v1/tags/remove` route.
#[utoipa::path(post, path = "/v1/tags/remove", tag = "tags", security(("signature" = [])), request_body = TagChange,
    responses((status = 200, body = BatchReport), (status = 400, body = ErrorBody)))]
pub async fn remove_tags_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<TagChange>,
) -> ApiResult<Json<BatchReport>> {
    change(&state, &app, body.accounts, TagOp::Remove(body.tags)).await
}

/// Handle the `POST /v1/tags/set` route: replace all tags.
#[utoipa::path(post, path = "/v1/tags/set", tag = "tags", security(("signature" = [])), request_body = TagChange,
    responses((status = 200, body = BatchReport), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_tags_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<TagChange>,
) -> ApiResult<Json<BatchReport>> {
    change(&state, &app, body.accounts, TagOp::Set(body.tags)).await
}

/// Handle the `POST /v1/tags/clear` route: remove all tags.
#[utoipa::path(post, path = "/v1/tags/clear", tag = "tags", security(("signature" = [])), request_body = AccountList,
    responses((status = 200, body = BatchReport), (status = 400, body = ErrorBody)))]
pub async fn clear_tags_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<AccountList>,
) -> ApiResult<Json<BatchReport>> {
    change(&state, &app, body.accounts, TagOp::Clear).await
}

/// Handle the `POST /v1/tags/get` route.
#[utoipa::path(post, path = "/v1/tags/get", tag = "tags", security(("signature" = [])), request_body = AccountList,
    responses((status = 200, body = AccountTags), (status = 400, body = ErrorBody)))]
pub async fn get_tags_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<AccountList>,
) -> ApiResult<Json<AccountTags>> {
    let (accounts, unknown) = directory::get_tags(&state.directory, &app, &body.accounts).await?;
    Ok(Json(AccountTags { accounts, unknown }))
}
