//! The RongCloud layer: JSON and form request bodies, and the JSON and XML answers.
//!
//! Input: a first line with the path (`/push.json`, `/user/tags/get.xml`), then the request
//! body. Checked, besides "no panic, no hang": the answer to the body, in both formats, is
//! well-formed JSON and well-formed XML carrying the same code and members; a body that is JSON
//! also goes out as a nested `result` member, and the XML answer reads back to the same values.
#![no_main]

use herald_server::compat::rongcloud::{check_request, Format, Reply};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// A value as the XML answer can tell it: `null`, `""`, `[]` and `{}` all read as empty text.
#[derive(Debug, PartialEq)]
enum Shape {
    Text(String),
    List(Vec<Shape>),
    Map(Vec<(String, Shape)>),
}

fn shape(value: &Value) -> Shape {
    match value {
        Value::Null => Shape::Text(String::new()),
        Value::Bool(b) => Shape::Text(b.to_string()),
        Value::Number(n) => Shape::Text(n.to_string()),
        Value::String(s) => Shape::Text(in_xml(s)),
        Value::Array(items) if items.is_empty() => Shape::Text(String::new()),
        Value::Array(items) => Shape::List(items.iter().map(shape).collect()),
        Value::Object(map) if map.is_empty() => Shape::Text(String::new()),
        Value::Object(map) => Shape::Map(map.iter().map(|(k, v)| (in_xml(k), shape(v))).collect()),
    }
}

/// Text as the XML answer carries it: the control characters XML 1.0 cannot hold (all below
/// U+0020 but tab, LF and CR) and U+FFFE, U+FFFF read back as U+FFFD.
fn in_xml(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect()
}

fn read_back(node: roxmltree::Node<'_, '_>) -> Shape {
    let children: Vec<_> = node.children().filter(|c| c.is_element()).collect();
    match children.first().map(|c| c.tag_name().name()) {
        None => Shape::Text(node.children().filter_map(|c| c.text()).collect()),
        Some("item") => Shape::List(children.into_iter().map(read_back).collect()),
        Some(_) => Shape::Map(
            children
                .into_iter()
                .map(|entry| {
                    assert_eq!(entry.tag_name().name(), "entry");
                    let key = entry.attribute("key").expect("entries have a key");
                    (key.to_owned(), read_back(entry))
                })
                .collect(),
        ),
    }
}

/// Checks one answer in both formats against its members; `members` are those after `code`.
/// Names are compared as the XML carries them ([`in_xml`]).
fn check_answer(reply: impl Fn(Format) -> Reply) {
    let json = reply(Format::Json).body();
    let json: Value = serde_json::from_str(&json).expect("the JSON answer parses");
    let members = json.as_object().expect("the JSON answer is an object");
    let xml = reply(Format::Xml).body();
    let doc = roxmltree::Document::parse(&xml)
        .unwrap_or_else(|err| panic!("the XML answer {xml:?} is not well-formed: {err}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "xml");
    let elements: Vec<_> = root.children().filter(|c| c.is_element()).collect();
    assert_eq!(elements.len(), members.len(), "{xml}");
    for element in elements {
        let name = element.tag_name().name();
        let value = members.get(name).unwrap_or_else(|| panic!("{name} is not in {json}"));
        assert_eq!(read_back(element), shape(value), "{name} in {xml}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let Some(Ok(path)) = parts.next().map(std::str::from_utf8) else { return };
    let body = parts.next().unwrap_or_default();

    let result = check_request(path, body);
    check_answer(|format| match &result {
        Ok(()) => Reply::ok(format, vec![]),
        Err(err) => Reply::error(format, err),
    });
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        check_answer(|format| Reply::ok(format, vec![("result", value.clone())]));
    }
});
