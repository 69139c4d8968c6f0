//! Evaluation of an audience plan to the bitmap of the accounts it selects.

use std::borrow::Cow;

use herald_core::audience::Plan;
use roaring::{MultiOps, RoaringBitmap};

use crate::index::AppIndex;

/// Resolves account names to ids; names without an account are left out.
pub type AccountLookup<'a> = &'a dyn Fn(&[String]) -> RoaringBitmap;

impl AppIndex {
    /// The eligible accounts an audience selects.
    ///
    /// Account names of `accounts` nodes are resolved by `accounts`, since only the store knows
    /// them; resolve [`Plan::account_names`] in one query first and look them up in memory here,
    /// so that no I/O happens under the index lock.
    ///
    /// Any plan shape is accepted; normalised plans are cheapest.
    pub fn evaluate(&self, plan: &Plan, accounts: AccountLookup<'_>) -> RoaringBitmap {
        let mut result = self.eval(plan, accounts).into_owned();
        if !self.strays.is_empty() {
            result -= &self.strays;
        }
        result
    }

    /// The accounts selected by `plan`, plus perhaps some of `strays`. Leaves are borrowed from
    /// the index so that a plan of one tag copies its bitmap once.
    fn eval<'a>(&'a self, plan: &Plan, accounts: AccountLookup<'_>) -> Cow<'a, RoaringBitmap> {
        match plan {
            Plan::All => Cow::Borrowed(&self.eligible),
            // The lookup may return any id; keeping only eligible ones keeps the result within
            // eligible ∪ strays, like every other leaf.
            Plan::Accounts(names) => Cow::Owned(accounts(names) & &self.eligible),
            Plan::Tag(tag) => borrowed(self.tags.get(tag)),
            Plan::Attr { slot, values } => {
                let Some(slot_values) = self.attributes.get(slot) else {
                    return Cow::Owned(RoaringBitmap::new());
                };
                match values.as_slice() {
                    [value] => borrowed(slot_values.get(value)),
                    values => union(
                        values
                            .iter()
                            .filter_map(|v| slot_values.get(v))
                            .map(Cow::Borrowed)
                            .collect(),
                    ),
                }
            }
            Plan::Platform(platform) => borrowed(self.platforms.get(platform)),
            Plan::Package(package) => borrowed(self.packages.get(package)),
            Plan::Not(child) => Cow::Owned(&self.eligible - self.eval(child, accounts).as_ref()),
            Plan::And(children) => Cow::Owned(self.and(children, accounts)),
            Plan::Or(children) => Cow::Owned(self.or(children, accounts)),
        }
    }

    /// `a AND b AND NOT c AND NOT d` is `(a ∩ b) − c − d`: negated children are subtracted
    /// instead of being complemented against the eligible set.
    fn and(&self, children: &[Plan], accounts: AccountLookup<'_>) -> RoaringBitmap {
        let (negated, positive) = split_negated(children);
        self.intersect(positive, &negated, accounts)
    }

    /// The intersection of `positive` minus every bitmap of `negated`; every eligible account
    /// when `positive` is empty.
    fn intersect(
        &self,
        positive: Vec<&Plan>,
        negated: &[&Plan],
        accounts: AccountLookup<'_>,
    ) -> RoaringBitmap {
        let mut positive: Vec<Cow<'_, RoaringBitmap>> =
            positive.into_iter().map(|child| self.eval(child, accounts)).collect();
        // Starting from the smallest bitmap keeps every intermediate result small.
        positive.sort_by_key(|bitmap| bitmap.len());
        let mut positive = positive.into_iter();
        let mut result = match positive.next() {
            Some(smallest) => smallest.into_owned(),
            None => self.eligible.clone(),
        };
        for bitmap in positive {
            if result.is_empty() {
                return result;
            }
            result &= bitmap.as_ref();
        }
        for child in negated {
            if result.is_empty() {
                return result;
            }
            result -= self.eval(child, accounts).as_ref();
        }
        result
    }

    /// `a OR b OR NOT c OR NOT d` is `eligible − ((c ∩ d) − (a ∪ b))`: the negated children are
    /// intersected and complemented once.
    fn or(&self, children: &[Plan], accounts: AccountLookup<'_>) -> RoaringBitmap {
        let (negated, mut positive) = split_negated(children);
        if negated.is_empty() {
            if let Some(at) = positive.iter().position(|child| is_and_not(child)) {
                let and_not = positive.swap_remove(at);
                return self.or_and_not(positive, and_not, accounts);
            }
        }
        let positive = positive.into_iter().map(|child| self.eval(child, accounts)).collect();
        let union = union(positive).into_owned();
        if negated.is_empty() {
            return union;
        }
        let mut excluded = self.intersect(negated, &[], accounts);
        excluded -= &union;
        &self.eligible - &excluded
    }

    /// `o OR (p AND NOT n)` as `(o ∪ p) − (n − o)`. The result is the same as `o ∪ (p − n)`, but
    /// `p − n` is usually sparse where `p` and `n` are dense, and roaring turns sparse results
    /// into sorted arrays that `∪ o` must then merge element by element; here only the last
    /// subtraction produces the sparse result. A common shape: "these, or those except testers".
    fn or_and_not(
        &self,
        others: Vec<&Plan>,
        and_not: &Plan,
        accounts: AccountLookup<'_>,
    ) -> RoaringBitmap {
        let Plan::And(children) = and_not else {
            return self.eval(and_not, accounts).into_owned();
        };
        let (negated, positive) = split_negated(children);
        let others = union(others.into_iter().map(|child| self.eval(child, accounts)).collect());
        let mut result = self.intersect(positive, &[], accounts);
        result |= others.as_ref();
        // NOT n1 AND NOT n2 is NOT (n1 ∪ n2).
        let mut excluded =
            union(negated.into_iter().map(|child| self.eval(child, accounts)).collect())
                .into_owned();
        excluded -= others.as_ref();
        result -= &excluded;
        result
    }
}

