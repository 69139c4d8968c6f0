//! Tencent Cloud IM push-to-all server API (`POST /v4/{service}/{command}`).
//!
//! A back end written against Tencent's server SDKs points its base URL at herald. Each call
//! is authenticated by `sdkappid` + admin `identifier` + `usersig` (see [`auth`]), its body is
//! read field by field into the shared directory, push and report operations, and the answer
//! is the Tencent envelope with Tencent's error codes ([`envelope`], [`error`]).
//!
//! # Format
//!
//! ```text
//! POST /v4/all_member_push/im_push?sdkappid=1400000000&identifier=admin&usersig=eJy...&random=99&contenttype=json
//! {"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}
//! → 200 {"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","TaskId":"p_..."}
//! ```

mod accounts;
mod attributes;
pub mod auth;
mod batch;
mod condition;
mod envelope;
mod error;
mod notification;
mod push;
mod reports;
mod request;
mod tags;

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::routing::any;
use axum::Router;
use chrono::Utc;
use herald_core::App;
use herald_store::StoreError;

use crate::compat::{Layer, TencentSettings};
use crate::error::ApiErrorKind;
use crate::state::AppState;

pub use envelope::Reply;
pub use error::TencentError;

use envelope::Fields;

/// The `/v4/...` routes.
pub fn router() -> Router<AppState> {
    // One catch-all, so that paths with more or fewer segments are answered in the envelope
    // too (the router cannot hold it beside `/v4/{service}/{command}`).
    Router::new().route("/v4/{*path}", any(v4_route))
}

/// An authenticated call: the app behind the `sdkappid` and its layer settings.
pub struct Caller {
    pub state: AppState,
    pub app: App,
    pub settings: TencentSettings,
}

/// The calls of the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    AccountImport,
    MultiAccountImport,
    Push,
    SetAttrName,
    GetAttrName,
    GetAttr,
    SetAttr,
    RemoveAttr,
    GetTag,
    AddTag,
    RemoveTag,
    RemoveAllTags,
    PushReport,
    PushStatistics,
}

impl Command {
    fn parse(service: &str, command: &str) -> Option<Self> {
        Some(match (service, command) {
            ("im_open_login_svc", "account_import") => Self::AccountImport,
            ("im_open_login_svc", "multiaccount_import") => Self::MultiAccountImport,
            ("all_member_push", "im_push") => Self::Push,
            ("all_member_push", "im_set_attr_name") => Self::SetAttrName,
            ("all_member_push", "im_get_attr_name") => Self::GetAttrName,
            ("all_member_push", "im_get_attr") => Self::GetAttr,
            ("all_member_push", "im_set_attr") => Self::SetAttr,
            ("all_member_push", "im_remove_attr") => Self::RemoveAttr,
            ("all_member_push", "im_get_tag") => Self::GetTag,
            ("all_member_push", "im_add_tag") => Self::AddTag,
            ("all_member_push", "im_remove_tag") => Self::RemoveTag,
            ("all_member_push", "im_remove_all_tags") => Self::RemoveAllTags,
            ("openim", "im_get_push_report") => Self::PushReport,
            ("timpush", "all_member_push_statistics") => Self::PushStatistics,
            _ => return None,
        })
    }

    /// Account calls answer some refusals with codes of their own (70403 rather than 90009).
    fn is_account_call(self) -> bool {
        matches!(self, Self::AccountImport | Self::MultiAccountImport)
    }
}

/// Handle the `POST /v4/{service}/{command}` route.
async fn v4_route(
    State(state): State<AppState>,
    Path(path): Path<String>,
    method: Method,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Body,
) -> Reply {
    Reply(call(state, &path, method, query, body).await)
}

async fn call(
    state: AppState,
    path: &str,
    method: Method,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Body,
) -> Result<Fields, TencentError> {
    let which = path
        .split_once('/')
        .and_then(|(service, command)| Command::parse(service, command))
        .filter(|_| method == Method::POST)
        .ok_or_else(|| TencentError::UnknownCommand(format!("{method} /v4/{path}")))?;
    let Query(query) = query.map_err(|err| request::invalid(err.body_text()))?;
    let caller = authenticate(state, &query, which.is_account_call()).await?;
    let limit = caller.state.settings.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| TencentError::BodyTooLarge { limit })?;
    let body = request::parse(&bytes)?;
    match which {
        Command::AccountImport => accounts::import_route(&caller, &body).await,
        Command::MultiAccountImport => accounts::multi_import_route(&caller, &body).await,
        Command::Push => push::push_route(&caller, &body).await,
        Command::SetAttrName => attributes::set_names_route(&caller, &body).await,
        Command::GetAttrName => attributes::get_names_route(&caller).await,
        Command::GetAttr => attributes::get_route(&caller, &body).await,
        Command::SetAttr => attributes::set_route(&caller, &body).await,
        Command::RemoveAttr => attributes::remove_route(&caller, &body).await,
        Command::GetTag => tags::get_route(&caller, &body).await,
        Command::AddTag => tags::add_route(&caller, &body).await,
        Command::RemoveTag => tags::remove_route(&caller, &body).await,
        Command::RemoveAllTags => tags::remove_all_route(&caller, &body).await,
        Command::PushReport => reports::push_report_route(&caller, &body).await,
        Command::PushStatistics => reports::statistics_route(&caller, &body).await,
    }
}

