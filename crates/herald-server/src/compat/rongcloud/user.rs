//! Users: `/user/getToken` and `/user/checkOnline`.
//!
//! # Format
//! ```text
//! POST /user/getToken.json     userId=u&name=Lei&portraitUri=https://..  → {"code":200,"userId":"u","token":"eyJ..."}
//! POST /user/checkOnline.json  userId=u                                  → {"code":200,"status":"1"}
//! ```
//! The token is a herald client token (docs/protocol.md): a device presents it in the `hello` of
//! `GET /v1/connect`. `name` and `portraitUri` are accepted and not kept: herald has no user
//! profiles.

use axum::extract::State;
use chrono::{Duration, Utc};
use serde_json::Value;

use super::call::Call;
use super::envelope::Reply;
use super::error::RongError;
use super::form::Form;
use super::tags::check_user;
use crate::directory;
use crate::state::AppState;

/// Lifetime of a `getToken` token: a year. RongCloud tokens do not expire unless the operator
/// sets a lifetime, so back ends commonly keep one per user for a long time; a year honours
/// that while bounding a leaked token. Rotating the app secret revokes every token once the
/// rotation's grace period ends.
pub const TOKEN_TTL_SECS: i64 = 365 * 86_400;

/// Handle the `POST /user/getToken.{json,xml}` route: imports the user and returns a client
/// token for it.
pub async fn get_token_route(State(state): State<AppState>, call: Call) -> Reply {
    call.answer(get_token(&state, &call).await)
}

async fn get_token(state: &AppState, call: &Call) -> Result<Vec<(&'static str, Value)>, RongError> {
    let user = read_user(&call.body)?;
    directory::import_accounts(&state.directory, &call.app, std::slice::from_ref(&user)).await?;
    let expires_at = (Utc::now() + Duration::seconds(TOKEN_TTL_SECS)).timestamp();
    let token = herald_gateway::token::mint(&call.app.key, &call.app.secret, &user, expires_at);
    Ok(vec![("userId", Value::String(user)), ("token", Value::String(token))])
}

/// Handle the `POST /user/checkOnline.{json,xml}` route: `"1"` when a device of the user is
/// connected to herald (any node of a cluster), `"0"` otherwise (also for users herald does
/// not know).
pub async fn check_online_route(State(state): State<AppState>, call: Call) -> Reply {
    call.answer(check_online(&state, &call).await)
}

async fn check_online(
    state: &AppState,
    call: &Call,
) -> Result<Vec<(&'static str, Value)>, RongError> {
    let user = read_user(&call.body)?;
    let ids = state
        .store
        .account_ids(call.app.id, std::slice::from_ref(&user))
        .await
        .map_err(crate::error::ApiErrorKind::from)?;
    let online = match (ids.get(&user), &state.cluster) {
        (None, _) => false,
        (Some(&id), None) => state.gateway.registry().is_online(call.app.id, id),
        (Some(&id), Some(cluster)) => {
            cluster.online_anywhere(call.app.id, id).await.map_err(|err| {
                tracing::warn!(%err, "cannot ask the other nodes who is online");
                crate::error::ApiErrorKind::Unavailable(
                    "the cluster's bus is not answering; retry shortly".into(),
                )
            })?
        }
    };
    Ok(vec![("status", Value::from(if online { "1" } else { "0" }))])
}

/// The `userId` of a `/user/getToken` or `/user/checkOnline` form body.
pub fn read_user(body: &[u8]) -> Result<String, RongError> {
    let form = Form::parse(body)?;
    let user = form.required("userId")?.to_owned();
    check_user("userId", &user)?;
    Ok(user)
}
