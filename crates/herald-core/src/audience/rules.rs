//! Checks an audience against one app's limits and attribute names, and resolves it to a [`Plan`].

use serde_json::Value;

use super::error::{AudienceError, AudienceErrorKind as Kind, Path};
use super::expr::{AttrMatch, Audience};
use super::parse::parse_shape;
use super::plan::Plan;
use crate::Limits;

/// What an audience is checked against: the app's limits and its attribute names.
#[derive(Debug, Clone, Copy)]
pub struct AudienceRules<'a> {
    pub limits: &'a Limits,
    /// Attribute name per slot (index = slot); `None` for an unnamed slot. Slots at or beyond
    /// `limits.attribute_slots` are ignored.
    pub attribute_names: &'a [Option<String>],
}

impl<'a> AudienceRules<'a> {
    pub fn new(limits: &'a Limits, attribute_names: &'a [Option<String>]) -> Self {
        Self { limits, attribute_names }
    }

    /// Reads an audience sent by the app: shape, content, limits and attribute names.
    ///
    /// # Errors
    ///
    /// The first problem met in document order, with the path of its node.
    pub fn parse(&self, value: &Value) -> Result<Audience, AudienceError> {
        let audience = parse_shape(value, self.limits.audience_depth)?;
        self.check(&audience)?;
        Ok(audience)
    }

    /// Checks an audience built in code (the compat layers translate into [`Audience`]) the same
    /// way [`parse`](Self::parse) checks JSON.
    pub fn check(&self, audience: &Audience) -> Result<(), AudienceError> {
        self.plan(audience).map(drop)
    }

    /// Checks an audience and resolves it to its normalised [`Plan`].
    pub fn plan(&self, audience: &Audience) -> Result<Plan, AudienceError> {
        let mut walk = Walk { rules: self, nodes: 0, accounts: 0 };
        Ok(walk.node(audience, &Path::Root, 1)?.normalise())
    }

    /// The slot an attribute name is bound to.
    pub fn slot(&self, name: &str) -> Option<u8> {
        let slots = usize::try_from(self.limits.attribute_slots).unwrap_or(usize::MAX);
        self.attribute_names
            .iter()
            .take(slots)
            .position(|slot_name| slot_name.as_deref() == Some(name))
            .and_then(|slot| u8::try_from(slot).ok())
    }
}

/// One pass over the expression: counters for the limits that span the whole expression.
struct Walk<'r, 'a> {
    rules: &'r AudienceRules<'a>,
    nodes: u32,
    accounts: usize,
}

impl Walk<'_, '_> {
    fn node(
        &mut self,
        audience: &Audience,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<Plan, AudienceError> {
        let limits = self.rules.limits;
        if depth > limits.audience_depth {
            return Err(
                path.error(Kind::TooDeep { limit: "audience_depth", value: limits.audience_depth })
            );
        }
        self.nodes += 1;
        if self.nodes > limits.audience_nodes {
            return Err(path.error(Kind::TooManyNodes {
                limit: "audience_nodes",
                value: limits.audience_nodes,
            }));
        }
        Ok(match audience {
            Audience::All => Plan::All,
            Audience::Accounts(names) => {
                let path = path.key("accounts");
                non_empty(names, &path)?;
                self.accounts += names.len();
                if self.accounts > usize::try_from(limits.accounts_per_push).unwrap_or(usize::MAX) {
                    return Err(path.error(Kind::TooManyAccounts {
                        limit: "accounts_per_push",
                        value: limits.accounts_per_push,
                        actual: self.accounts,
                    }));
                }
                for (i, name) in names.iter().enumerate() {
                    text(name, &path.index(i), Kind::EmptyAccount)?;
                }
                Plan::Accounts(names.clone())
            }
            Audience::Tag(tag) => {
                let path = path.key("tag");
                text(tag, &path, Kind::EmptyTag)?;
                if tag.len() > bytes(limits.tag_bytes) {
                    return Err(path.error(Kind::TagTooLong {
                        limit: "tag_bytes",
                        value: limits.tag_bytes,
                        actual: tag.len(),
                    }));
                }
                Plan::Tag(tag.clone())
            }
            Audience::Attr(filter) => {
                let path = path.key("attr");
                let name_path = path.key("name");
                text(&filter.name, &name_path, Kind::EmptyAttributeName)?;
                let slot = self.rules.slot(&filter.name).ok_or_else(|| {
                    name_path.error(Kind::UnknownAttribute { name: filter.name.clone() })
                })?;
                let values = match &filter.matches {
                    AttrMatch::Eq(value) => {
                        self.value(value, &path.key("eq"))?;
                        vec![value.clone()]
                    }
                    AttrMatch::In(values) => {
                        let path = path.key("in");
                        non_empty(values, &path)?;
                        for (i, value) in values.iter().enumerate() {
                            self.value(value, &path.index(i))?;
                        }
                        values.clone()
                    }
                };
                Plan::Attr { slot, values }
            }
            Audience::Platform(platform) => {
                let path = path.key("platform");
                let valid = !platform.is_empty()
                    && platform
                        .bytes()
                        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
                if !valid {
                    return Err(path.error(Kind::InvalidPlatform { platform: platform.clone() }));
                }
                Plan::Platform(platform.clone())
            }
            Audience::Package(package) => {
                text(package, &path.key("package"), Kind::EmptyPackage)?;
                Plan::Package(package.clone())
            }
            Audience::And(children) => {
                Plan::And(self.children(children, &path.key("and"), depth)?)
            }
            Audience::Or(children) => Plan::Or(self.children(children, &path.key("or"), depth)?),
            Audience::Not(child) => {
                Plan::Not(Box::new(self.node(child, &path.key("not"), depth + 1)?))
            }
        })
    }

    fn children(
        &mut self,
        children: &[Audience],
        path: &Path<'_>,
        depth: u32,
    ) -> Result<Vec<Plan>, AudienceError> {
        non_empty(children, path)?;
        children
            .iter()
            .enumerate()
            .map(|(i, child)| self.node(child, &path.index(i), depth + 1))
            .collect()
    }

    fn value(&self, value: &str, path: &Path<'_>) -> Result<(), AudienceError> {
        text(value, path, Kind::EmptyValue)?;
        let limit = self.rules.limits.attribute_value_bytes;
        if value.len() > bytes(limit) {
            return Err(path.error(Kind::ValueTooLong {
                limit: "attribute_value_bytes",
                value: limit,
                actual: value.len(),
            }));
        }
        Ok(())
    }
}

fn bytes(limit: u32) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

fn non_empty<T>(items: &[T], path: &Path<'_>) -> Result<(), AudienceError> {
    if items.is_empty() {
        return Err(path.error(Kind::EmptyList));
    }
    Ok(())
}

/// Refuses an empty string (with the kind given) and control characters, which have no place in
/// identifiers and would corrupt logs and consoles that print them.
fn text(value: &str, path: &Path<'_>, empty: Kind) -> Result<(), AudienceError> {
    if value.is_empty() {
        return Err(path.error(empty));
    }
    if let Some((at, _)) = value.char_indices().find(|(_, c)| c.is_control()) {
        return Err(path.error(Kind::ControlCharacter { at }));
    }
    Ok(())
}
