//! The `Condition` of `im_push`, translated into a herald audience expression
//! (docs/audience.md).
//!
//! # Format
//!
//! ```text
//! absent                                        → {"all": true}
//! {"TagsAnd":["a","b"]}                         → {"and": [{"tag":"a"}, {"tag":"b"}]}
//! {"TagsOr":["a","b"]}                          → {"or": [{"tag":"a"}, {"tag":"b"}]}
//! {"TagsAnd":["a"],"TagsOr":["b","c"]}          → {"and": [{"tag":"a"}, {"or": [{"tag":"b"}, {"tag":"c"}]}]}
//! {"AttrsAnd":{"city":"Shenzhen","tier":"gold"}} → {"and": [{"attr":{"name":"city","eq":"Shenzhen"}}, ...]}
//! {"AttrsOr":{...}}                             → {"or": [...]}
//! ```
//!
//! Tags and attributes may not be combined (90039); a tag may not be in both lists (90022).

use std::collections::{BTreeSet, HashSet};

use herald_core::account::check_text;
use serde_json::{json, Map, Value};

use super::error::TencentError;
use super::tags::{check_tag, MAX_TAGS};

/// The condition fields Tencent defines; any other key is refused, since ignoring a misspelt
/// one would widen the push to every user.
const FIELDS: [&str; 4] = ["TagsAnd", "TagsOr", "AttrsAnd", "AttrsOr"];
/// Longest attribute value, in bytes.
const MAX_VALUE_BYTES: usize = 50;

/// The audience of a push with `condition`, given the app's attribute names.
pub fn audience(
    condition: Option<&Value>,
    attribute_names: &HashSet<String>,
) -> Result<Value, TencentError> {
    let condition = match condition {
        None | Some(Value::Null) => return Ok(json!({"all": true})),
        Some(Value::Object(condition)) => condition,
        Some(_) => return Err(TencentError::MessageFormat("Condition must be an object".into())),
    };
    if let Some(unknown) = condition.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(TencentError::MessageFormat(format!("unknown Condition field {unknown}")));
    }
    let present = |field: &str| condition.get(field).is_some_and(|v| !is_empty(v));
    let has_tags = present("TagsAnd") || present("TagsOr");
    let has_attrs = present("AttrsAnd") || present("AttrsOr");
    if has_tags && has_attrs {
        return Err(TencentError::TagsAndAttrs);
    }
    let tags_and = tags(condition, "TagsAnd")?;
    let tags_or = tags(condition, "TagsOr")?;
    if let Some(both) = tags_and.iter().find(|t| tags_or.contains(*t)) {
        return Err(TencentError::TagInBoth(both.clone()));
    }
    let attrs_and = attrs(condition, "AttrsAnd", attribute_names)?;
    let attrs_or = attrs(condition, "AttrsOr", attribute_names)?;

    let tag = |t: String| json!({"tag": t});
    let mut all: Vec<Value> = tags_and.into_iter().map(tag).collect();
    all.extend(attrs_and);
    let any: Vec<Value> = tags_or.into_iter().map(tag).chain(attrs_or).collect();
    if !any.is_empty() {
        all.push(combine("or", any));
    }
    Ok(if all.is_empty() { json!({"all": true}) } else { combine("and", all) })
}

/// Absent, `null`, `[]` and `{}` all mean "no such condition".
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        _ => false,
    }
}

/// One node as itself, several under `op`.
fn combine(op: &str, mut nodes: Vec<Value>) -> Value {
    if nodes.len() == 1 {
        nodes.remove(0)
    } else {
        json!({ op: nodes })
    }
}

/// A tag list: at most 10 tags of 1 to 50 bytes, deduplicated in order.
fn tags(condition: &Map<String, Value>, field: &'static str) -> Result<Vec<String>, TencentError> {
    let items = match condition.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(TencentError::MessageFormat(format!("{field} must be an array"))),
    };
    if items.len() > MAX_TAGS {
        return Err(TencentError::TooManyTags { field, max: MAX_TAGS, got: items.len() });
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let tag = check_tag(item, field)?;
        if seen.insert(tag.clone()) {
            out.push(tag);
        }
    }
    Ok(out)
}

