//! Round trips of every frame and the errors bad frames produce.

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;

fn hello() -> Hello {
    Hello {
        v: PROTOCOL_VERSION,
        token: "tok".into(),
        device_id: "d1".into(),
        platform: "ios".into(),
        package: "com.example".into(),
        vendor_token: Some(VendorToken { kind: VendorKind::Apns, token: "abc".into() }),
        last_seq: 41,
        app_version: Some("1.2.3".into()),
        locale: Some("de-DE".into()),
        time_zone: Some("Europe/Berlin".into()),
    }
}

#[test]
fn client_frames_round_trip() {
    let minimal = Hello {
        vendor_token: None,
        last_seq: 0,
        app_version: None,
        locale: None,
        time_zone: None,
        ..hello()
    };
    let frames = [
        ClientFrame::Hello(hello()),
        ClientFrame::Hello(minimal),
        ClientFrame::Ack(Ack { up_to: Some(42), seqs: vec![] }),
        ClientFrame::Ack(Ack { up_to: None, seqs: vec![44, 47] }),
        ClientFrame::Ack(Ack { up_to: Some(3), seqs: vec![5] }),
        ClientFrame::Opened(Opened { push_id: "p-17".into() }),
        ClientFrame::Ping {},
    ];
    for frame in frames {
        let text = frame.encode();
        assert_eq!(ClientFrame::decode(&text), Ok(frame), "{text}");
    }
}

