//! The answer envelope of every RongCloud call, in the format its path asks for.
//!
//! # Format
//! A path ending in `.json` answers JSON, one ending in `.xml` the same members as XML:
//! ```text
//! {"code":200,"id":"p_1"}                 <xml><code>200</code><id>p_1</id></xml>
//! {"code":1004,"errorMessage":".."}       <xml><code>1004</code><errorMessage>..</errorMessage></xml>
//! ```
//! Top-level members become elements of the same name, in the order the call lists them (`code`
//! first). Nested values, which RongCloud's documents never show in XML, are written so that any
//! key survives: a list as `<item>` elements, a map (keyed by user ids, which need not be valid
//! XML names) as `<entry key="..">` elements:
//! ```text
//! {"code":200,"result":{"a":["t"],"b":[]}}
//! <xml><code>200</code><result><entry key="a"><item>t</item></entry><entry key="b"></entry></result></xml>
//! ```

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::error::RongError;
use crate::error::ApiErrorKind;

/// The answer format a call's path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// `.xml` paths answer XML; every other route of the layer ends in `.json`.
    pub fn of_path(path: &str) -> Self {
        if path.ends_with(".xml") {
            Format::Xml
        } else {
            Format::Json
        }
    }
}

/// One answer: an HTTP status and the members after `code`.
#[derive(Debug)]
pub struct Reply {
    format: Format,
    status: StatusCode,
    code: u32,
    fields: Vec<(&'static str, Value)>,
    retry_after_secs: Option<u64>,
}

impl Reply {
    /// `{"code":200, ..fields}` with HTTP 200.
    pub fn ok(format: Format, fields: Vec<(&'static str, Value)>) -> Self {
        Reply { format, status: StatusCode::OK, code: 200, fields, retry_after_secs: None }
    }

    /// `{"code":<code>,"errorMessage":".."}` with the code's HTTP status.
    pub fn error(format: Format, err: &RongError) -> Self {
        let (code, status) = err.code_and_status();
        if let RongError::Api(ApiErrorKind::Internal(detail)) = err {
            // The detail goes to the logs; the caller learns only that it was not its fault.
            tracing::error!(%detail, "rongcloud: internal error");
        }
        Reply {
            format,
            status,
            code,
            fields: vec![("errorMessage", Value::String(err.to_string()))],
            retry_after_secs: err.retry_after_secs(),
        }
    }

    /// The answer to a call's outcome.
    pub fn from_result(
        format: Format,
        result: Result<Vec<(&'static str, Value)>, RongError>,
    ) -> Self {
        match result {
            Ok(fields) => Reply::ok(format, fields),
            Err(err) => Reply::error(format, &err),
        }
    }

    /// The body as sent.
    pub fn body(&self) -> String {
        match self.format {
            // Serialising strings, numbers and maps of them cannot fail.
            Format::Json => serde_json::to_string(&Members(self)).unwrap_or_default(),
            Format::Xml => {
                let mut out = String::from("<xml>");
                element(&mut out, "code", &Value::from(self.code));
                for (name, value) in &self.fields {
                    element(&mut out, name, value);
                }
                out.push_str("</xml>");
                out
            }
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let content_type = match self.format {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "application/xml; charset=utf-8",
        };
        let mut response = (self.status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The JSON object, members in the reply's order (serde_json's own map would sort them).
struct Members<'a>(&'a Reply);

impl Serialize for Members<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.fields.len() + 1))?;
        map.serialize_entry("code", &self.0.code)?;
        for (name, value) in &self.0.fields {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// `<name>value</name>`; `name` is one of the layer's own member names, always a valid XML name.
fn element(out: &mut String, name: &str, value: &Value) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    content(out, value);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn content(out: &mut String, value: &Value) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => escape(out, s),
        Value::Array(items) => {
            for item in items {
                element(out, "item", item);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                out.push_str("<entry key=\"");
                escape(out, key);
                out.push_str("\">");
                content(out, item);
                out.push_str("</entry>");
            }
        }
    }
}

/// Escapes text for XML content and attribute values. Tabs and line ends go as character
/// references, so that a parser reads them back as sent (it would turn a raw CR into LF, and
/// raw whitespace in an attribute into spaces); the other control characters, which XML 1.0
/// cannot carry even as references, become U+FFFD, as do U+FFFE and U+FFFF.
fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn json_and_xml_of_the_seed_examples() {
        let ok = Reply::ok(Format::Json, vec![]);
        assert_eq!(ok.body(), r#"{"code":200}"#);
        assert_eq!(Reply::ok(Format::Xml, vec![]).body(), "<xml><code>200</code></xml>");
        let id = vec![("id", json!("50whSR6kQiHb7YgFwQzXIb"))];
        assert_eq!(
            Reply::ok(Format::Json, id.clone()).body(),
            r#"{"code":200,"id":"50whSR6kQiHb7YgFwQzXIb"}"#
        );
        assert_eq!(
            Reply::ok(Format::Xml, id).body(),
            "<xml><code>200</code><id>50whSR6kQiHb7YgFwQzXIb</id></xml>"
        );
    }

    #[test]
    fn members_keep_their_order() {
        let fields = vec![("userId", json!("u")), ("token", json!("t"))];
        assert_eq!(
            Reply::ok(Format::Json, fields).body(),
            r#"{"code":200,"userId":"u","token":"t"}"#
        );
    }

    #[test]
    fn nested_values_in_xml() {
        let fields = vec![("result", json!({"a": ["t", "<&>"], "1 b": []}))];
        assert_eq!(
            Reply::ok(Format::Xml, fields).body(),
            "<xml><code>200</code><result><entry key=\"1 b\"></entry><entry key=\"a\">\
             <item>t</item><item>&lt;&amp;&gt;</item></entry></result></xml>"
        );
    }

    #[test]
    fn control_characters_leave_the_xml_well_formed() {
        let fields = vec![("result", json!({"a\tb": "x\u{0}y\r\nz\u{17}"}))];
        assert_eq!(
            Reply::ok(Format::Xml, fields).body(),
            "<xml><code>200</code><result><entry key=\"a&#9;b\">x\u{fffd}y&#13;&#10;z\u{fffd}</entry>\
             </result></xml>"
        );
    }

    /// A number is parsed to the nearest double and written back as its shortest form, which
    /// reads back to the same double (serde_json's `float_roundtrip`; its default parser can
    /// land one unit off and change the digits of a number on its way through).
    #[test]
    fn numbers_come_back_as_sent() {
        let sent: Value = serde_json::from_str("333333333300000000000000001045544630694008148")
            .unwrap_or_else(|err| panic!("{err}"));
        let body = Reply::ok(Format::Json, vec![("result", sent.clone())]).body();
        let again: Value = serde_json::from_str(&body).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(again["result"], sent, "{body}");
    }

    #[test]
    fn errors_carry_code_message_and_status() {
        let err = RongError::NoPostData;
        let reply = Reply::error(Format::Xml, &err);
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            reply.body(),
            "<xml><code>1003</code><errorMessage>no POST data</errorMessage></xml>"
        );
        let json = Reply::error(Format::Json, &RongError::NotEnabled);
        assert_eq!(json.status.as_u16(), 430);
        let body: Value = serde_json::from_str(&json.body()).unwrap_or_default();
        assert_eq!(body["code"], 1009);
    }

    #[test]
    fn format_follows_the_path() {
        assert_eq!(Format::of_path("/push.xml"), Format::Xml);
        assert_eq!(Format::of_path("/user/tag/set.json"), Format::Json);
    }
}
