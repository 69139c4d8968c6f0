//! The resolved, canonical form of an audience that the index evaluates.

use serde::Serialize;

/// An audience with attribute names resolved to slots, in canonical form.
///
/// [`AudienceRules::plan`](super::AudienceRules::plan) produces it normalised: `and` / `or` have at
/// least two children, none of the same kind and none `all`; children are sorted and distinct;
/// `not` never wraps `not`; lists of accounts and values are sorted and distinct. Equal audiences
/// written differently therefore often yield equal plans, which makes plans usable as cache keys.
/// Evaluators must still accept any shape (an empty `And` is every eligible account, an empty `Or`
/// is nobody), since the variants are public.
///
/// Leaves select among eligible accounts; `Not` is the eligible accounts minus its child.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    All,
    /// Account names; the caller resolves them to ids (the store knows the mapping).
    Accounts(Vec<String>),
    Tag(String),
    /// An attribute slot and the values it may have (one value is the `eq` form).
    Attr {
        slot: u8,
        values: Vec<String>,
    },
    Platform(String),
    Package(String),
    And(Vec<Plan>),
    Or(Vec<Plan>),
    Not(Box<Plan>),
}

impl Plan {
    /// Every account name the plan mentions, sorted and distinct: what the caller resolves to ids
    /// before evaluating, in one store round trip.
    pub fn account_names(&self) -> Vec<&str> {
        fn collect<'a>(plan: &'a Plan, out: &mut Vec<&'a str>) {
            match plan {
                Plan::Accounts(names) => out.extend(names.iter().map(String::as_str)),
                Plan::And(children) | Plan::Or(children) => {
                    children.iter().for_each(|child| collect(child, out))
                }
                Plan::Not(child) => collect(child, out),
                Plan::All
                | Plan::Tag(_)
                | Plan::Attr { .. }
                | Plan::Platform(_)
                | Plan::Package(_) => {}
            }
        }
        let mut out = Vec::new();
        collect(self, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether the plan reaches beyond a list of named accounts, i.e. is a broadcast in the sense
    /// of the broadcast rate limits.
    pub fn is_broadcast(&self) -> bool {
        match self {
            Plan::Accounts(_) => false,
            Plan::And(children) => children.iter().all(Plan::is_broadcast),
            Plan::Or(children) => children.iter().any(Plan::is_broadcast),
            Plan::All
            | Plan::Tag(_)
            | Plan::Attr { .. }
            | Plan::Platform(_)
            | Plan::Package(_)
            | Plan::Not(_) => true,
        }
    }

    /// The canonical form of this plan, with the same meaning.
    pub fn normalise(self) -> Plan {
        match self {
            Plan::All | Plan::Tag(_) | Plan::Platform(_) | Plan::Package(_) => self,
            Plan::Accounts(names) => Plan::Accounts(sorted(names)),
            Plan::Attr { slot, values } => Plan::Attr { slot, values: sorted(values) },
            Plan::Not(child) => match child.normalise() {
                Plan::Not(grandchild) => *grandchild,
                child => Plan::Not(Box::new(child)),
            },
            Plan::And(children) => {
                let mut flat = Vec::with_capacity(children.len());
                for child in children {
                    match child.normalise() {
                        // Every leaf already lies within the eligible accounts.
                        Plan::All => {}
                        Plan::And(grandchildren) => flat.extend(grandchildren),
                        child => flat.push(child),
                    }
                }
                collapse(flat, Plan::And, Plan::All)
            }
            Plan::Or(children) => {
                let mut flat = Vec::with_capacity(children.len());
                for child in children {
                    match child.normalise() {
                        Plan::All => return Plan::All,
                        Plan::Or(grandchildren) => flat.extend(grandchildren),
                        child => flat.push(child),
                    }
                }
                let flat = merge_alternatives(flat);
                collapse(flat, Plan::Or, Plan::Or(Vec::new()))
            }
        }
    }
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort_unstable();
    items.dedup();
    items
}

/// Sorts and deduplicates children, then replaces a list of one by its child.
fn collapse(mut children: Vec<Plan>, list: fn(Vec<Plan>) -> Plan, empty: Plan) -> Plan {
    children.sort_unstable();
    children.dedup();
    match children.len() {
        0 => empty,
        1 => children.pop().unwrap_or(empty),
        _ => list(children),
    }
}

/// Within an `or`, values of one attribute slot are one `attr` node with all the values, and
/// account lists are one list: fewer bitmaps to union and a single canonical spelling.
fn merge_alternatives(children: Vec<Plan>) -> Vec<Plan> {
    let mut out: Vec<Plan> = Vec::with_capacity(children.len());
    let mut accounts: Option<Vec<String>> = None;
    let mut slots: Vec<(u8, Vec<String>)> = Vec::new();
    for child in children {
        match child {
            Plan::Accounts(names) => accounts.get_or_insert_with(Vec::new).extend(names),
            Plan::Attr { slot, values } => match slots.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, merged)) => merged.extend(values),
                None => slots.push((slot, values)),
            },
            other => out.push(other),
        }
    }
    out.extend(accounts.map(|names| Plan::Accounts(sorted(names))));
    out.extend(slots.into_iter().map(|(slot, values)| Plan::Attr { slot, values: sorted(values) }));
    out
}
