//! Changes applied one by one give the index that a start-up build of the final state gives.

use std::collections::{BTreeMap, BTreeSet};

use herald_core::audience::Plan;
use proptest::prelude::*;
use roaring::RoaringBitmap;

use super::IndexChange;
use crate::builder::IndexBuilder;
use crate::index::AppIndex;

const TAGS: [&str; 4] = ["a", "b", "c", "d"];
const VALUES: [&str; 3] = ["gold", "silver", "bronze"];
const PLATFORMS: [&str; 3] = ["ios", "android", "web"];
const PACKAGES: [&str; 2] = ["com.x", "com.y"];

/// The directory as the store would hold it, changed by the same changes.
#[derive(Default)]
struct Model {
    eligible: BTreeSet<u32>,
    tags: BTreeMap<u32, BTreeSet<String>>,
    attributes: BTreeMap<(u32, u8), String>,
    devices: BTreeMap<u32, Vec<(String, String)>>,
}

impl Model {
    fn apply(&mut self, change: &IndexChange<'_>) {
        match change {
            IndexChange::AccountAdded { account } => {
                self.eligible.insert(*account);
            }
            IndexChange::AccountRemoved { account } => {
                self.eligible.remove(account);
                self.tags.remove(account);
                self.attributes.retain(|(id, _), _| id != account);
                self.devices.remove(account);
            }
            IndexChange::TagsAdded { account, tags } => {
                self.tags.entry(*account).or_default().extend(tags.iter().map(|t| t.to_string()));
            }
            IndexChange::TagsRemoved { account, tags } => {
                let held = self.tags.entry(*account).or_default();
                tags.iter().for_each(|t| {
                    held.remove(*t);
                });
            }
            IndexChange::TagsReplaced { account, tags } => {
                self.tags.insert(*account, tags.iter().map(|t| t.to_string()).collect());
            }
            IndexChange::AttributeSet { account, slot, value: Some(value) } => {
                self.attributes.insert((*account, *slot), (*value).to_owned());
            }
            IndexChange::AttributeSet { account, slot, value: None } => {
                self.attributes.remove(&(*account, *slot));
            }
            IndexChange::AttributeChanged { account, slot, after: Some(value), .. } => {
                self.attributes.insert((*account, *slot), (*value).to_owned());
            }
            IndexChange::AttributeChanged { account, slot, after: None, .. } => {
                self.attributes.remove(&(*account, *slot));
            }
            IndexChange::AttributeSlotCleared { slot } => {
                self.attributes.retain(|(_, s), _| s != slot);
            }
            IndexChange::DevicesReplaced { account, devices } => {
                self.devices.insert(*account, devices.to_vec());
            }
        }
    }

    /// The index a start-up would build from this state.
    fn build(&self) -> AppIndex {
        let mut builder = IndexBuilder::new();
        for &id in &self.eligible {
            builder.account(id);
        }
        for (&id, tags) in &self.tags {
            builder.tags(id, &tags.iter().collect::<Vec<_>>());
        }
        for (&(id, slot), value) in &self.attributes {
            builder.attribute(id, slot, value);
        }
        for (&id, devices) in &self.devices {
            for (platform, package) in devices {
                builder.device(id, platform, package);
            }
        }
        builder.finish()
    }
}

/// Plans touching every kind of bitmap, alone and combined.
fn plans() -> Vec<Plan> {
    let mut plans = vec![Plan::All];
    plans.extend(TAGS.iter().map(|t| Plan::Tag((*t).into())));
    plans.extend(PLATFORMS.iter().map(|p| Plan::Platform((*p).into())));
    plans.extend(PACKAGES.iter().map(|p| Plan::Package((*p).into())));
    for slot in 0..2 {
        plans.push(Plan::Attr { slot, values: vec!["gold".into(), "silver".into()] });
    }
    plans.push(Plan::Not(Box::new(Plan::Tag("a".into()))));
    plans.push(Plan::Or(vec![
        Plan::And(vec![Plan::Tag("b".into()), Plan::Platform("ios".into())]),
        Plan::Attr { slot: 1, values: vec!["bronze".into()] },
    ]));
    plans
}

fn no_accounts(_: &[String]) -> RoaringBitmap {
    RoaringBitmap::new()
}

fn assert_same_audiences(applied: &AppIndex, built: &AppIndex) {
    assert_eq!(applied, built);
    for plan in plans() {
        assert_eq!(
            applied.evaluate(&plan, &no_accounts),
            built.evaluate(&plan, &no_accounts),
            "{plan:?}"
        );
    }
}

