//! Every kind of refusal, each with the path of the node it is about.

use serde_json::json;

use super::{names, refusal, refusal_with, AudienceErrorKind as Kind, AudienceRules};
use crate::audience::Audience;
use crate::Limits;

fn limits(change: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    change(&mut limits);
    limits
}

fn path(p: &str) -> String {
    p.to_owned()
}

#[test]
fn shape_errors() {
    assert_eq!(refusal("[1]"), (path("$"), Kind::NotAnObject));
    assert_eq!(refusal(r#"{"and":[{"tag":"a"},"b"]}"#), (path("$.and[1]"), Kind::NotAnObject));
    assert_eq!(refusal("{}"), (path("$"), Kind::KeyCount { found: 0 }));
    assert_eq!(
        refusal(r#"{"or":[{"tag":"a","platform":"ios"}]}"#),
        (path("$.or[0]"), Kind::KeyCount { found: 2 })
    );
    assert_eq!(
        refusal(r#"{"or":[{"tag":"a"},{"tags":"b"}]}"#),
        (path("$.or[1]"), Kind::UnknownNode { key: "tags".into() })
    );
    assert_eq!(refusal(r#"{"not":{"attr":"city"}}"#), (path("$.not.attr"), Kind::NotAnObject));
}

#[test]
fn attr_shape_errors() {
    assert_eq!(
        refusal(r#"{"attr":{"name":"city","eq":"x","op":"="}}"#),
        (path("$.attr"), Kind::UnknownField { field: "op".into() })
    );
    assert_eq!(
        refusal(r#"{"attr":{"eq":"x"}}"#),
        (path("$.attr"), Kind::MissingField { field: "name" })
    );
    assert_eq!(
        refusal(r#"{"attr":{"name":"city"}}"#),
        (path("$.attr"), Kind::MissingField { field: "eq or in" })
    );
    assert_eq!(
        refusal(r#"{"attr":{"name":"city","eq":"x","in":["y"]}}"#),
        (path("$.attr"), Kind::EqAndIn)
    );
    assert_eq!(
        refusal(r#"{"attr":{"name":"city","in":"x"}}"#),
        (path("$.attr.in"), Kind::WrongType { expected: "an array of strings" })
    );
}

#[test]
fn wrong_types() {
    let cases = [
        (r#"{"all":false}"#, "$.all", "true"),
        (r#"{"all":"true"}"#, "$.all", "true"),
        (r#"{"tag":1}"#, "$.tag", "a string"),
        (r#"{"platform":null}"#, "$.platform", "a string"),
        (r#"{"package":["a"]}"#, "$.package", "a string"),
        (r#"{"accounts":"u1"}"#, "$.accounts", "an array of strings"),
        (r#"{"accounts":["u1",2]}"#, "$.accounts[1]", "a string"),
        (r#"{"and":{"tag":"a"}}"#, "$.and", "an array of nodes"),
        (r#"{"attr":{"name":3,"eq":"x"}}"#, "$.attr.name", "a string"),
        (r#"{"attr":{"name":"city","in":["x",true]}}"#, "$.attr.in[1]", "a string"),
    ];
    for (json, at, expected) in cases {
        assert_eq!(refusal(json), (path(at), Kind::WrongType { expected }), "{json}");
    }
}

#[test]
fn empty_lists_and_strings() {
    let cases = [
        (r#"{"and":[]}"#, "$.and", Kind::EmptyList),
        (r#"{"not":{"or":[]}}"#, "$.not.or", Kind::EmptyList),
        (r#"{"accounts":[]}"#, "$.accounts", Kind::EmptyList),
        (r#"{"attr":{"name":"tier","in":[]}}"#, "$.attr.in", Kind::EmptyList),
        (r#"{"tag":""}"#, "$.tag", Kind::EmptyTag),
        (r#"{"attr":{"name":"tier","eq":""}}"#, "$.attr.eq", Kind::EmptyValue),
        (r#"{"attr":{"name":"tier","in":["a",""]}}"#, "$.attr.in[1]", Kind::EmptyValue),
        (r#"{"attr":{"name":"","eq":"a"}}"#, "$.attr.name", Kind::EmptyAttributeName),
        (r#"{"accounts":["u1",""]}"#, "$.accounts[1]", Kind::EmptyAccount),
        (r#"{"package":""}"#, "$.package", Kind::EmptyPackage),
    ];
    for (json, at, kind) in cases {
        assert_eq!(refusal(json), (path(at), kind), "{json}");
    }
}

#[test]
fn control_characters() {
    assert_eq!(refusal(r#"{"tag":"a\nb"}"#), (path("$.tag"), Kind::ControlCharacter { at: 1 }));
    assert_eq!(
        refusal(r#"{"and":[{"all":true},{"accounts":["ok","深\u0000"]}]}"#),
        (path("$.and[1].accounts[1]"), Kind::ControlCharacter { at: 3 })
    );
    assert_eq!(
        refusal(r#"{"attr":{"name":"tier","eq":"\u007f"}}"#),
        (path("$.attr.eq"), Kind::ControlCharacter { at: 0 })
    );
    assert_eq!(
        refusal(r#"{"package":"com.x\t"}"#),
        (path("$.package"), Kind::ControlCharacter { at: 5 })
    );
}

#[test]
fn platforms_are_lower_case_names() {
    for platform in ["iOS", "", "web push", "ándroid"] {
        let json = json!({ "platform": platform }).to_string();
        assert_eq!(
            refusal(&json),
            (path("$.platform"), Kind::InvalidPlatform { platform: platform.into() }),
            "{platform}"
        );
    }
}

#[test]
fn unknown_attributes() {
    assert_eq!(
        refusal(r#"{"and":[{"tag":"a"},{"attr":{"name":"age","eq":"30"}}]}"#),
        (path("$.and[1].attr.name"), Kind::UnknownAttribute { name: "age".into() })
    );
    // Slot 3 is named, but an app allowed only 3 slots cannot use it.
    let three = limits(|l| l.attribute_slots = 3);
    assert_eq!(
        refusal_with(&three, r#"{"attr":{"name":"city","eq":"Shenzhen"}}"#),
        (path("$.attr.name"), Kind::UnknownAttribute { name: "city".into() })
    );
}

#[test]
fn depth_limit() {
    let mut json = String::from(r#"{"tag":"a"}"#);
    for _ in 0..16 {
        json = format!(r#"{{"not":{json}}}"#);
    }
    // 17 levels: the 17th node is the tag under sixteen `not`s.
    let expected_path = format!("${}", ".not".repeat(16));
    let expected = (expected_path, Kind::TooDeep { limit: "audience_depth", value: 16 });
    assert_eq!(refusal(&json), expected);

    // An audience built in code is held to the same limit.
    let mut audience = Audience::tag("a");
    for _ in 0..16 {
        audience = Audience::not(audience);
    }
    let limits = Limits::default();
    let names = names();
    let err = AudienceRules::new(&limits, &names).check(&audience).unwrap_err();
    assert_eq!((err.path, err.kind), expected);
}

#[test]
fn shape_only_parse_stops_at_the_hard_depth() {
    let mut value = json!({"tag": "a"});
    for _ in 0..64 {
        value = json!({ "not": value });
    }
    let err = crate::audience::parse(&value).unwrap_err();
    assert_eq!(
        err.kind,
        Kind::TooDeep { limit: "audience_depth", value: crate::audience::MAX_DEPTH }
    );
}

#[test]
fn node_limit() {
    let three = limits(|l| l.audience_nodes = 3);
    assert_eq!(
        refusal_with(&three, r#"{"or":[{"tag":"a"},{"tag":"b"},{"tag":"c"}]}"#),
        (path("$.or[2]"), Kind::TooManyNodes { limit: "audience_nodes", value: 3 })
    );
}

#[test]
fn tag_and_value_length_limits() {
    let tag = "深".repeat(17);
    assert_eq!(
        refusal(&json!({ "or": [{"tag": "a"}, {"tag": tag}] }).to_string()),
        (path("$.or[1].tag"), Kind::TagTooLong { limit: "tag_bytes", value: 50, actual: 51 })
    );
    let short = limits(|l| l.attribute_value_bytes = 4);
    assert_eq!(
        refusal_with(&short, r#"{"attr":{"name":"tier","in":["gold","platinum"]}}"#),
        (
            path("$.attr.in[1]"),
            Kind::ValueTooLong { limit: "attribute_value_bytes", value: 4, actual: 8 }
        )
    );
}

#[test]
fn accounts_are_counted_over_the_whole_expression() {
    let two = limits(|l| l.accounts_per_push = 2);
    assert_eq!(
        refusal_with(&two, r#"{"or":[{"accounts":["a"]},{"accounts":["b","c"]}]}"#),
        (
            path("$.or[1].accounts"),
            Kind::TooManyAccounts { limit: "accounts_per_push", value: 2, actual: 3 }
        )
    );
}

#[test]
fn errors_read_well_and_serialise_with_their_kind() {
    let err = super::parse(&json!({"tag": "x".repeat(51)}).to_string()).unwrap_err();
    assert_eq!(err.to_string(), "audience $.tag: tag is 51 bytes, limit tag_bytes is 50");
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({"path": "$.tag", "kind": "tag_too_long", "limit": "tag_bytes", "value": 50, "actual": 51})
    );
}
