//! Errors of the audience language: what is wrong, and the JSON path of the node that is wrong.

use std::fmt;

use serde::Serialize;

/// An audience expression that was refused, with the path of the offending node
/// (`$` is the root: `$.and[1].attr.name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("audience {path}: {kind}")]
pub struct AudienceError {
    pub path: String,
    #[serde(flatten)]
    pub kind: AudienceErrorKind,
}

/// Why an audience expression was refused. Breaches of a per-app limit name the
/// [`Limits`](crate::Limits) field and its value so that operators know which knob to turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AudienceErrorKind {
    #[error("expected an object")]
    NotAnObject,
    #[error("expected exactly one key, found {found}")]
    KeyCount { found: usize },
    #[error(
        "unknown node `{key}`; expected all, accounts, tag, attr, platform, package, and, or or not"
    )]
    UnknownNode { key: String },
    #[error("unknown field `{field}`")]
    UnknownField { field: String },
    #[error("missing field `{field}`")]
    MissingField { field: &'static str },
    #[error("`eq` and `in` are exclusive")]
    EqAndIn,
    #[error("expected {expected}")]
    WrongType { expected: &'static str },
    #[error("empty list")]
    EmptyList,
    #[error("empty tag")]
    EmptyTag,
    #[error("empty attribute value")]
    EmptyValue,
    #[error("empty attribute name")]
    EmptyAttributeName,
    #[error("empty account")]
    EmptyAccount,
    #[error("empty package")]
    EmptyPackage,
    #[error("control character at byte {at}")]
    ControlCharacter { at: usize },
    #[error("platform `{platform}` must be lower-case ASCII letters, digits, `_` or `-`")]
    InvalidPlatform { platform: String },
    #[error("unknown attribute `{name}`")]
    UnknownAttribute { name: String },
    #[error("nested deeper than limit {limit} = {value}")]
    TooDeep { limit: &'static str, value: u32 },
    #[error("more nodes than limit {limit} = {value}")]
    TooManyNodes { limit: &'static str, value: u32 },
    #[error("tag is {actual} bytes, limit {limit} is {value}")]
    TagTooLong { limit: &'static str, value: u32, actual: usize },
    #[error("attribute value is {actual} bytes, limit {limit} is {value}")]
    ValueTooLong { limit: &'static str, value: u32, actual: usize },
    #[error("{actual} accounts named, limit {limit} is {value}")]
    TooManyAccounts { limit: &'static str, value: u32, actual: usize },
}

/// Where a walker stands in the expression. Lives on the stack of the walk and is rendered
/// only when an error is reported, so valid expressions cost no allocation for paths.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'static str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub(crate) fn key(&'a self, key: &'static str) -> Path<'a> {
        Path::Key(self, key)
    }

    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    pub(crate) fn error(&self, kind: AudienceErrorKind) -> AudienceError {
        AudienceError { path: self.to_string(), kind }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}
