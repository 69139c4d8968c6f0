//! `im_get_tag`, `im_add_tag`, `im_remove_tag`, `im_remove_all_tags` over herald's tags.
//!
//! # Format
//!
//! ```json
//! {"To_Account":["u1"]}                              →  {"UserTags":[{"To_Account":"u1","Tags":["a"]}]}
//! {"UserTags":[{"To_Account":"u1","Tags":["a","b"]}]}   (add / remove; ≤ 10 tags per user per call)
//! {"To_Account":["u1"]}                                 (remove all)
//! ```

use std::collections::BTreeMap;

use herald_store::TagOp;
use serde_json::json;

use super::batch::{check_report, require_existing};
use super::envelope::Fields;
use super::error::TencentError;
use super::request::{self, Body};
use super::Caller;
use crate::directory;

/// Most tags per user in one add or remove call, and in each list of a push condition.
pub const MAX_TAGS: usize = 10;
/// Longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 50;

/// Checks one tag as Tencent does: a non-empty string of at most 50 bytes.
pub fn check_tag(value: &serde_json::Value, field: &str) -> Result<String, TencentError> {
    let tag = value
        .as_str()
        .ok_or_else(|| TencentError::MessageFormat(format!("{field} must hold strings")))?;
    if tag.is_empty() {
        return Err(TencentError::EmptyTag);
    }
    if tag.len() > MAX_TAG_BYTES {
        return Err(TencentError::TagTooLong(tag.to_owned()));
    }
    Ok(tag.to_owned())
}

/// Handle `POST /v4/all_member_push/im_get_tag`. Accounts never imported have no tags.
pub async fn get_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    let accounts = request::accounts(body, "To_Account")?;
    let (found, _) = directory::get_tags(&caller.state.directory, &caller.app, &accounts).await?;
    let user_tags: Vec<_> = request::distinct(&accounts)
        .into_iter()
        .map(|account| {
            let tags = found.get(&account).cloned().unwrap_or_default();
            json!({"To_Account": account, "Tags": tags})
        })
        .collect();
    let mut fields = Fields::new();
    fields.insert("UserTags".into(), json!(user_tags));
    Ok(fields)
}

/// Handle `POST /v4/all_member_push/im_add_tag`.
pub async fn add_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    update(caller, body, TagOp::Add).await
}

/// Handle `POST /v4/all_member_push/im_remove_tag`.
pub async fn remove_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    update(caller, body, TagOp::Remove).await
}

/// Handle `POST /v4/all_member_push/im_remove_all_tags`.
pub async fn remove_all_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    let accounts = request::distinct(&request::accounts(body, "To_Account")?);
    require_existing(caller, &accounts).await?;
    let report =
        directory::update_tags(&caller.state.directory, &caller.app, accounts, TagOp::Clear)
            .await?;
    check_report(&report)?;
    Ok(Fields::new())
}

/// Adds or removes the tags of each `UserTags` entry. Entries with the same tags go to the
/// directory as one batch.
async fn update(
    caller: &Caller,
    body: &Body,
    op: fn(Vec<String>) -> TagOp,
) -> Result<Fields, TencentError> {
    let (batches, accounts) = read_updates(body)?;
    require_existing(caller, &accounts).await?;
    for (tags, accounts) in batches {
        let accounts = request::distinct(&accounts);
        let report =
            directory::update_tags(&caller.state.directory, &caller.app, accounts, op(tags))
                .await?;
        check_report(&report)?;
    }
    Ok(Fields::new())
}

/// The accounts of each distinct tag set of an add or remove call (sorted, deduplicated), and
/// every account named, in order.
pub type TagBatches = (BTreeMap<Vec<String>, Vec<String>>, Vec<String>);

/// Reads the `UserTags` of an add or remove call.
pub fn read_updates(body: &Body) -> Result<TagBatches, TencentError> {
    let mut batches: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    let mut accounts = Vec::new();
    for entry in request::entries(body, "UserTags")? {
        let account = request::entry_account(entry, "UserTags")?;
        let tags = entry
            .get("Tags")
            .and_then(|t| t.as_array())
            .ok_or_else(|| request::invalid(format!("Tags of {account} must be an array")))?;
        if tags.is_empty() {
            return Err(request::invalid(format!("Tags of {account} must not be empty")));
        }
        if tags.len() > MAX_TAGS {
            return Err(TencentError::TooManyTags {
                field: "Tags",
                max: MAX_TAGS,
                got: tags.len(),
            });
        }
        let mut tags = tags.iter().map(|t| check_tag(t, "Tags")).collect::<Result<Vec<_>, _>>()?;
        tags.sort();
        tags.dedup();
        accounts.push(account.clone());
        batches.entry(tags).or_default().push(account);
    }
    Ok((batches, accounts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_are_non_empty_and_short() {
        assert_eq!(check_tag(&json!("vip"), "Tags").ok().as_deref(), Some("vip"));
        assert_eq!(check_tag(&json!(""), "Tags").map_err(|e| e.code()).err(), Some(90040));
        let long = "x".repeat(51);
        assert_eq!(check_tag(&json!(long), "Tags").map_err(|e| e.code()).err(), Some(90020));
        assert_eq!(check_tag(&json!(1), "Tags").map_err(|e| e.code()).err(), Some(90010));
    }
}
