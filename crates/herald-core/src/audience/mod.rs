//! The audience language: who receives a push, as JSON (`{"and":[{"tag":"x"},{"not":{...}}]}`).
//!
//! Three steps, each its own file: [`parse`] reads the shape of the JSON into an [`Audience`];
//! [`AudienceRules`] checks it against one app's limits and attribute names and resolves it to a
//! normalised [`Plan`]; `herald-index` evaluates the plan to a bitmap. Every refusal is an
//! [`AudienceError`] with the JSON path of the offending node. The language reference with
//! examples is `docs/audience.md`.

mod error;
mod expr;
mod parse;
mod plan;
mod rules;

#[cfg(test)]
mod tests;

pub use error::{AudienceError, AudienceErrorKind};
pub use expr::{AttrFilter, AttrMatch, Audience};
pub use plan::Plan;
pub use rules::AudienceRules;

/// The deepest nesting any app may be allowed (the hard bound of `Limits::audience_depth`).
pub const MAX_DEPTH: u32 = 64;

/// Reads the shape of an audience: one key per node, known keys, the right JSON types. Content
/// (empty strings, limits, attribute names) is not checked; input from apps goes through
/// [`AudienceRules::parse`]. This is for audiences that were checked when stored.
///
/// # Errors
///
/// The first shape problem in document order, with its path; nesting beyond [`MAX_DEPTH`].
pub fn parse(value: &serde_json::Value) -> Result<Audience, AudienceError> {
    parse::parse_shape(value, MAX_DEPTH)
}
