//! Normalisation keeps the meaning: both forms evaluated by a naive set evaluator over small
//! random worlds select the same accounts.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::select;

use super::{names, AudienceRules, Plan};
use crate::audience::{AttrMatch, Audience};
use crate::Limits;

const ACCOUNTS: u32 = 6;
const TAGS: [&str; 3] = ["a", "b", "c"];
const ATTRS: [&str; 3] = ["sex", "tier", "city"];
const VALUES: [&str; 3] = ["x", "y", "z"];
const PLATFORMS: [&str; 2] = ["ios", "android"];
const PACKAGES: [&str; 2] = ["p", "q"];
/// Account names; `ghost` names nobody.
const NAMES: [&str; 4] = ["u0", "u3", "u5", "ghost"];

#[derive(Debug, Clone, Default)]
struct Account {
    eligible: bool,
    tags: BTreeSet<&'static str>,
    attrs: BTreeMap<u8, &'static str>,
    platforms: BTreeSet<&'static str>,
    packages: BTreeSet<&'static str>,
}

type World = Vec<Account>;

fn world() -> impl Strategy<Value = World> {
    let account = (
        any::<bool>(),
        proptest::sample::subsequence(TAGS.to_vec(), 0..=TAGS.len()),
        proptest::collection::vec(proptest::option::of(select(VALUES.to_vec())), 4),
        proptest::sample::subsequence(PLATFORMS.to_vec(), 0..=PLATFORMS.len()),
        proptest::sample::subsequence(PACKAGES.to_vec(), 0..=PACKAGES.len()),
    )
        .prop_map(|(eligible, tags, attrs, platforms, packages)| Account {
            eligible,
            tags: tags.into_iter().collect(),
            attrs: (0u8..)
                .zip(attrs)
                .filter_map(|(slot, value)| value.map(|v| (slot, v)))
                .collect(),
            platforms: platforms.into_iter().collect(),
            packages: packages.into_iter().collect(),
        });
    proptest::collection::vec(account, ACCOUNTS as usize)
}

fn strings(items: Vec<&str>) -> Vec<String> {
    items.into_iter().map(str::to_owned).collect()
}

fn audience() -> impl Strategy<Value = Audience> {
    let leaf = prop_oneof![
        Just(Audience::All),
        proptest::collection::vec(select(NAMES.to_vec()), 1..4)
            .prop_map(|n| Audience::Accounts(strings(n))),
        select(TAGS.to_vec()).prop_map(Audience::tag),
        (select(ATTRS.to_vec()), select(VALUES.to_vec()))
            .prop_map(|(n, v)| Audience::attr_eq(n, v)),
        (select(ATTRS.to_vec()), proptest::collection::vec(select(VALUES.to_vec()), 1..4))
            .prop_map(|(n, v)| Audience::attr_in(n, v)),
        select(PLATFORMS.to_vec()).prop_map(|p| Audience::Platform(p.into())),
        select(PACKAGES.to_vec()).prop_map(|p| Audience::Package(p.into())),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..5).prop_map(Audience::And),
            proptest::collection::vec(inner.clone(), 1..5).prop_map(Audience::Or),
            inner.prop_map(Audience::not),
        ]
    })
}

fn eligible(world: &World) -> BTreeSet<u32> {
    (0..).zip(world).filter(|(_, a)| a.eligible).map(|(id, _)| id).collect()
}

/// Eligible accounts satisfying `matches`.
fn select_where(world: &World, matches: impl Fn(u32, &Account) -> bool) -> BTreeSet<u32> {
    (0..).zip(world).filter(|(id, a)| a.eligible && matches(*id, a)).map(|(id, _)| id).collect()
}

fn named(names: &[String], id: u32) -> bool {
    names.iter().any(|n| *n == format!("u{id}"))
}

