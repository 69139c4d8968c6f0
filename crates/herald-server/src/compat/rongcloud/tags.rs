//! User tags: `/user/tag/set`, `/user/tag/batch/set` and `/user/tags/get`, on herald's
//! directory operations.
//!
//! # Format
//! ```text
//! POST /user/tag/set.json        {"userId":"31232","tags":["bj","男"]}      → {"code":200}
//! POST /user/tag/batch/set.json  {"userIds":["id1","id2"],"tags":["bj"]}   → {"code":200}
//! POST /user/tags/get.json       userIds=id1&userIds=id2                  → {"code":200,"result":{"id1":["bj"],"id2":[]}}
//! ```
//! Setting replaces all tags of each user (`[]` clears them). Users that herald does not know
//! yet are imported first: RongCloud has no separate import call, and a back end that tags its
//! users before their first `getToken` must not fail.

use axum::extract::State;
use herald_core::account::check_account;
use herald_core::LimitBreach;
use herald_store::TagOp;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::call::{json_body, Call};
use super::envelope::Reply;
use super::error::RongError;
use super::form::Form;
use crate::directory;
use crate::state::AppState;

/// Tags of one user, and tags in one audience list.
pub const MAX_TAGS: u32 = 20;
/// Bytes of one tag.
pub const MAX_TAG_BYTES: u32 = 40;
/// Users of one `/user/tag/batch/set` call.
const MAX_SET_USERS: u32 = 1_000;
/// Users of one `/user/tags/get` call.
const MAX_GET_USERS: u32 = 50;

/// Whether `c` may appear in a tag. RongCloud forbids "special characters" without listing
/// them; herald allows letters and digits of every script (the documents tag users `男`, `北京`)
/// and the separators `_ - . @ : +` that tags like `v1.2` or `city:bj` need, and refuses
/// spaces, control characters, quotes, other punctuation and symbols.
fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | ':' | '+')
}

/// Checks a tag list of a request: at most 20 tags (1005), each non-empty (1002), at most 40
/// bytes (1005) and without special characters (1002).
pub fn check_tags(field: &'static str, tags: &[String]) -> Result<(), RongError> {
    LimitBreach::check(field, MAX_TAGS, tags.len())?;
    for (i, tag) in tags.iter().enumerate() {
        if tag.is_empty() {
            return Err(RongError::param(format!("{field}[{i}] is empty")));
        }
        LimitBreach::check("tag_bytes", MAX_TAG_BYTES, tag.len())?;
        if let Some(bad) = tag.chars().find(|c| !tag_char(*c)) {
            return Err(RongError::param(format!(
                "{field}[{i}] has the special character {bad:?}; tags take letters, digits and _ - . @ : +"
            )));
        }
    }
    Ok(())
}

