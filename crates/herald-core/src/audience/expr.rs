//! The audience expression as written by an app: names, not slots; nesting as given.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Deserializer, Serialize};

/// Who receives a push, in the words of the app. Serialises to the JSON form it is parsed from,
/// so a stored push shows the audience exactly as it was asked for.
///
/// # Format
///
/// ```json
/// {"and": [{"tag": "stock-a"}, {"attr": {"name": "city", "eq": "Shenzhen"}}, {"not": {"platform": "web"}}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every eligible account of the app: `{"all": true}`.
    All,
    /// Accounts named by their user id: `{"accounts": ["u1", "u2"]}`.
    Accounts(Vec<String>),
    /// Accounts carrying a tag: `{"tag": "x"}`.
    Tag(String),
    /// Accounts whose attribute has a value: `{"attr": {"name": "city", "eq": "Shenzhen"}}`.
    Attr(AttrFilter),
    /// Accounts with a device of a platform: `{"platform": "ios"}`.
    Platform(String),
    /// Accounts with a device of an app package: `{"package": "com.x"}`.
    Package(String),
    /// Accounts matching every child: `{"and": [...]}`.
    And(Vec<Audience>),
    /// Accounts matching any child: `{"or": [...]}`.
    Or(Vec<Audience>),
    /// Eligible accounts not matching the child: `{"not": {...}}`.
    Not(Box<Audience>),
}

/// The `attr` node: an attribute name and the values it may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrFilter {
    pub name: String,
    pub matches: AttrMatch,
}

/// The values an `attr` node accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrMatch {
    /// `"eq": "gold"`
    Eq(String),
    /// `"in": ["gold", "platinum"]`
    In(Vec<String>),
}

impl Audience {
    /// The `attr` node with one accepted value.
    pub fn attr_eq(name: impl Into<String>, value: impl Into<String>) -> Self {
        Audience::Attr(AttrFilter { name: name.into(), matches: AttrMatch::Eq(value.into()) })
    }

    /// The `attr` node with a list of accepted values.
    pub fn attr_in<I, S>(name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values = values.into_iter().map(Into::into).collect();
        Audience::Attr(AttrFilter { name: name.into(), matches: AttrMatch::In(values) })
    }

    /// The `tag` node.
    pub fn tag(tag: impl Into<String>) -> Self {
        Audience::Tag(tag.into())
    }

    /// The `not` node.
    #[allow(clippy::should_implement_trait)]
    pub fn not(child: Audience) -> Self {
        Audience::Not(Box::new(child))
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Audience::All => map.serialize_entry("all", &true)?,
            Audience::Accounts(accounts) => map.serialize_entry("accounts", accounts)?,
            Audience::Tag(tag) => map.serialize_entry("tag", tag)?,
            Audience::Attr(filter) => map.serialize_entry("attr", filter)?,
            Audience::Platform(platform) => map.serialize_entry("platform", platform)?,
            Audience::Package(package) => map.serialize_entry("package", package)?,
            Audience::And(children) => map.serialize_entry("and", children)?,
            Audience::Or(children) => map.serialize_entry("or", children)?,
            Audience::Not(child) => map.serialize_entry("not", child)?,
        }
        map.end()
    }
}

impl Serialize for AttrFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("name", &self.name)?;
        match &self.matches {
            AttrMatch::Eq(value) => map.serialize_entry("eq", value)?,
            AttrMatch::In(values) => map.serialize_entry("in", values)?,
        }
        map.end()
    }
}

/// Reads the shape only (see [`super::parse`]); input from apps goes through
/// [`AudienceRules::parse`](super::AudienceRules::parse), which also checks limits and names.
impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        super::parse(&value).map_err(serde::de::Error::custom)
    }
}
