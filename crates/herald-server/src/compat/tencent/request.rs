//! Reading Tencent request bodies: field by field, so that each wrong field is refused with the
//! code Tencent gives for it rather than one generic parse error.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::error::TencentError;

/// Most accounts (or entries naming accounts) one call may carry.
pub const MAX_ACCOUNTS: usize = 100;

/// A request body as a JSON object.
pub type Body = Map<String, Value>;

/// Parses a body; an empty one reads as `{}` (`im_get_attr_name` takes no fields).
pub fn parse(bytes: &[u8]) -> Result<Body, TencentError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(body)) => Ok(body),
        Ok(_) => Err(TencentError::JsonParse("the body must be a JSON object".into())),
        Err(err) => Err(TencentError::JsonParse(err.to_string())),
    }
}

/// A required array field.
pub fn array<'a>(body: &'a Body, field: &str) -> Result<&'a Vec<Value>, TencentError> {
    match body.get(field) {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(invalid(format!("{field} must be an array"))),
        None => Err(invalid(format!("{field} is required"))),
    }
}

/// A required array of at most [`MAX_ACCOUNTS`] entries.
pub fn entries<'a>(body: &'a Body, field: &'static str) -> Result<&'a Vec<Value>, TencentError> {
    let items = array(body, field)?;
    if items.is_empty() {
        return Err(invalid(format!("{field} must not be empty")));
    }
    if items.len() > MAX_ACCOUNTS {
        return Err(TencentError::TooManyAccounts { field, max: MAX_ACCOUNTS, got: items.len() });
    }
    Ok(items)
}

/// A required non-empty array of at most [`MAX_ACCOUNTS`] account names.
pub fn accounts(body: &Body, field: &'static str) -> Result<Vec<String>, TencentError> {
    entries(body, field)?.iter().map(|item| account(item, field)).collect::<Result<Vec<_>, _>>()
}

/// One account name.
pub fn account(value: &Value, field: &str) -> Result<String, TencentError> {
    match value.as_str() {
        Some(name) if !name.is_empty() => Ok(name.to_owned()),
        _ => Err(invalid(format!("{field} must hold non-empty strings"))),
    }
}

/// The `To_Account` of one entry of a batch (`UserTags`, `UserAttrs`).
pub fn entry_account(entry: &Value, field: &str) -> Result<String, TencentError> {
    let account = entry
        .as_object()
        .and_then(|entry| entry.get("To_Account"))
        .ok_or_else(|| invalid(format!("each entry of {field} needs To_Account")))?;
    self::account(account, "To_Account")
}

/// Distinct names in first-seen order.
pub fn distinct(names: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    names.iter().filter(|n| seen.insert(n.as_str())).cloned().collect()
}

/// A 70402 refusal.
pub fn invalid(message: String) -> TencentError {
    TencentError::InvalidParameter(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Body {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(parse(b"").is_ok_and(|b| b.is_empty()));
        assert_eq!(parse(b"{").map_err(|e| e.code()).err(), Some(90001));
        assert_eq!(parse(b"[1]").map_err(|e| e.code()).err(), Some(90001));
    }

    #[test]
    fn account_lists_are_bounded() {
        let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
        let err = accounts(&body(json!({"To_Account": many})), "To_Account").err();
        assert_eq!(err.map(|e| e.code()), Some(90018));
        let err = accounts(&body(json!({"To_Account": "u1"})), "To_Account").err();
        assert_eq!(err.map(|e| e.code()), Some(70402));
        let ok = accounts(&body(json!({"To_Account": ["u1", "u2"]})), "To_Account");
        assert_eq!(ok.ok(), Some(vec!["u1".to_owned(), "u2".to_owned()]));
    }
}
