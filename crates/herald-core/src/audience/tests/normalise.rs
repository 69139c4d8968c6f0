//! Normalisation rules, one by one.

use super::{plan, Plan};

fn tag(t: &str) -> Plan {
    Plan::Tag(t.into())
}

fn attr(slot: u8, values: &[&str]) -> Plan {
    Plan::Attr { slot, values: values.iter().map(|v| v.to_string()).collect() }
}

fn not(p: Plan) -> Plan {
    Plan::Not(Box::new(p))
}

#[test]
fn names_resolve_to_slots() {
    assert_eq!(plan(r#"{"attr":{"name":"sex","eq":"f"}}"#), attr(0, &["f"]));
    assert_eq!(plan(r#"{"attr":{"name":"city","eq":"Shenzhen"}}"#), attr(3, &["Shenzhen"]));
}

#[test]
fn in_with_one_value_is_eq() {
    assert_eq!(
        plan(r#"{"attr":{"name":"tier","in":["gold"]}}"#),
        plan(r#"{"attr":{"name":"tier","eq":"gold"}}"#)
    );
    assert_eq!(
        plan(r#"{"attr":{"name":"tier","in":["platinum","gold","gold"]}}"#),
        attr(1, &["gold", "platinum"])
    );
}

#[test]
fn nested_lists_of_the_same_kind_flatten() {
    assert_eq!(
        plan(r#"{"and":[{"and":[{"tag":"c"},{"tag":"a"}]},{"and":[{"and":[{"tag":"b"}]}]}]}"#),
        Plan::And(vec![tag("a"), tag("b"), tag("c")])
    );
    assert_eq!(
        plan(r#"{"or":[{"or":[{"tag":"b"}]},{"and":[{"or":[{"tag":"a"}]}]}]}"#),
        Plan::Or(vec![tag("a"), tag("b")])
    );
}

#[test]
fn duplicates_drop_and_order_is_canonical() {
    assert_eq!(
        plan(r#"{"or":[{"tag":"b"},{"tag":"a"},{"tag":"b"}]}"#),
        Plan::Or(vec![tag("a"), tag("b")])
    );
    assert_eq!(
        plan(r#"{"and":[{"tag":"b"},{"not":{"tag":"a"}}]}"#),
        plan(r#"{"and":[{"not":{"tag":"a"}},{"tag":"b"},{"tag":"b"}]}"#)
    );
    assert_eq!(plan(r#"{"and":[{"tag":"x"},{"tag":"x"}]}"#), tag("x"));
}

#[test]
fn double_negation_cancels() {
    assert_eq!(plan(r#"{"not":{"not":{"tag":"a"}}}"#), tag("a"));
    assert_eq!(plan(r#"{"not":{"not":{"not":{"tag":"a"}}}}"#), not(tag("a")));
    assert_eq!(plan(r#"{"not":{"and":[{"not":{"not":{"tag":"a"}}}]}}"#), not(tag("a")));
}

#[test]
fn all_inside_lists() {
    assert_eq!(plan(r#"{"and":[{"all":true},{"tag":"a"}]}"#), tag("a"));
    assert_eq!(plan(r#"{"and":[{"all":true},{"all":true}]}"#), Plan::All);
    assert_eq!(plan(r#"{"or":[{"tag":"a"},{"and":[{"all":true}]}]}"#), Plan::All);
    assert_eq!(plan(r#"{"not":{"all":true}}"#), not(Plan::All));
}

#[test]
fn alternatives_of_one_slot_merge() {
    assert_eq!(
        plan(
            r#"{"or":[{"attr":{"name":"city","eq":"b"}},{"tag":"t"},{"attr":{"name":"city","in":["a","b"]}}]}"#
        ),
        Plan::Or(vec![tag("t"), attr(3, &["a", "b"])])
    );
    assert_eq!(
        plan(r#"{"or":[{"attr":{"name":"city","eq":"b"}},{"attr":{"name":"city","eq":"a"}}]}"#),
        attr(3, &["a", "b"])
    );
}

#[test]
fn account_lists_are_sorted_and_merged() {
    assert_eq!(
        plan(r#"{"accounts":["u2","u1","u2"]}"#),
        Plan::Accounts(vec!["u1".into(), "u2".into()])
    );
    assert_eq!(
        plan(r#"{"or":[{"accounts":["u3"]},{"accounts":["u1","u3"]}]}"#),
        Plan::Accounts(vec!["u1".into(), "u3".into()])
    );
}

#[test]
fn account_names_and_broadcast() {
    let p = plan(r#"{"or":[{"accounts":["u3"]},{"and":[{"tag":"t"},{"accounts":["u1","u3"]}]}]}"#);
    assert_eq!(p.account_names(), ["u1", "u3"]);
    assert!(!p.is_broadcast());
    assert!(!plan(r#"{"and":[{"tag":"t"},{"accounts":["u1"]}]}"#).is_broadcast());
    assert!(plan(r#"{"or":[{"tag":"t"},{"accounts":["u1"]}]}"#).is_broadcast());
    assert!(plan(r#"{"not":{"accounts":["u1"]}}"#).is_broadcast());
    assert!(plan(r#"{"all":true}"#).is_broadcast());
}
