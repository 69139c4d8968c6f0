//! Tests of the audience language: parsing, checking, normalisation and its meaning.

mod invalid;
mod meaning;
mod normalise;
mod valid;

use serde_json::Value;

use super::{Audience, AudienceError, AudienceErrorKind, AudienceRules, Plan};
use crate::Limits;

/// Attribute names of the test app: slots 0, 1 and 3 are named, slot 2 is free.
fn names() -> Vec<Option<String>> {
    vec![Some("sex".into()), Some("tier".into()), None, Some("city".into())]
}

fn parse_with(limits: &Limits, json: &str) -> Result<Audience, AudienceError> {
    let value: Value = serde_json::from_str(json).expect("test JSON");
    AudienceRules::new(limits, &names()).parse(&value)
}

fn parse(json: &str) -> Result<Audience, AudienceError> {
    parse_with(&Limits::default(), json)
}

fn plan(json: &str) -> Plan {
    let limits = Limits::default();
    let names = names();
    let rules = AudienceRules::new(&limits, &names);
    let audience = parse(json).expect("valid audience");
    rules.plan(&audience).expect("valid audience")
}

/// The error of an invalid audience, as (path, kind).
fn refusal_with(limits: &Limits, json: &str) -> (String, AudienceErrorKind) {
    let err = parse_with(limits, json).expect_err("invalid audience");
    (err.path, err.kind)
}

fn refusal(json: &str) -> (String, AudienceErrorKind) {
    refusal_with(&Limits::default(), json)
}
