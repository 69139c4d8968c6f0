//! The audience language (herald-core) and its evaluation (herald-index).
//!
//! Input: the JSON text of an audience. Checked, besides "no panic, no hang":
//! - a shape that parses serialises back to JSON that parses to the same audience;
//! - a checked audience plans to a normalised plan: normalising it again changes nothing, and
//!   written back as an audience (slots named again) it re-parses and plans to itself;
//! - on a small index, the un-normalised plan, the normalised plan and a naive set evaluation
//!   select the same accounts.
#![no_main]

use std::collections::BTreeSet;

use herald_core::audience::{self, AttrMatch, Audience, AudienceRules, Plan};
use herald_core::Limits;
use herald_index::{AppIndex, IndexBuilder, RoaringBitmap};
use libfuzzer_sys::fuzz_target;

/// Attribute names of the app: slots 0, 1 and 3 are named, slot 2 is free.
const NAMES: [Option<&str>; 4] = [Some("sex"), Some("tier"), None, Some("city")];
const ACCOUNTS: u32 = 16;

/// One account of the small app, as plain data for the naive evaluation.
struct Account {
    eligible: bool,
    tags: Vec<&'static str>,
    attrs: Vec<(u8, &'static str)>,
    devices: Vec<(&'static str, &'static str)>,
}

fn account(id: u32) -> Account {
    let mut tags = Vec::new();
    for (every, tag) in [(2, "a"), (3, "b"), (5, "c"), (7, "深")] {
        if id % every == 0 {
            tags.push(tag);
        }
    }
    let mut attrs = vec![(0, if id % 2 == 0 { "f" } else { "m" })];
    match id % 4 {
        0 => attrs.push((1, "gold")),
        1 => attrs.push((1, "platinum")),
        _ => {}
    }
    attrs.push((3, ["x", "y", "z"][(id % 3) as usize]));
    let mut devices = Vec::new();
    if id % 2 == 0 {
        devices.push(("ios", "com.p"));
    }
    if id % 3 != 0 {
        devices.push(("android", "com.q"));
    }
    if id == 5 {
        devices.push(("web", "com.p"));
    }
    Account { eligible: id != 13, tags, attrs, devices }
}

fn index(accounts: &[Account]) -> AppIndex {
    let mut builder = IndexBuilder::new();
    for (id, account) in (0..).zip(accounts) {
        if account.eligible {
            builder.account(id);
        }
        builder.tags(id, &account.tags);
        for (slot, value) in &account.attrs {
            builder.attribute(id, *slot, value);
        }
        for (platform, package) in &account.devices {
            builder.device(id, platform, package);
        }
    }
    builder.finish()
}

/// Account names are `u<id>`; other names have no account.
fn lookup(names: &[String]) -> RoaringBitmap {
    names.iter().filter_map(|n| n.strip_prefix('u')?.parse::<u32>().ok()).collect()
}

fn naive(accounts: &[Account], plan: &Plan) -> BTreeSet<u32> {
    let select = |matches: &dyn Fn(u32, &Account) -> bool| -> BTreeSet<u32> {
        (0..)
            .zip(accounts)
            .filter(|(id, a)| a.eligible && matches(*id, a))
            .map(|(id, _)| id)
            .collect()
    };
    match plan {
        Plan::All => select(&|_, _| true),
        Plan::Accounts(names) => {
            let named = lookup(names);
            select(&|id, _| named.contains(id))
        }
        Plan::Tag(tag) => select(&|_, a| a.tags.iter().any(|t| *t == tag.as_str())),
        Plan::Attr { slot, values } => {
            select(&|_, a| a.attrs.iter().any(|(s, v)| s == slot && values.iter().any(|w| w == v)))
        }
        Plan::Platform(p) => select(&|_, a| a.devices.iter().any(|(q, _)| q == p)),
        Plan::Package(p) => select(&|_, a| a.devices.iter().any(|(_, q)| q == p)),
        Plan::And(children) => {
            children.iter().fold(select(&|_, _| true), |acc, child| &acc & &naive(accounts, child))
        }
        Plan::Or(children) => children.iter().flat_map(|child| naive(accounts, child)).collect(),
        Plan::Not(child) => &select(&|_, _| true) - &naive(accounts, child),
    }
}

/// The plan of a checked audience, as written: no normalisation.
fn raw_plan(audience: &Audience) -> Plan {
    match audience {
        Audience::All => Plan::All,
        Audience::Accounts(names) => Plan::Accounts(names.clone()),
        Audience::Tag(tag) => Plan::Tag(tag.clone()),
        Audience::Attr(filter) => {
            let slot = NAMES.iter().position(|n| *n == Some(filter.name.as_str()));
            let slot = u8::try_from(slot.expect("a checked audience names known slots")).unwrap();
            let values = match &filter.matches {
                AttrMatch::Eq(value) => vec![value.clone()],
                AttrMatch::In(values) => values.clone(),
            };
            Plan::Attr { slot, values }
        }
        Audience::Platform(p) => Plan::Platform(p.clone()),
        Audience::Package(p) => Plan::Package(p.clone()),
        Audience::And(children) => Plan::And(children.iter().map(raw_plan).collect()),
        Audience::Or(children) => Plan::Or(children.iter().map(raw_plan).collect()),
        Audience::Not(child) => Plan::Not(Box::new(raw_plan(child))),
    }
}

/// A plan written back as an audience, slots named again.
fn written(plan: &Plan) -> Audience {
    match plan {
        Plan::All => Audience::All,
        Plan::Accounts(names) => Audience::Accounts(names.clone()),
        Plan::Tag(tag) => Audience::Tag(tag.clone()),
        Plan::Attr { slot, values } => {
            let name = NAMES[usize::from(*slot)].expect("plans name known slots");
            Audience::attr_in(name, values.clone())
        }
        Plan::Platform(p) => Audience::Platform(p.clone()),
        Plan::Package(p) => Audience::Package(p.clone()),
        Plan::And(children) => Audience::And(children.iter().map(written).collect()),
        Plan::Or(children) => Audience::Or(children.iter().map(written).collect()),
        Plan::Not(child) => Audience::not(written(child)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };

    if let Ok(shape) = audience::parse(&value) {
        let json = serde_json::to_value(&shape).expect("audiences serialise");
        assert_eq!(audience::parse(&json).as_ref(), Ok(&shape), "shape round trip of {json}");
    }

    let limits = Limits::default();
    let names: Vec<Option<String>> = NAMES.iter().map(|n| n.map(str::to_owned)).collect();
    let rules = AudienceRules::new(&limits, &names);
    let Ok(checked) = rules.parse(&value) else { return };
    let plan = rules.plan(&checked).expect("a parsed audience plans");
    assert_eq!(plan.clone().normalise(), plan, "normalising twice");
    let again = serde_json::to_value(written(&plan)).expect("audiences serialise");
    let replanned = rules.parse(&again).and_then(|audience| rules.plan(&audience));
    assert_eq!(replanned.as_ref(), Ok(&plan), "normalised audience {again} re-plans to itself");

    let accounts: Vec<Account> = (0..ACCOUNTS).map(account).collect();
    let index = index(&accounts);
    let raw = raw_plan(&checked);
    let expected = naive(&accounts, &raw);
    let got: BTreeSet<u32> = index.evaluate(&raw, &lookup).iter().collect();
    assert_eq!(got, expected, "raw plan {raw:?}");
    let normalised: BTreeSet<u32> = index.evaluate(&plan, &lookup).iter().collect();
    assert_eq!(normalised, expected, "normalised plan {plan:?} of {raw:?}");
});
