//! Client protocol frames (herald-protocol, as herald-gateway decodes them) and client tokens.
//!
//! Input: one WebSocket message. Text that is not UTF-8 is a binary message, which the gateway
//! refuses without decoding. Checked, besides "no panic, no hang": a frame that decodes encodes
//! to text that decodes to the same frame, on both sides of the protocol; every refusal maps to
//! an error code; a token that parses verifies only with the secret that minted it.
#![no_main]

use herald_protocol::token;
use herald_protocol::{ClientFrame, ServerFrame};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "s3cret";
const NOW: i64 = 1_767_225_600;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    match ClientFrame::decode(text) {
        Ok(frame) => {
            let encoded = frame.encode();
            assert_eq!(ClientFrame::decode(&encoded).as_ref(), Ok(&frame), "{encoded}");
        }
        Err(err) => {
            let _ = (err.code(), err.to_string());
        }
    }
    match ServerFrame::decode(text) {
        Ok(frame) => {
            let encoded = frame.encode();
            assert_eq!(ServerFrame::decode(&encoded).as_ref(), Ok(&frame), "{encoded}");
        }
        Err(err) => {
            let _ = (err.code(), err.to_string());
        }
    }

    if let Ok(parsed) = token::parse(text) {
        let claims = parsed.claims.clone();
        if let Ok(verified) = parsed.verify(SECRET, NOW) {
            assert_eq!(verified, &claims);
            assert!(claims.expires_at > NOW);
        }
        assert!(parsed.verify("another secret", NOW).is_err());
        let minted = token::mint(&claims.app_key, SECRET, &claims.account, claims.expires_at);
        let reparsed = token::parse(&minted);
        // A claim may be too long to fit a token; one that fits verifies.
        if minted.len() <= token::MAX_TOKEN_LEN && claims.expires_at > i64::MIN {
            let reparsed = reparsed.expect("a minted token parses");
            assert_eq!(reparsed.claims, claims);
            assert_eq!(
                reparsed.verify(SECRET, claims.expires_at.saturating_sub(1)).ok(),
                Some(&claims)
            );
        }
    }
});
