//! Signature headers: the native API's signed requests (`x-herald-*`), RongCloud's
//! `App-Key` / `Nonce` / `Timestamp` / `Signature`, and client tokens (`token`).
//!
//! Input: header lines (`name: value`), an empty line, then the request body. Checked, besides
//! "no panic, no hang": headers that are accepted are within the window and of the right shape;
//! a signature verifies exactly when it is the one the secret makes (hex in any case for
//! RongCloud, lower or upper for the native API); a request signed with the secret verifies.
#![no_main]

use herald_core::signature::{self, SignedParts};
use herald_protocol::token;
use herald_server::auth::SignatureHeaders;
use herald_server::compat::rongcloud::auth::{self as rong, RongHeaders};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "s3cret";
const NOW: i64 = 1_767_225_600;
const WINDOW: u64 = 300;

fn headers(block: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in block.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    headers
}

fn native(headers: &HeaderMap, body: &[u8]) {
    let Ok(read) = SignatureHeaders::read(headers, NOW, WINDOW) else { return };
    assert!(read.timestamp.abs_diff(NOW) <= WINDOW);
    assert!(signature::valid_nonce(read.nonce));
    let parts = SignedParts {
        method: "POST",
        path: "/v1/pushes",
        query: "",
        timestamp: read.timestamp,
        nonce: read.nonce,
        body,
    };
    let expected = parts.sign(SECRET);
    assert_eq!(
        parts.verify(SECRET, read.signature),
        read.signature.to_ascii_lowercase() == expected,
        "{read:?}"
    );
    assert!(parts.verify(SECRET, &expected));
    assert!(!parts.verify("another secret", &expected));
}

fn rongcloud(headers: &HeaderMap) {
    let Ok(read) = RongHeaders::read(headers, NOW, WINDOW) else { return };
    assert!(read.timestamp.abs_diff(NOW) <= WINDOW);
    assert_eq!(rong::timestamp_secs(read.raw_timestamp), Some(read.timestamp));
    let expected = rong::signature(SECRET, read.nonce, read.raw_timestamp);
    assert_eq!(read.signed_with(SECRET), read.signature.eq_ignore_ascii_case(&expected));
    let resigned = RongHeaders { signature: &expected, ..read };
    assert!(resigned.signed_with(SECRET));
    assert!(!resigned.signed_with("another secret"));
}

fn client_token(headers: &HeaderMap) {
    for raw in headers.get_all("token").iter().filter_map(|v| v.to_str().ok()) {
        let Ok(parsed) = token::parse(raw) else { continue };
        assert!(!parsed.claims.app_key.is_empty() && !parsed.claims.account.is_empty());
        if parsed.verify(SECRET, NOW).is_ok() {
            assert!(parsed.claims.expires_at > NOW);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (block, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let headers = headers(block);
    native(&headers, body);
    rongcloud(&headers);
    client_token(&headers);
    for raw in headers.get_all("timestamp").iter().filter_map(|v| v.to_str().ok()) {
        if let Some(secs) = rong::timestamp_secs(raw) {
            assert!(secs >= 0);
        }
    }
});