#[test]
fn a_directory_history_ends_where_a_rebuild_starts() {
    let ios = [("ios".to_owned(), "com.x".to_owned())];
    let both = [("ios".to_owned(), "com.x".to_owned()), ("android".to_owned(), "com.y".to_owned())];
    let changes = vec![
        IndexChange::AccountAdded { account: 1 },
        IndexChange::AccountAdded { account: 2 },
        IndexChange::AccountAdded { account: 3 },
        IndexChange::TagsAdded { account: 1, tags: vec!["a", "b"] },
        IndexChange::TagsAdded { account: 2, tags: vec!["b"] },
        IndexChange::TagsRemoved { account: 1, tags: vec!["b", "never"] },
        IndexChange::TagsReplaced { account: 3, tags: vec!["c"] },
        IndexChange::AttributeSet { account: 1, slot: 0, value: Some("gold") },
        IndexChange::AttributeSet { account: 2, slot: 1, value: Some("silver") },
        IndexChange::AttributeSet { account: 1, slot: 0, value: Some("silver") },
        IndexChange::AttributeSlotCleared { slot: 1 },
        IndexChange::DevicesReplaced { account: 1, devices: &both },
        IndexChange::DevicesReplaced { account: 1, devices: &ios },
        IndexChange::DevicesReplaced { account: 2, devices: &both },
        IndexChange::AccountRemoved { account: 2 },
        // Not (yet) eligible: carried, never selected.
        IndexChange::TagsAdded { account: 9, tags: vec!["a"] },
    ];
    let mut model = Model::default();
    changes.iter().for_each(|change| model.apply(change));
    let mut index = AppIndex::default();
    index.apply_all(changes);
    assert_same_audiences(&index, &model.build());
    let a = index.evaluate(&Plan::Tag("a".into()), &no_accounts);
    assert_eq!(a.iter().collect::<Vec<_>>(), [1]);
}

fn names(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(pool, 0..=pool.len())
}

/// Device lists live as long as the test: the changes borrow them.
fn device_lists() -> Vec<Vec<(String, String)>> {
    let mut lists = vec![Vec::new()];
    for platform in PLATFORMS {
        for package in PACKAGES {
            lists.push(vec![(platform.to_owned(), package.to_owned())]);
        }
    }
    lists.push(vec![("ios".into(), "com.x".into()), ("web".into(), "com.y".into())]);
    lists
}

#[derive(Debug, Clone)]
enum Step {
    Added(u32),
    Removed(u32),
    TagsAdded(u32, Vec<&'static str>),
    TagsRemoved(u32, Vec<&'static str>),
    TagsReplaced(u32, Vec<&'static str>),
    Attribute(u32, u8, Option<&'static str>),
    SlotCleared(u8),
    Devices(u32, usize),
}

fn step() -> impl Strategy<Value = Step> {
    let id = 0..8_u32;
    let slot = 0..3_u8;
    prop_oneof![
        id.clone().prop_map(Step::Added),
        id.clone().prop_map(Step::Removed),
        (id.clone(), names(&TAGS)).prop_map(|(id, t)| Step::TagsAdded(id, t)),
        (id.clone(), names(&TAGS)).prop_map(|(id, t)| Step::TagsRemoved(id, t)),
        (id.clone(), names(&TAGS)).prop_map(|(id, t)| Step::TagsReplaced(id, t)),
        (id.clone(), slot.clone(), proptest::option::of(proptest::sample::select(&VALUES[..])))
            .prop_map(|(id, slot, v)| Step::Attribute(id, slot, v)),
        slot.prop_map(Step::SlotCleared),
        (id, 0..8_usize).prop_map(|(id, d)| Step::Devices(id, d)),
    ]
}

proptest! {
    #[test]
    fn any_sequence_of_changes_matches_a_rebuild(steps in proptest::collection::vec(step(), 0..60)) {
        let lists = device_lists();
        // What the store would read back as each account's value: an odd account's change
        // comes with it, as a store's attribute batch reports it.
        let mut current: std::collections::HashMap<(u32, u8), &'static str> = Default::default();
        let changes: Vec<IndexChange<'_>> = steps
            .into_iter()
            .map(|step| match step {
                Step::Added(account) => IndexChange::AccountAdded { account },
                Step::Removed(account) => {
                    current.retain(|(a, _), _| *a != account);
                    IndexChange::AccountRemoved { account }
                }
                Step::TagsAdded(account, tags) => IndexChange::TagsAdded { account, tags },
                Step::TagsRemoved(account, tags) => IndexChange::TagsRemoved { account, tags },
                Step::TagsReplaced(account, tags) => IndexChange::TagsReplaced { account, tags },
                Step::Attribute(account, slot, value) => {
                    let before = match value {
                        Some(value) => current.insert((account, slot), value),
                        None => current.remove(&(account, slot)),
                    };
                    match account % 2 {
                        1 => IndexChange::AttributeChanged { account, slot, before, after: value },
                        _ => IndexChange::AttributeSet { account, slot, value },
                    }
                }
                Step::SlotCleared(slot) => {
                    current.retain(|(_, s), _| *s != slot);
                    IndexChange::AttributeSlotCleared { slot }
                }
                Step::Devices(account, list) => {
                    IndexChange::DevicesReplaced { account, devices: &lists[list % lists.len()] }
                }
            })
            .collect();
        let mut model = Model::default();
        changes.iter().for_each(|change| model.apply(change));
        let mut index = AppIndex::default();
        index.apply_all(changes);
        assert_same_audiences(&index, &model.build());
    }
}
