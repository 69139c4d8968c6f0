//! Audiences that are accepted, and their JSON round trip.

use serde_json::{json, Value};

use super::{parse, Audience};

#[test]
fn every_node_kind_parses_and_serialises_back() {
    let examples = [
        json!({"all": true}),
        json!({"accounts": ["u1", "u2"]}),
        json!({"tag": "stock-a"}),
        json!({"attr": {"name": "city", "eq": "Shenzhen"}}),
        json!({"attr": {"name": "tier", "in": ["gold", "platinum"]}}),
        json!({"platform": "ios"}),
        json!({"package": "com.example.app"}),
        json!({"and": [{"tag": "a"}, {"not": {"tag": "b"}}]}),
        json!({"or": [{"tag": "a"}, {"and": [{"platform": "android"}, {"package": "com.x"}]}]}),
        json!({"not": {"not": {"all": true}}}),
    ];
    for example in examples {
        let audience = parse(&example.to_string()).unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(serde_json::to_value(&audience).unwrap(), example);
    }
}

#[test]
fn builds_the_expected_tree() {
    let audience = parse(
        r#"{"or":[{"and":[{"attr":{"name":"tier","eq":"platinum"}},{"attr":{"name":"city","eq":"Shenzhen"}}]},{"not":{"tag":"tester"}}]}"#,
    )
    .unwrap();
    let expected = Audience::Or(vec![
        Audience::And(vec![
            Audience::attr_eq("tier", "platinum"),
            Audience::attr_eq("city", "Shenzhen"),
        ]),
        Audience::not(Audience::tag("tester")),
    ]);
    assert_eq!(audience, expected);
}

#[test]
fn deserialize_reads_the_stored_form() {
    let audience: Audience =
        serde_json::from_str(r#"{"attr":{"in":["a"],"name":"tier"}}"#).unwrap();
    assert_eq!(audience, Audience::attr_in("tier", ["a"]));
    let err = serde_json::from_str::<Audience>(r#"{"and":[{"tag":"a"},{"tga":"b"}]}"#).unwrap_err();
    assert!(err.to_string().contains("$.and[1]"), "{err}");
}

#[test]
fn multi_byte_tags_within_the_limit_are_accepted() {
    // 16 characters of 3 bytes: 48 bytes, within the default 50.
    let tag = "深".repeat(16);
    assert_eq!(parse(&json!({ "tag": tag }).to_string()).unwrap(), Audience::Tag(tag));
}

#[test]
fn limits_are_inclusive() {
    let limits = herald_limits(|l| {
        l.audience_depth = 3;
        l.audience_nodes = 3;
        l.accounts_per_push = 2;
    });
    let ok = r#"{"or":[{"not":{"accounts":["a","b"]}}]}"#;
    assert!(super::parse_with(&limits, ok).is_ok());
    let value: Value = serde_json::from_str(ok).unwrap();
    assert!(super::super::parse(&value).is_ok());
}

fn herald_limits(change: impl FnOnce(&mut crate::Limits)) -> crate::Limits {
    let mut limits = crate::Limits::default();
    change(&mut limits);
    limits
}
