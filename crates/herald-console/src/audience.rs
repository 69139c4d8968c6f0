//! The compose page's audience builder: form fields to an audience expression
//! (docs/audience.md), and any expression back to a one-line summary for lists.

use serde_json::{json, Value};

/// The builder's fields as typed. Tags and accounts are separated by commas, spaces or lines;
/// attribute conditions are `name=value` or `name=v1|v2`, one a line.
#[derive(Debug, Default, Clone)]
pub struct AudienceFields<'a> {
    pub everyone: bool,
    pub tags_all: &'a str,
    pub tags_any: &'a str,
    pub tags_none: &'a str,
    pub attributes: &'a str,
    pub platform: &'a str,
    pub package: &'a str,
    pub accounts: &'a str,
}

/// Why the fields make no audience.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("choose everyone, or at least one condition")]
    Empty,
    #[error("attribute conditions are name=value, one a line: {0:?}")]
    Attribute(String),
}

/// The expression the fields describe: every condition given must hold.
pub fn build(fields: &AudienceFields<'_>) -> Result<Value, BuildError> {
    if fields.everyone {
        return Ok(json!({"all": true}));
    }
    let mut parts: Vec<Value> = words(fields.tags_all).map(|tag| json!({"tag": tag})).collect();
    let any: Vec<Value> = words(fields.tags_any).map(|tag| json!({"tag": tag})).collect();
    if let Some(any) = one_or(any, "or") {
        parts.push(any);
    }
    let none: Vec<Value> = words(fields.tags_none).map(|tag| json!({"tag": tag})).collect();
    if let Some(none) = one_or(none, "or") {
        parts.push(json!({"not": none}));
    }
    for line in fields.attributes.lines().map(str::trim).filter(|l| !l.is_empty()) {
        parts.push(attribute(line)?);
    }
    if !fields.platform.trim().is_empty() {
        parts.push(json!({"platform": fields.platform.trim()}));
    }
    if !fields.package.trim().is_empty() {
        parts.push(json!({"package": fields.package.trim()}));
    }
    let accounts: Vec<&str> = words(fields.accounts).collect();
    if !accounts.is_empty() {
        parts.push(json!({"accounts": accounts}));
    }
    one_or(parts, "and").ok_or(BuildError::Empty)
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty())
}

/// One node as itself, several joined by `op`, none as nothing.
fn one_or(mut nodes: Vec<Value>, op: &str) -> Option<Value> {
    match nodes.len() {
        0 => None,
        1 => nodes.pop(),
        _ => Some(json!({ op: nodes })),
    }
}

fn attribute(line: &str) -> Result<Value, BuildError> {
    let Some((name, value)) = line.split_once('=') else {
        return Err(BuildError::Attribute(line.to_owned()));
    };
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return Err(BuildError::Attribute(line.to_owned()));
    }
    let values: Vec<&str> = value.split('|').map(str::trim).collect();
    Ok(match values.as_slice() {
        [one] => json!({"attr": {"name": name, "eq": one}}),
        many => json!({"attr": {"name": name, "in": many}}),
    })
}

/// A short reading of an expression: `tag:vip AND (tag:a OR tag:b)`.
pub fn summary(audience: &Value) -> String {
    let Some((key, arg)) = audience.as_object().and_then(|o| o.iter().next()) else {
        return audience.to_string();
    };
    let list = |op: &str| {
        let items: Vec<String> =
            arg.as_array().into_iter().flatten().map(|n| nested(n, op)).collect();
        items.join(&format!(" {op} "))
    };
    match key.as_str() {
        "all" => "everyone".into(),
        "tag" => format!("tag:{}", text(arg)),
        "platform" => format!("platform:{}", text(arg)),
        "package" => format!("package:{}", text(arg)),
        "accounts" => format!("{} account(s)", arg.as_array().map_or(0, Vec::len)),
        "attr" => format!("{}={}", text(&arg["name"]), text(arg.get("eq").unwrap_or(&arg["in"]))),
        "and" => list("AND"),
        "or" => list("OR"),
        "not" => format!("NOT {}", nested(arg, "NOT")),
        _ => audience.to_string(),
    }
}

/// A sub-expression, in parentheses when it joins with another operator.
fn nested(node: &Value, parent: &str) -> String {
    let inner = summary(node);
    let joins = node.get("and").is_some() || node.get("or").is_some();
    let same = node.get(parent.to_lowercase()).is_some();
    if joins && !same {
        format!("({inner})")
    } else {
        inner
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join("|"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyone_wins_over_conditions() {
        let fields = AudienceFields { everyone: true, tags_all: "vip", ..Default::default() };
        assert_eq!(build(&fields), Ok(json!({"all": true})));
    }

    #[test]
    fn one_tag_is_a_tag() {
        let fields = AudienceFields { tags_all: " vip ", ..Default::default() };
        assert_eq!(build(&fields), Ok(json!({"tag": "vip"})));
    }

    #[test]
    fn conditions_are_anded() {
        let fields = AudienceFields {
            tags_all: "vip",
            tags_any: "stock-a, stock-b",
            tags_none: "churned",
            attributes: "city=Shenzhen\ntier = gold|platinum",
            platform: "ios",
            package: "",
            accounts: "",
            everyone: false,
        };
        let expected = json!({"and": [
            {"tag": "vip"},
            {"or": [{"tag": "stock-a"}, {"tag": "stock-b"}]},
            {"not": {"tag": "churned"}},
            {"attr": {"name": "city", "eq": "Shenzhen"}},
            {"attr": {"name": "tier", "in": ["gold", "platinum"]}},
            {"platform": "ios"},
        ]});
        assert_eq!(build(&fields), Ok(expected));
    }

    #[test]
    fn pasted_accounts_split_on_lines_and_commas() {
        let fields = AudienceFields { accounts: "u1\nu2, u3\r\n", ..Default::default() };
        assert_eq!(build(&fields), Ok(json!({"accounts": ["u1", "u2", "u3"]})));
    }

    #[test]
    fn nothing_is_refused() {
        assert_eq!(build(&AudienceFields::default()), Err(BuildError::Empty));
        let bad = AudienceFields { attributes: "city", ..Default::default() };
        assert!(matches!(build(&bad), Err(BuildError::Attribute(_))));
    }

    #[test]
    fn summaries_read_like_the_builder() {
        let audience = json!({"and": [{"tag": "vip"}, {"or": [{"tag": "a"}, {"tag": "b"}]},
            {"not": {"tag": "c"}}]});
        assert_eq!(summary(&audience), "tag:vip AND (tag:a OR tag:b) AND NOT tag:c");
        assert_eq!(summary(&json!({"all": true})), "everyone");
        assert_eq!(summary(&json!({"accounts": ["u1", "u2"]})), "2 account(s)");
    }
}