/// Reads and checks the body of the call at `path` (`service/command`) as its handler does
/// before it touches the store, for an app whose attribute slots are named `attribute_names`
/// and whose admin is `admin_identifier`. The fuzz targets in `fuzz/` drive it.
///
/// # Errors
/// The refusal the call would answer with.
pub fn check_request(
    path: &str,
    bytes: &[u8],
    attribute_names: &BTreeMap<u8, String>,
    admin_identifier: &str,
) -> Result<(), TencentError> {
    let which = path
        .split_once('/')
        .and_then(|(service, command)| Command::parse(service, command))
        .ok_or_else(|| TencentError::UnknownCommand(format!("POST /v4/{path}")))?;
    let body = request::parse(bytes)?;
    let known: HashSet<String> = attribute_names.values().cloned().collect();
    match which {
        Command::AccountImport => accounts::read_import(&body).map(drop),
        Command::MultiAccountImport => accounts::read_multi_import(&body).map(drop),
        Command::Push => push::read(&body, admin_identifier, &known).map(drop),
        Command::SetAttrName => {
            attributes::rename(attributes::names_given(&body)?, &mut attribute_names.clone())
                .map(drop)
        }
        Command::GetAttrName => Ok(()),
        Command::GetAttr | Command::GetTag | Command::RemoveAllTags => {
            request::accounts(&body, "To_Account").map(drop)
        }
        Command::SetAttr => {
            attributes::read_updates(&body, &known, attributes::set_changes).map(drop)
        }
        Command::RemoveAttr => {
            attributes::read_updates(&body, &known, attributes::remove_changes).map(drop)
        }
        Command::AddTag | Command::RemoveTag => tags::read_updates(&body).map(drop),
        Command::PushReport => request::accounts(&body, "TaskIds").map(drop),
        Command::PushStatistics => reports::StatisticsQuery::read(&body, Utc::now()).map(drop),
    }
}

/// Finds the app of `sdkappid`, verifies the usersig with the app secret (and the previous
/// secret during its grace period), requires the admin identifier, and takes one request from
/// the app's request budget.
async fn authenticate(
    state: AppState,
    query: &HashMap<String, String>,
    account_call: bool,
) -> Result<Caller, TencentError> {
    let param = |name: &str| {
        query
            .get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| request::invalid(format!("query parameter {name} is required")))
    };
    let raw_appid = param("sdkappid")?;
    let sdkappid: u64 = raw_appid
        .parse()
        .map_err(|_| request::invalid(format!("sdkappid {raw_appid} is not a number")))?;
    let identifier = param("identifier")?;
    let usersig = param("usersig")?;
    let found = state.store.app_by_compat_id(Layer::Tencent.as_str(), &sdkappid.to_string()).await;
    let (app, settings) = match found {
        Ok(found) => found,
        Err(StoreError::NotFound { .. }) => {
            return Err(TencentError::NotEnabled(sdkappid.to_string()));
        }
        Err(err) => return Err(ApiErrorKind::from(err).into()),
    };
    let settings: TencentSettings = serde_json::from_str(&settings)
        .map_err(|err| ApiErrorKind::Internal(format!("tencent settings: {err}")))?;
    let now = Utc::now();
    auth::verify(usersig, identifier, sdkappid, app.valid_secrets(now), now.timestamp())?;
    if *identifier != settings.admin_identifier {
        return Err(TencentError::AdminRequired { identifier: identifier.clone(), account_call });
    }
    state.requests.admit(&app)?;
    Ok(Caller { state, app, settings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_of_the_spec_is_routed() {
        let calls = [
            ("im_open_login_svc", "account_import"),
            ("im_open_login_svc", "multiaccount_import"),
            ("all_member_push", "im_push"),
            ("all_member_push", "im_set_attr_name"),
            ("all_member_push", "im_get_attr_name"),
            ("all_member_push", "im_get_attr"),
            ("all_member_push", "im_set_attr"),
            ("all_member_push", "im_remove_attr"),
            ("all_member_push", "im_get_tag"),
            ("all_member_push", "im_add_tag"),
            ("all_member_push", "im_remove_tag"),
            ("all_member_push", "im_remove_all_tags"),
            ("openim", "im_get_push_report"),
            ("timpush", "all_member_push_statistics"),
        ];
        for (service, command) in calls {
            assert!(Command::parse(service, command).is_some(), "{service}/{command}");
        }
        assert!(Command::parse("openim", "sendmsg").is_none());
        assert!(Command::parse("im_open_login_svc", "account_import")
            .is_some_and(Command::is_account_call));
    }
}
