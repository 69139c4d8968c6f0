//! The index against a brute-force oracle: random accounts, random mutations, random plans (raw
//! and normalised); every answer must equal the oracle's.

use std::collections::{BTreeMap, BTreeSet};

use herald_core::audience::Plan;
use herald_index::{AppIndex, IndexBuilder, RoaringBitmap};
use proptest::prelude::*;
use proptest::sample::select;

const TAGS: [&str; 4] = ["a", "b", "c", "深"];
const VALUES: [&str; 3] = ["x", "y", "z"];
const SLOTS: [u8; 3] = [0, 1, 9];
const PLATFORMS: [&str; 3] = ["ios", "android", "web"];
const PACKAGES: [&str; 2] = ["com.p", "com.q"];

/// Small ids plus ids in other Roaring containers and at the end of the id space.
fn id() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..12, 1 => Just(65_536), 1 => Just(200_001), 1 => Just(u32::MAX)]
}

#[derive(Debug, Clone, Default)]
struct Account {
    eligible: bool,
    tags: BTreeSet<&'static str>,
    attrs: BTreeMap<u8, &'static str>,
    devices: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Default)]
struct Oracle(BTreeMap<u32, Account>);

#[derive(Debug, Clone)]
enum Op {
    Insert(u32),
    Remove(u32),
    RemoveMany(Vec<u32>),
    AddTags(u32, Vec<&'static str>),
    RemoveTags(u32, Vec<&'static str>),
    SetTags(u32, Vec<&'static str>),
    ClearTags(u32),
    SetAttr(u32, u8, Option<&'static str>),
    ClearSlot(u8),
    SetDevices(u32, Vec<(&'static str, &'static str)>),
}

fn tags() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::collection::vec(select(TAGS.to_vec()), 0..4)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => id().prop_map(Op::Insert),
        1 => id().prop_map(Op::Remove),
        1 => proptest::collection::vec(id(), 0..4).prop_map(Op::RemoveMany),
        4 => (id(), tags()).prop_map(|(id, t)| Op::AddTags(id, t)),
        2 => (id(), tags()).prop_map(|(id, t)| Op::RemoveTags(id, t)),
        1 => (id(), tags()).prop_map(|(id, t)| Op::SetTags(id, t)),
        1 => id().prop_map(Op::ClearTags),
        4 => (id(), select(SLOTS.to_vec()), proptest::option::of(select(VALUES.to_vec())))
            .prop_map(|(id, slot, value)| Op::SetAttr(id, slot, value)),
        1 => select(SLOTS.to_vec()).prop_map(Op::ClearSlot),
        3 => (
            id(),
            proptest::collection::vec((select(PLATFORMS.to_vec()), select(PACKAGES.to_vec())), 0..3)
        )
            .prop_map(|(id, devices)| Op::SetDevices(id, devices)),
    ]
}

fn apply(index: &mut AppIndex, oracle: &mut Oracle, op: &Op) {
    let accounts = &mut oracle.0;
    match op.clone() {
        Op::Insert(id) => {
            index.insert_account(id);
            accounts.entry(id).or_default().eligible = true;
        }
        Op::Remove(id) => {
            index.remove_account(id);
            accounts.remove(&id);
        }
        Op::RemoveMany(ids) => {
            index.remove_accounts(&ids.iter().copied().collect());
            ids.iter().for_each(|id| {
                accounts.remove(id);
            });
        }
        Op::AddTags(id, tags) => {
            index.add_tags(id, &tags);
            accounts.entry(id).or_default().tags.extend(tags);
        }
        Op::RemoveTags(id, tags) => {
            index.remove_tags(id, &tags);
            let account = accounts.entry(id).or_default();
            tags.iter().for_each(|t| {
                account.tags.remove(t);
            });
        }
        Op::SetTags(id, tags) => {
            index.set_tags(id, &tags);
            accounts.entry(id).or_default().tags = tags.into_iter().collect();
        }
        Op::ClearTags(id) => {
            index.clear_tags(id);
            accounts.entry(id).or_default().tags.clear();
        }
        Op::SetAttr(id, slot, value) => {
            index.set_attribute(id, slot, value);
            let attrs = &mut accounts.entry(id).or_default().attrs;
            match value {
                Some(value) => attrs.insert(slot, value),
                None => attrs.remove(&slot),
            };
        }
        Op::ClearSlot(slot) => {
            index.clear_attribute_slot(slot);
            accounts.values_mut().for_each(|a| {
                a.attrs.remove(&slot);
            });
        }
        Op::SetDevices(id, devices) => {
            index.set_devices(id, &devices);
            accounts.entry(id).or_default().devices = devices;
        }
    }
}

fn plan() -> impl Strategy<Value = Plan> {
    let leaf = prop_oneof![
        Just(Plan::All),
        proptest::collection::vec(
            prop_oneof![id().prop_map(|id| format!("u{id}")), Just("ghost".to_owned())],
            1..4
        )
        .prop_map(Plan::Accounts),
        select(TAGS.to_vec()).prop_map(|t| Plan::Tag(t.into())),
        (select(SLOTS.to_vec()), proptest::collection::vec(select(VALUES.to_vec()), 1..3))
            .prop_map(|(slot, values)| Plan::Attr {
                slot,
                values: values.into_iter().map(Into::into).collect()
            }),
        select(PLATFORMS.to_vec()).prop_map(|p| Plan::Platform(p.into())),
        select(PACKAGES.to_vec()).prop_map(|p| Plan::Package(p.into())),
    ];
    leaf.prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Plan::And),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Plan::Or),
            inner.prop_map(|p| Plan::Not(Box::new(p))),
        ]
    })
}

