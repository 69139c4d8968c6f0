//! The `audience` of `/push.json`, translated into a herald audience expression
//! (docs/audience.md) and the push's platform filter.
//!
//! | RongCloud | herald |
//! |---|---|
//! | `is_to_all: true` | `{"all":true}`; every other condition is ignored |
//! | `userid: [..]` (≤ 1000) | `{"accounts":[..]}`; tags and packageName are ignored, and so is `platform` |
//! | `tag: [a, b]` (≤ 20) | `{"tag":"a"}` AND `{"tag":"b"}` |
//! | `tag_or: [c, d]` (≤ 20) | `{"or":[{"tag":"c"},{"tag":"d"}]}`, AND-ed with `tag` when both are given |
//! | `packageName: p` | `{"package":"p"}`, AND-ed with the tag conditions |
//!
//! `platform` becomes the push's platform filter unless `userid` is given.

use herald_core::LimitBreach;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::RongError;
use super::tags::{check_tags, check_user};

/// Users named in one push.
const MAX_USERS: u32 = 1_000;

/// `audience` as sent.
#[derive(Debug, Default, Deserialize)]
pub struct RongAudience {
    tag: Option<Vec<String>>,
    tag_or: Option<Vec<String>>,
    userid: Option<Vec<String>>,
    #[serde(rename = "packageName")]
    package_name: Option<String>,
    /// A boolean; the documents type it as a string, so `"true"` / `"false"` are read too.
    is_to_all: Option<Value>,
}

/// Who a push goes to, in herald's terms.
#[derive(Debug, PartialEq)]
pub struct Target {
    pub audience: Value,
    /// Devices of these platforms only; `None` for every device of the audience.
    pub platforms: Option<Vec<String>>,
}

/// Translates the audience; `platforms` is the request's checked `platform` list.
pub fn translate(audience: &RongAudience, platforms: Vec<String>) -> Result<Target, RongError> {
    if is_to_all(audience.is_to_all.as_ref())? {
        return Ok(Target { audience: json!({"all": true}), platforms: Some(platforms) });
    }
    let non_empty = |list: &Option<Vec<String>>| list.clone().filter(|l| !l.is_empty());
    if let Some(users) = non_empty(&audience.userid) {
        LimitBreach::check("userid", MAX_USERS, users.len())?;
        for (i, user) in users.iter().enumerate() {
            check_user(&format!("audience.userid[{i}]"), user)?;
        }
        // The documents: with userid, the platform parameter has no effect.
        return Ok(Target { audience: json!({"accounts": users}), platforms: None });
    }
    let mut all_of = Vec::new();
    if let Some(tags) = non_empty(&audience.tag) {
        check_tags("tag", &tags)?;
        all_of.extend(tags.into_iter().map(|tag| json!({"tag": tag})));
    }
    if let Some(tags) = non_empty(&audience.tag_or) {
        check_tags("tag_or", &tags)?;
        let mut any_of: Vec<Value> = tags.into_iter().map(|tag| json!({"tag": tag})).collect();
        all_of.push(match any_of.len() {
            1 => any_of.remove(0),
            _ => json!({"or": any_of}),
        });
    }
    if let Some(package) = audience.package_name.as_deref().filter(|p| !p.is_empty()) {
        all_of.push(json!({"package": package}));
    }
    let audience = match all_of.len() {
        0 => {
            return Err(RongError::param(
                "audience needs is_to_all, userid, tag, tag_or or packageName",
            ))
        }
        1 => all_of.remove(0),
        _ => json!({"and": all_of}),
    };
    Ok(Target { audience, platforms: Some(platforms) })
}

fn is_to_all(value: Option<&Value>) -> Result<bool, RongError> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => {
            Err(RongError::param(format!("is_to_all must be true or false, got {other}")))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn target(audience: Value) -> Result<Target, RongError> {
        let audience: RongAudience = serde_json::from_value(audience).unwrap();
        translate(&audience, vec!["ios".into(), "android".into()])
    }

    fn both() -> Option<Vec<String>> {
        Some(vec!["ios".into(), "android".into()])
    }

    #[test]
    fn is_to_all_ignores_every_other_condition() {
        let t = target(json!({"is_to_all": true, "tag": ["a"], "userid": ["u"]})).unwrap();
        assert_eq!(t, Target { audience: json!({"all": true}), platforms: both() });
        assert_eq!(target(json!({"is_to_all": "true"})).unwrap().audience, json!({"all": true}));
        assert_eq!(target(json!({"is_to_all": 1})).unwrap_err().code_and_status().0, 1002);
    }

    #[test]
    fn userid_wins_over_tags_and_platform() {
        let t = target(json!({"tag": ["女", "年轻"], "tag_or": ["北京", "上海"],
            "userid": ["123", "456"], "is_to_all": false}))
        .unwrap();
        assert_eq!(t, Target { audience: json!({"accounts": ["123", "456"]}), platforms: None });
    }

    #[test]
    fn tags_and_tag_or_both_hold() {
        let t = target(json!({"tag": ["女", "年轻"], "tag_or": ["北京", "上海"]})).unwrap();
        assert_eq!(
            t.audience,
            json!({"and": [{"tag": "女"}, {"tag": "年轻"},
                {"or": [{"tag": "北京"}, {"tag": "上海"}]}]})
        );
        assert_eq!(t.platforms, both());
        assert_eq!(target(json!({"tag_or": ["a"]})).unwrap().audience, json!({"tag": "a"}));
        assert_eq!(
            target(json!({"tag_or": ["a", "b"], "userid": []})).unwrap().audience,
            json!({"or": [{"tag": "a"}, {"tag": "b"}]})
        );
    }

    #[test]
    fn package_name_is_and_with_tags() {
        let alone = target(json!({"packageName": "cn.xxxxxx.xxx"})).unwrap();
        assert_eq!(alone.audience, json!({"package": "cn.xxxxxx.xxx"}));
        let with_tag = target(json!({"packageName": "p", "tag": ["a"]})).unwrap();
        assert_eq!(with_tag.audience, json!({"and": [{"tag": "a"}, {"package": "p"}]}));
    }

    #[test]
    fn limits_and_empty_audience() {
        let code = |a: Value| target(a).unwrap_err().code_and_status().0;
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(code(json!({"tag": many})), 1005);
        assert_eq!(code(json!({"tag_or": many})), 1005);
        let users: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
        assert_eq!(code(json!({"userid": users})), 1005);
        assert_eq!(code(json!({"is_to_all": false})), 1002);
        assert_eq!(code(json!({})), 1002);
        assert_eq!(code(json!({"tag": ["a b"]})), 1002);
    }
}