#[test]
fn client_frames_have_the_documented_shape() {
    assert_eq!(ClientFrame::Ping {}.encode(), r#"{"type":"ping"}"#);
    assert_eq!(
        ClientFrame::Ack(Ack { up_to: Some(42), seqs: vec![] }).encode(),
        r#"{"type":"ack","up_to":42}"#
    );
    let decoded = ClientFrame::decode(
        r#"{"type":"hello","v":1,"token":"t","device_id":"d","platform":"android","package":"p"}"#,
    );
    let Ok(ClientFrame::Hello(hello)) = decoded else { panic!("{decoded:?}") };
    assert_eq!(hello.last_seq, 0);
    // Unknown members are ignored: a newer client may send more.
    assert_eq!(ClientFrame::decode(r#"{"type":"ping","extra":[1,2]}"#), Ok(ClientFrame::Ping {}));
}

#[test]
fn server_frames_round_trip() {
    let at = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).single().unwrap();
    let frames = [
        ServerFrame::Welcome(Welcome {
            session_id: "s1".into(),
            server_time: at,
            heartbeat_secs: 30,
            resume_from: 7,
            webpush_key: None,
        }),
        ServerFrame::Welcome(Welcome {
            session_id: "s2".into(),
            server_time: at,
            heartbeat_secs: 30,
            resume_from: 0,
            webpush_key: Some("BNcRd".into()),
        }),
        ServerFrame::Push(Push {
            push_id: "p1".into(),
            seq: 8,
            sender: Some("admin".into()),
            message: json!({"text": "hi", "n": [1, 2.5, null]}),
            notification: json!({"title": "T", "badge": 1}).as_object().cloned(),
            sent_at: at,
            expires_at: Some(at + chrono::Duration::days(7)),
        }),
        ServerFrame::Push(Push {
            push_id: "p2".into(),
            seq: 9,
            sender: None,
            message: json!("just a string"),
            notification: None,
            sent_at: at,
            expires_at: None,
        }),
        ServerFrame::Recall(Recall { push_id: "p1".into(), seq: 8 }),
        ServerFrame::Pong {},
        ServerFrame::Error(ErrorFrame::new(ErrorCode::UnknownSeq, "seq 99 was not sent")),
    ];
    for frame in frames {
        let encoded = frame.encode();
        assert_eq!(ServerFrame::decode(encoded.as_str()), Ok(frame), "{}", encoded.as_str());
    }
    assert_eq!(ServerFrame::Pong {}.encode().as_str(), r#"{"type":"pong"}"#);
}

#[test]
fn webpush_is_a_vendor_kind_and_its_key_comes_in_the_welcome() {
    let subscription = r#"{\"endpoint\":\"https://push.example/p/1\",\"keys\":{}}"#;
    let text = format!(
        r#"{{"type":"hello","v":1,"token":"t","device_id":"d","platform":"web","package":"p","vendor_token":{{"kind":"webpush","token":"{subscription}"}}}}"#
    );
    let Ok(ClientFrame::Hello(hello)) = ClientFrame::decode(&text) else { panic!("{text}") };
    let token = hello.vendor_token.expect("a vendor token");
    assert_eq!(token.kind, VendorKind::WebPush);
    assert!(token.token.starts_with(r#"{"endpoint":"#));
    // An older welcome, without the key, still reads.
    let old = r#"{"type":"welcome","session_id":"s","server_time":"2025-01-02T03:04:05Z","heartbeat_secs":30,"resume_from":0}"#;
    let Ok(ServerFrame::Welcome(welcome)) = ServerFrame::decode(old) else { panic!("{old}") };
    assert_eq!(welcome.webpush_key, None);
    assert!(!ServerFrame::Welcome(welcome).encode().contains("webpush_key"));
}

#[test]
fn unknown_error_codes_decode_as_unknown() {
    let frame = ServerFrame::decode(r#"{"type":"error","code":"from_the_future","message":"m"}"#);
    assert_eq!(frame, Ok(ServerFrame::Error(ErrorFrame::new(ErrorCode::Unknown, "m"))));
}

#[test]
fn malformed_frames_name_the_problem() {
    let cases: &[(&str, ErrorCode)] = &[
        ("", ErrorCode::BadFrame),
        ("not json", ErrorCode::BadFrame),
        ("[1,2]", ErrorCode::BadFrame),
        ("\"hello\"", ErrorCode::BadFrame),
        ("{}", ErrorCode::UnknownType),
        (r#"{"type":7}"#, ErrorCode::UnknownType),
        (r#"{"type":"subscribe"}"#, ErrorCode::UnknownType),
        (r#"{"type":"ack"}"#, ErrorCode::BadFrame),
        (r#"{"type":"ack","up_to":-1}"#, ErrorCode::BadFrame),
        (r#"{"type":"ack","up_to":0}"#, ErrorCode::BadFrame),
        (r#"{"type":"ack","seqs":"1"}"#, ErrorCode::BadFrame),
        (r#"{"type":"opened"}"#, ErrorCode::BadFrame),
        (r#"{"type":"opened","push_id":""}"#, ErrorCode::BadFrame),
        (r#"{"type":"hello","v":1}"#, ErrorCode::BadFrame),
        (r#"{"type":"hello","token":"t"}"#, ErrorCode::BadFrame),
        (r#"{"type":"hello","v":2,"something":"else"}"#, ErrorCode::UnsupportedVersion),
        (
            r#"{"type":"hello","v":1,"token":"t","device_id":"","platform":"ios","package":"p"}"#,
            ErrorCode::BadFrame,
        ),
        (
            r#"{"type":"hello","v":1,"token":"t","device_id":"d","platform":"iOS","package":"p"}"#,
            ErrorCode::BadFrame,
        ),
        (
            r#"{"type":"hello","v":1,"token":"t","device_id":"d","platform":"ios","package":"p","vendor_token":{"kind":"mipush","token":"x"}}"#,
            ErrorCode::BadFrame,
        ),
    ];
    for (text, code) in cases {
        let err = ClientFrame::decode(text).expect_err(text);
        assert_eq!(err.code(), *code, "{text}: {err}");
    }
}

#[test]
fn ack_size_is_bounded() {
    let seqs: Vec<u64> = (1..=MAX_ACK_SEQS as u64 + 1).collect();
    let text = json!({"type": "ack", "seqs": seqs}).to_string();
    assert_eq!(ClientFrame::decode(&text).map_err(|e| e.code()), Err(ErrorCode::BadFrame));
}

#[test]
fn hello_debug_hides_the_token() {
    let shown = format!("{:?}", hello());
    assert!(!shown.contains("tok\""), "{shown}");
    assert!(shown.contains("redacted"));
}

#[test]
fn close_codes_are_distinct_and_round_trip() {
    let mut seen = std::collections::HashSet::new();
    for code in CloseCode::ALL {
        assert!(seen.insert(code.code()), "{code:?}");
        assert_eq!(CloseCode::from_code(code.code()), Some(code));
        assert!(code.reason().len() <= 123);
    }
    assert_eq!(CloseCode::from_code(4999), None);
    assert_eq!(CloseCode::Replaced.retry(), Retry::Stop);
    assert_eq!(CloseCode::Unauthorized.retry(), Retry::NewToken);
    assert_eq!(CloseCode::TooSlow.retry(), Retry::Reconnect);
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = ClientFrame::decode(&text);
        let _ = ServerFrame::decode(&text);
    }

    #[test]
    fn acks_round_trip(up_to in proptest::option::of(1u64..), seqs in proptest::collection::vec(1u64.., 0..20)) {
        let ack = Ack { up_to, seqs };
        let frame = ClientFrame::Ack(ack.clone());
        let decoded = ClientFrame::decode(&frame.encode());
        if ack.up_to.is_none() && ack.seqs.is_empty() {
            proptest::prop_assert!(decoded.is_err());
        } else {
            proptest::prop_assert_eq!(decoded, Ok(frame));
        }
    }
}