/// Checks a user id as herald checks account names.
pub fn check_user(field: &str, user: &str) -> Result<(), RongError> {
    check_account(user).map_err(|err| RongError::field(field, err))
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, RongError> {
    value.ok_or_else(|| RongError::param(format!("{field} is required")))
}

#[derive(Deserialize)]
struct SetBody {
    #[serde(rename = "userId")]
    user_id: Option<String>,
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct BatchSetBody {
    #[serde(rename = "userIds")]
    user_ids: Option<Vec<String>>,
    tags: Option<Vec<String>>,
}

/// Handle the `POST /user/tag/set.{json,xml}` route.
pub async fn set_route(State(state): State<AppState>, call: Call) -> Reply {
    call.answer(set(&state, &call).await)
}

async fn set(state: &AppState, call: &Call) -> Result<Vec<(&'static str, Value)>, RongError> {
    let (user, tags) = read_set(&call.body)?;
    replace_tags(state, call, vec![user], tags).await?;
    Ok(vec![])
}

/// The user and tags of a `/user/tag/set` body.
pub fn read_set(body: &[u8]) -> Result<(String, Vec<String>), RongError> {
    let body: SetBody = json_body(body)?;
    let user = required(body.user_id.filter(|u| !u.is_empty()), "userId")?;
    let tags = required(body.tags, "tags")?;
    check_user("userId", &user)?;
    check_tags("tags", &tags)?;
    Ok((user, tags))
}

/// Handle the `POST /user/tag/batch/set.{json,xml}` route.
pub async fn batch_set_route(State(state): State<AppState>, call: Call) -> Reply {
    call.answer(batch_set(&state, &call).await)
}

async fn batch_set(state: &AppState, call: &Call) -> Result<Vec<(&'static str, Value)>, RongError> {
    let (users, tags) = read_batch_set(&call.body)?;
    replace_tags(state, call, users, tags).await?;
    Ok(vec![])
}

/// The users and tags of a `/user/tag/batch/set` body.
pub fn read_batch_set(body: &[u8]) -> Result<(Vec<String>, Vec<String>), RongError> {
    let body: BatchSetBody = json_body(body)?;
    let users = required(body.user_ids.filter(|u| !u.is_empty()), "userIds")?;
    let tags = required(body.tags, "tags")?;
    LimitBreach::check("userIds", MAX_SET_USERS, users.len())?;
    for (i, user) in users.iter().enumerate() {
        check_user(&format!("userIds[{i}]"), user)?;
    }
    check_tags("tags", &tags)?;
    Ok((users, tags))
}

/// Imports the users and replaces their tags; a user the store could not update fails the call.
async fn replace_tags(
    state: &AppState,
    call: &Call,
    users: Vec<String>,
    mut tags: Vec<String>,
) -> Result<(), RongError> {
    directory::import_accounts(&state.directory, &call.app, &users).await?;
    tags.sort_unstable();
    tags.dedup();
    let asked = tags.len();
    let report =
        directory::update_tags(&state.directory, &call.app, users, TagOp::Set(tags)).await?;
    let Some(first) = report.failed.first() else {
        return Ok(());
    };
    // Users are imported just before, so what is left is the app's own tag limit (stricter than
    // RongCloud's 20) or a user deleted meanwhile.
    match (first.limit, first.value) {
        (Some(limit), Some(value)) => {
            Err(LimitBreach { limit, value, actual: u64::try_from(asked).unwrap_or(u64::MAX) }
                .into())
        }
        _ => {
            let users: Vec<&str> = report.failed.iter().map(|f| f.account.as_str()).collect();
            Err(RongError::param(format!("tags not set for {}", users.join(", "))))
        }
    }
}

/// Handle the `POST /user/tags/get.{json,xml}` route: the tags of each user, `[]` for users
/// without tags and for users herald does not know.
pub async fn get_route(State(state): State<AppState>, call: Call) -> Reply {
    call.answer(get(&state, &call).await)
}

async fn get(state: &AppState, call: &Call) -> Result<Vec<(&'static str, Value)>, RongError> {
    let users = read_get(&call.body)?;
    let (found, _unknown) = directory::get_tags(&state.directory, &call.app, &users).await?;
    let result: Map<String, Value> = users
        .into_iter()
        .map(|user| {
            let tags = found.get(&user).cloned().unwrap_or_default();
            (user, Value::from(tags))
        })
        .collect();
    Ok(vec![("result", Value::Object(result))])
}

/// The users of a `/user/tags/get` form body.
pub fn read_get(body: &[u8]) -> Result<Vec<String>, RongError> {
    let form = Form::parse(body)?;
    let users = form.all("userIds");
    if users.is_empty() {
        return Err(RongError::param("userIds is required"));
    }
    LimitBreach::check("userIds", MAX_GET_USERS, users.len())?;
    for (i, user) in users.iter().enumerate() {
        check_user(&format!("userIds[{i}]"), user)?;
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    fn code(result: Result<(), RongError>) -> u32 {
        result.err().map(|e| e.code_and_status().0).unwrap_or(200)
    }

    #[test]
    fn tag_rules() {
        assert_eq!(code(check_tags("tags", &tags(&["bj", "男", "v1.2", "city:bj", "a_b-c"]))), 200);
        assert_eq!(code(check_tags("tags", &tags(&[]))), 200, "[] clears");
        let twenty_one: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(code(check_tags("tags", &twenty_one)), 1005);
        assert_eq!(code(check_tags("tags", &tags(&[&"x".repeat(40)]))), 200);
        assert_eq!(code(check_tags("tags", &tags(&[&"x".repeat(41)]))), 1005);
        // 14 three-byte characters: 42 bytes although 14 characters.
        assert_eq!(code(check_tags("tags", &tags(&[&"男".repeat(14)]))), 1005);
        for bad in ["a b", "a,b", "a\"b", "a\nb", "<b>", "a/b", "😀", ""] {
            assert_eq!(code(check_tags("tags", &tags(&[bad]))), 1002, "{bad:?}");
        }
    }
}