/// An `and` with at least one negated and one plain child.
fn is_and_not(plan: &Plan) -> bool {
    match plan {
        Plan::And(children) => {
            children.iter().any(|c| matches!(c, Plan::Not(_)))
                && children.iter().any(|c| !matches!(c, Plan::Not(_)))
        }
        _ => false,
    }
}

/// The union of bitmaps. A few are merged pairwise into the largest, which keeps array containers
/// as arrays; many go through roaring's multi-way union, which converts containers to bitmaps
/// once instead of merging arrays again and again.
fn union(mut bitmaps: Vec<Cow<'_, RoaringBitmap>>) -> Cow<'_, RoaringBitmap> {
    if bitmaps.len() > 4 {
        return Cow::Owned(bitmaps.iter().map(AsRef::as_ref).union());
    }
    bitmaps.sort_by_key(|bitmap| std::cmp::Reverse(bitmap.len()));
    let mut bitmaps = bitmaps.into_iter();
    let Some(mut result) = bitmaps.next() else {
        return Cow::Owned(RoaringBitmap::new());
    };
    for bitmap in bitmaps {
        *result.to_mut() |= bitmap.as_ref();
    }
    result
}

fn borrowed(bitmap: Option<&RoaringBitmap>) -> Cow<'_, RoaringBitmap> {
    bitmap.map_or_else(|| Cow::Owned(RoaringBitmap::new()), Cow::Borrowed)
}

/// Children of the form `not x` (as their `x`), and the other children.
fn split_negated(children: &[Plan]) -> (Vec<&Plan>, Vec<&Plan>) {
    let mut negated = Vec::new();
    let mut positive = Vec::new();
    for child in children {
        match child {
            Plan::Not(inner) => negated.push(inner.as_ref()),
            other => positive.push(other),
        }
    }
    (negated, positive)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_accounts(_: &[String]) -> RoaringBitmap {
        RoaringBitmap::new()
    }

    fn not(plan: Plan) -> Plan {
        Plan::Not(Box::new(plan))
    }

    fn ids(bitmap: &RoaringBitmap) -> Vec<u32> {
        bitmap.iter().collect()
    }

    #[test]
    fn compound_audience() {
        let mut index = AppIndex::default();
        for id in 0..6 {
            index.insert_account(id);
        }
        index.add_tags(0, &["a"]);
        index.add_tags(1, &["a", "b"]);
        index.add_tags(9, &["a"]); // not eligible
        index.set_attribute(0, 3, Some("Shenzhen"));
        index.set_attribute(9, 3, Some("Shenzhen"));
        index.set_attribute(2, 1, Some("gold"));
        index.set_attribute(3, 1, Some("platinum"));
        index.set_attribute(4, 1, Some("silver"));
        index.add_tags(3, &["b"]);
        // (a AND city=Shenzhen) OR (tier in [gold, platinum] AND NOT b)
        let plan = Plan::Or(vec![
            Plan::And(vec![
                Plan::Tag("a".into()),
                Plan::Attr { slot: 3, values: vec!["Shenzhen".into()] },
            ]),
            Plan::And(vec![
                Plan::Attr { slot: 1, values: vec!["gold".into(), "platinum".into()] },
                not(Plan::Tag("b".into())),
            ]),
        ]);
        assert_eq!(ids(&index.evaluate(&plan, &no_accounts)), [0, 2]);
        assert_eq!(ids(&index.evaluate(&not(plan), &no_accounts)), [1, 3, 4, 5]);
    }

    #[test]
    fn accounts_are_resolved_by_the_caller_and_limited_to_eligible_ones() {
        let mut index = AppIndex::default();
        index.insert_account(1);
        index.insert_account(2);
        let lookup = |names: &[String]| -> RoaringBitmap {
            names.iter().filter_map(|name| name.strip_prefix('u')?.parse::<u32>().ok()).collect()
        };
        let plan = Plan::Accounts(vec!["u2".into(), "u3".into(), "nobody".into()]);
        assert_eq!(ids(&index.evaluate(&plan, &lookup)), [2]);
        assert_eq!(ids(&index.evaluate(&not(plan), &lookup)), [1]);
    }

    #[test]
    fn empty_lists_and_unknown_names() {
        let mut index = AppIndex::default();
        index.insert_account(1);
        assert_eq!(ids(&index.evaluate(&Plan::And(vec![]), &no_accounts)), [1]);
        assert!(index.evaluate(&Plan::Or(vec![]), &no_accounts).is_empty());
        assert!(index.evaluate(&Plan::Tag("none".into()), &no_accounts).is_empty());
        let missing_slot = Plan::Attr { slot: 9, values: vec!["x".into(), "y".into()] };
        assert_eq!(ids(&index.evaluate(&not(missing_slot), &no_accounts)), [1]);
        let or_not = Plan::Or(vec![not(Plan::Tag("none".into())), Plan::Platform("ios".into())]);
        assert_eq!(ids(&index.evaluate(&or_not, &no_accounts)), [1]);
    }
}
