//! Reads the shape of an audience from JSON: one key per node, the right JSON type for each key.
//!
//! Written over `serde_json::Value` rather than derived so that every error carries the path of
//! the node it is about; serde's derived errors only give a line and column.

use serde_json::{Map, Value};

use super::error::{AudienceError, AudienceErrorKind as Kind, Path};
use super::expr::{AttrFilter, AttrMatch, Audience};

/// Reads JSON into an [`Audience`], nesting at most `max_depth` levels (the root is level 1).
///
/// The depth guard is here, not only in the checker, because this walk recurses and the input
/// is untrusted.
pub(crate) fn parse_shape(value: &Value, max_depth: u32) -> Result<Audience, AudienceError> {
    Parser { max_depth }.node(value, &Path::Root, 1)
}

struct Parser {
    max_depth: u32,
}

impl Parser {
    fn node(&self, value: &Value, path: &Path<'_>, depth: u32) -> Result<Audience, AudienceError> {
        if depth > self.max_depth {
            return Err(
                path.error(Kind::TooDeep { limit: "audience_depth", value: self.max_depth })
            );
        }
        let object = value.as_object().ok_or_else(|| path.error(Kind::NotAnObject))?;
        let mut entries = object.iter();
        let (key, value) = match (entries.next(), entries.next()) {
            (Some(entry), None) => entry,
            _ => return Err(path.error(Kind::KeyCount { found: object.len() })),
        };
        Ok(match key.as_str() {
            "all" => {
                if value != &Value::Bool(true) {
                    return Err(path.key("all").error(Kind::WrongType { expected: "true" }));
                }
                Audience::All
            }
            "accounts" => Audience::Accounts(strings(value, &path.key("accounts"))?),
            "tag" => Audience::Tag(string(value, &path.key("tag"))?),
            "attr" => Audience::Attr(attr(value, &path.key("attr"))?),
            "platform" => Audience::Platform(string(value, &path.key("platform"))?),
            "package" => Audience::Package(string(value, &path.key("package"))?),
            "and" => Audience::And(self.children(value, &path.key("and"), depth)?),
            "or" => Audience::Or(self.children(value, &path.key("or"), depth)?),
            "not" => Audience::Not(Box::new(self.node(value, &path.key("not"), depth + 1)?)),
            other => return Err(path.error(Kind::UnknownNode { key: other.to_owned() })),
        })
    }

    fn children(
        &self,
        value: &Value,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<Vec<Audience>, AudienceError> {
        let items = value
            .as_array()
            .ok_or_else(|| path.error(Kind::WrongType { expected: "an array of nodes" }))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.node(item, &path.index(i), depth + 1))
            .collect()
    }
}

fn attr(value: &Value, path: &Path<'_>) -> Result<AttrFilter, AudienceError> {
    let object: &Map<String, Value> =
        value.as_object().ok_or_else(|| path.error(Kind::NotAnObject))?;
    if let Some(field) = object.keys().find(|key| !matches!(key.as_str(), "name" | "eq" | "in")) {
        return Err(path.error(Kind::UnknownField { field: field.clone() }));
    }
    let name =
        object.get("name").ok_or_else(|| path.error(Kind::MissingField { field: "name" }))?;
    let name = string(name, &path.key("name"))?;
    let matches = match (object.get("eq"), object.get("in")) {
        (Some(value), None) => AttrMatch::Eq(string(value, &path.key("eq"))?),
        (None, Some(values)) => AttrMatch::In(strings(values, &path.key("in"))?),
        (Some(_), Some(_)) => return Err(path.error(Kind::EqAndIn)),
        (None, None) => return Err(path.error(Kind::MissingField { field: "eq or in" })),
    };
    Ok(AttrFilter { name, matches })
}

fn string(value: &Value, path: &Path<'_>) -> Result<String, AudienceError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| path.error(Kind::WrongType { expected: "a string" }))
}

fn strings(value: &Value, path: &Path<'_>) -> Result<Vec<String>, AudienceError> {
    let items = value
        .as_array()
        .ok_or_else(|| path.error(Kind::WrongType { expected: "an array of strings" }))?;
    items.iter().enumerate().map(|(i, item)| string(item, &path.index(i))).collect()
}
