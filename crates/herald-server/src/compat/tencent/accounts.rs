//! `im_open_login_svc/account_import` and `multiaccount_import`: accounts become eligible for
//! pushes once imported, as with Tencent.
//!
//! # Format
//!
//! ```json
//! {"UserID":"u1","Nick":"..","FaceUrl":".."}     (older SDKs: "Identifier" instead of "UserID")
//! {"Accounts":["u1","u2"]}  →  {"FailAccounts":[]}
//! ```

use herald_core::account::check_account;
use serde_json::json;

use super::envelope::Fields;
use super::error::TencentError;
use super::request::{self, Body};
use super::Caller;
use crate::directory;

/// Longest Tencent UserID, in bytes.
pub const MAX_USER_ID_BYTES: usize = 32;

/// A UserID as Tencent accepts it: herald's account rules, within 32 bytes.
fn valid_user_id(id: &str) -> bool {
    id.len() <= MAX_USER_ID_BYTES && check_account(id).is_ok()
}

/// Handle `POST /v4/im_open_login_svc/account_import`. `Nick` and `FaceUrl` are accepted and
/// not kept: herald has no user profiles.
pub async fn import_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    let id = read_import(body)?;
    directory::import_accounts(&caller.state.directory, &caller.app, &[id.to_owned()]).await?;
    Ok(Fields::new())
}

/// The UserID of an `account_import` body.
pub fn read_import(body: &Body) -> Result<&str, TencentError> {
    let id = match (body.get("UserID"), body.get("Identifier")) {
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => return Err(request::invalid("UserID is required".into())),
    };
    let id = id.as_str().filter(|id| valid_user_id(id)).ok_or_else(|| {
        request::invalid(format!("UserID must be 1 to {MAX_USER_ID_BYTES} bytes of text"))
    })?;
    for optional in ["Nick", "FaceUrl"] {
        if body.get(optional).is_some_and(|v| !v.is_string()) {
            return Err(request::invalid(format!("{optional} must be a string")));
        }
    }
    Ok(id)
}

/// Handle `POST /v4/im_open_login_svc/multiaccount_import`: valid ids are imported, the
/// others are listed in `FailAccounts`.
pub async fn multi_import_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    let (valid, failed) = read_multi_import(body)?;
    if !valid.is_empty() {
        directory::import_accounts(&caller.state.directory, &caller.app, &valid).await?;
    }
    let mut fields = Fields::new();
    fields.insert("FailAccounts".into(), json!(failed));
    Ok(fields)
}

/// The distinct valid UserIDs of a `multiaccount_import` body, and the invalid ones.
pub fn read_multi_import(body: &Body) -> Result<(Vec<String>, Vec<String>), TencentError> {
    let listed = request::entries(body, "Accounts")?;
    let mut valid = Vec::with_capacity(listed.len());
    let mut failed = Vec::new();
    for item in listed {
        match item.as_str() {
            Some(id) if valid_user_id(id) => valid.push(id.to_owned()),
            Some(id) => failed.push(id.to_owned()),
            None => return Err(request::invalid("Accounts must hold strings".into())),
        }
    }
    Ok((request::distinct(&valid), failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_at_most_32_bytes() {
        assert!(valid_user_id(&"u".repeat(32)));
        assert!(!valid_user_id(&"u".repeat(33)));
        assert!(!valid_user_id(""));
        assert!(!valid_user_id("a\nb"));
    }
}