fn lookup(names: &[String]) -> RoaringBitmap {
    names.iter().filter_map(|name| name.strip_prefix('u')?.parse::<u32>().ok()).collect()
}

impl Oracle {
    fn eligible(&self) -> BTreeSet<u32> {
        self.select(|_, _| true)
    }

    fn select(&self, matches: impl Fn(u32, &Account) -> bool) -> BTreeSet<u32> {
        self.0.iter().filter(|(id, a)| a.eligible && matches(**id, a)).map(|(id, _)| *id).collect()
    }

    fn eval(&self, plan: &Plan) -> BTreeSet<u32> {
        match plan {
            Plan::All => self.eligible(),
            Plan::Accounts(names) => {
                let named = lookup(names);
                self.select(|id, _| named.contains(id))
            }
            Plan::Tag(t) => self.select(|_, a| a.tags.contains(t.as_str())),
            Plan::Attr { slot, values } => {
                self.select(|_, a| a.attrs.get(slot).is_some_and(|v| values.iter().any(|w| w == v)))
            }
            Plan::Platform(p) => self.select(|_, a| a.devices.iter().any(|(q, _)| q == p)),
            Plan::Package(p) => self.select(|_, a| a.devices.iter().any(|(_, q)| q == p)),
            Plan::And(children) => {
                children.iter().fold(self.eligible(), |acc, child| &acc & &self.eval(child))
            }
            Plan::Or(children) => children.iter().flat_map(|child| self.eval(child)).collect(),
            Plan::Not(child) => &self.eligible() - &self.eval(child),
        }
    }

    fn platform_split(&self, audience: &BTreeSet<u32>) -> BTreeMap<String, u64> {
        let mut split = BTreeMap::new();
        for (id, account) in &self.0 {
            let platforms: BTreeSet<_> = account.devices.iter().map(|(p, _)| *p).collect();
            for platform in platforms {
                *split.entry(platform.to_owned()).or_insert(0) += u64::from(audience.contains(id));
            }
        }
        split
    }

    fn tag_count(&self) -> usize {
        self.0.values().flat_map(|a| a.tags.iter()).collect::<BTreeSet<_>>().len()
    }

    /// The index the store would rebuild at start-up from these rows.
    fn build(&self) -> AppIndex {
        let mut builder = IndexBuilder::new();
        for (&id, account) in &self.0 {
            if account.eligible {
                builder.account(id);
            }
            builder.tags(id, &account.tags.iter().collect::<Vec<_>>());
            for (&slot, value) in &account.attrs {
                builder.attribute(id, slot, value);
            }
            for (platform, package) in &account.devices {
                builder.device(id, platform, package);
            }
        }
        builder.finish()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn index_answers_like_the_oracle(
        ops in proptest::collection::vec(op(), 0..60),
        plans in proptest::collection::vec(plan(), 1..8),
    ) {
        let mut index = AppIndex::default();
        let mut oracle = Oracle::default();
        for op in &ops {
            apply(&mut index, &mut oracle, op);
        }
        prop_assert_eq!(index.tag_count(), oracle.tag_count());
        prop_assert_eq!(&oracle.build(), &index, "rebuilt index differs");
        for plan in &plans {
            let expected = oracle.eval(plan);
            let got = index.evaluate(plan, &lookup);
            prop_assert_eq!(got.iter().collect::<BTreeSet<_>>(), expected.clone(), "plan {:?}", plan);
            let normalised = index.evaluate(&plan.clone().normalise(), &lookup);
            prop_assert_eq!(&normalised, &got, "normalised {:?}", plan);
            prop_assert_eq!(index.platform_split(&got), oracle.platform_split(&expected));
        }
    }
}