/// An attribute map `{"name":"value"}`: known names, values of 1 to 50 bytes.
fn attrs(
    condition: &Map<String, Value>,
    field: &str,
    names: &HashSet<String>,
) -> Result<Vec<Value>, TencentError> {
    let pairs = match condition.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(pairs)) => pairs,
        Some(_) => return Err(TencentError::MessageFormat(format!("{field} must be an object"))),
    };
    let invalid = TencentError::InvalidAttribute;
    pairs
        .iter()
        .map(|(name, value)| {
            if !names.contains(name) {
                return Err(invalid(format!("{field}: unknown attribute name {name}")));
            }
            let value = value
                .as_str()
                .ok_or_else(|| invalid(format!("{field}.{name} must be a string")))?;
            check_text("attribute value", value, MAX_VALUE_BYTES)
                .map_err(|err| invalid(format!("{field}.{name}: {err}")))?;
            Ok(json!({"attr": {"name": name, "eq": value}}))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> HashSet<String> {
        ["city".to_owned(), "tier".to_owned()].into()
    }

    fn translate(condition: Value) -> Result<Value, u32> {
        audience(Some(&condition), &names()).map_err(|e| e.code())
    }

    #[test]
    fn absent_or_empty_condition_is_everyone() {
        assert_eq!(audience(None, &names()).ok(), Some(json!({"all": true})));
        assert_eq!(translate(json!({})), Ok(json!({"all": true})));
        assert_eq!(translate(json!({"TagsAnd": []})), Ok(json!({"all": true})));
    }

    #[test]
    fn tag_lists_become_and_or() {
        assert_eq!(
            translate(json!({"TagsAnd": ["a", "b"]})),
            Ok(json!({"and": [{"tag": "a"}, {"tag": "b"}]}))
        );
        assert_eq!(
            translate(json!({"TagsOr": ["a", "b"]})),
            Ok(json!({"or": [{"tag": "a"}, {"tag": "b"}]}))
        );
        assert_eq!(translate(json!({"TagsOr": ["a"]})), Ok(json!({"tag": "a"})));
        assert_eq!(
            translate(json!({"TagsAnd": ["a"], "TagsOr": ["b", "c"]})),
            Ok(json!({"and": [{"tag": "a"}, {"or": [{"tag": "b"}, {"tag": "c"}]}]}))
        );
    }

    #[test]
    fn attribute_maps_become_and_or() {
        assert_eq!(
            translate(json!({"AttrsAnd": {"city": "Shenzhen", "tier": "platinum"}})),
            Ok(json!({"and": [
                {"attr": {"name": "city", "eq": "Shenzhen"}},
                {"attr": {"name": "tier", "eq": "platinum"}}
            ]}))
        );
        assert_eq!(
            translate(json!({"AttrsOr": {"city": "Shenzhen"}})),
            Ok(json!({"attr": {"name": "city", "eq": "Shenzhen"}}))
        );
    }

    #[test]
    fn refusals_have_their_codes() {
        assert_eq!(translate(json!({"TagsAnd": ["a"], "TagsOr": ["a"]})), Err(90022));
        assert_eq!(translate(json!({"TagsAnd": ["a"], "AttrsOr": {"city": "x"}})), Err(90039));
        let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        assert_eq!(translate(json!({ "TagsOr": eleven })), Err(90032));
        assert_eq!(translate(json!({"TagsOr": ["x".repeat(51)]})), Err(90020));
        assert_eq!(translate(json!({"TagsOr": [""]})), Err(90040));
        assert_eq!(translate(json!({"AttrsAnd": {"sex": "f"}})), Err(90033));
        assert_eq!(translate(json!({"AttrsAnd": {"city": 1}})), Err(90033));
        assert_eq!(translate(json!({"TagAnd": ["a"]})), Err(90010));
        assert_eq!(translate(json!(["a"])), Err(90010));
    }
}