fn eval_audience(world: &World, audience: &Audience) -> BTreeSet<u32> {
    let slot =
        |name: &str| names().iter().position(|n| n.as_deref() == Some(name)).expect("known") as u8;
    match audience {
        Audience::All => eligible(world),
        Audience::Accounts(names) => select_where(world, |id, _| named(names, id)),
        Audience::Tag(t) => select_where(world, |_, a| a.tags.contains(t.as_str())),
        Audience::Attr(filter) => {
            let values = match &filter.matches {
                AttrMatch::Eq(v) => vec![v.clone()],
                AttrMatch::In(vs) => vs.clone(),
            };
            let slot = slot(&filter.name);
            select_where(world, |_, a| {
                a.attrs.get(&slot).is_some_and(|v| values.iter().any(|w| w == v))
            })
        }
        Audience::Platform(p) => select_where(world, |_, a| a.platforms.contains(p.as_str())),
        Audience::Package(p) => select_where(world, |_, a| a.packages.contains(p.as_str())),
        Audience::And(children) => children
            .iter()
            .map(|c| eval_audience(world, c))
            .reduce(|x, y| &x & &y)
            .unwrap_or_else(|| eligible(world)),
        Audience::Or(children) => children.iter().flat_map(|c| eval_audience(world, c)).collect(),
        Audience::Not(child) => &eligible(world) - &eval_audience(world, child),
    }
}

fn eval_plan(world: &World, plan: &Plan) -> BTreeSet<u32> {
    match plan {
        Plan::All => eligible(world),
        Plan::Accounts(names) => select_where(world, |id, _| named(names, id)),
        Plan::Tag(t) => select_where(world, |_, a| a.tags.contains(t.as_str())),
        Plan::Attr { slot, values } => select_where(world, |_, a| {
            a.attrs.get(slot).is_some_and(|v| values.iter().any(|w| w == v))
        }),
        Plan::Platform(p) => select_where(world, |_, a| a.platforms.contains(p.as_str())),
        Plan::Package(p) => select_where(world, |_, a| a.packages.contains(p.as_str())),
        Plan::And(children) => children
            .iter()
            .map(|c| eval_plan(world, c))
            .reduce(|x, y| &x & &y)
            .unwrap_or_else(|| eligible(world)),
        Plan::Or(children) => children.iter().flat_map(|c| eval_plan(world, c)).collect(),
        Plan::Not(child) => &eligible(world) - &eval_plan(world, child),
    }
}

/// The shape promised by [`Plan`]'s documentation.
fn assert_canonical(plan: &Plan) {
    match plan {
        Plan::And(children) | Plan::Or(children) => {
            assert!(children.len() >= 2, "{plan:?}");
            assert!(children.windows(2).all(|w| w[0] < w[1]), "unsorted: {plan:?}");
            for child in children {
                assert_ne!(child, &Plan::All);
                assert_ne!(std::mem::discriminant(child), std::mem::discriminant(plan), "{plan:?}");
                assert_canonical(child);
            }
        }
        Plan::Not(child) => {
            assert!(!matches!(**child, Plan::Not(_)), "{plan:?}");
            assert_canonical(child);
        }
        Plan::Accounts(items) | Plan::Attr { values: items, .. } => {
            assert!(items.windows(2).all(|w| w[0] < w[1]), "{plan:?}");
        }
        Plan::All | Plan::Tag(_) | Plan::Platform(_) | Plan::Package(_) => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn normalisation_preserves_meaning(world in world(), audience in audience()) {
        let limits = Limits::default();
        let names = names();
        let plan = AudienceRules::new(&limits, &names).plan(&audience).expect("valid");
        prop_assert_eq!(eval_plan(&world, &plan), eval_audience(&world, &audience), "plan {:?}", plan);
        assert_canonical(&plan);
        prop_assert_eq!(plan.clone().normalise(), plan);
    }

    #[test]
    fn serialisation_round_trips(audience in audience()) {
        let value = serde_json::to_value(&audience).expect("serialises");
        prop_assert_eq!(crate::audience::parse(&value).expect("parses"), audience);
    }
}
