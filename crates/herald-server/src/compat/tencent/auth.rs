//! TLSSigAPIv2 usersigs: how a Tencent back end proves it holds the app's key.
//!
//! # Format
//!
//! A usersig is URL-safe base64 (`+`→`*`, `/`→`-`, `=`→`_`) of zlib-compressed JSON:
//!
//! ```json
//! {"TLS.ver":"2.0","TLS.identifier":"admin","TLS.sdkappid":1400000000,
//!  "TLS.expire":86400,"TLS.time":1700000000,"TLS.sig":"<base64>","TLS.userbuf":"<optional>"}
//! ```
//!
//! `TLS.sig` is base64 of HMAC-SHA256, keyed with the app secret, over
//! `TLS.identifier:{id}\nTLS.sdkappid:{appid}\nTLS.time:{time}\nTLS.expire:{expire}\n`, followed
//! by `TLS.userbuf:{userbuf}\n` when a userbuf is present. The signature is valid until
//! `TLS.time + TLS.expire`. This is what the public `tls-sig-api-v2` packages produce.

use std::io::Read;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::error::TencentError;

/// Largest decompressed usersig: real ones are a few hundred bytes; the cap stops a small
/// compressed body from inflating into a large allocation.
const MAX_JSON_BYTES: u64 = 16 * 1024;

/// Base64 that accepts a usersig with or without its padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A decoded usersig, not yet verified.
#[derive(Clone, PartialEq, Eq)]
pub struct UserSig {
    pub identifier: String,
    pub sdkappid: u64,
    /// Unix seconds when it was made.
    pub time: i64,
    /// Seconds it stays valid after `time`.
    pub expire: i64,
    sig: String,
    userbuf: Option<String>,
}

impl std::fmt::Debug for UserSig {
    // With its signature, a usersig is a bearer credential until it expires.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSig")
            .field("identifier", &self.identifier)
            .field("sdkappid", &self.sdkappid)
            .field("time", &self.time)
            .field("expire", &self.expire)
            .field("sig", &"<redacted>")
            .field("userbuf", &self.userbuf)
            .finish()
    }
}

impl UserSig {
    /// Reads a usersig as sent in the `usersig` query parameter.
    pub fn decode(usersig: &str) -> Result<Self, TencentError> {
        let malformed = |what: &str| TencentError::SigMalformed(what.to_owned());
        let standard: String = usersig
            .chars()
            .map(|c| match c {
                '*' => '+',
                '-' => '/',
                '_' => '=',
                other => other,
            })
            .collect();
        let compressed = LENIENT.decode(standard.trim()).map_err(|_| malformed("not base64"))?;
        let mut json = Vec::new();
        ZlibDecoder::new(compressed.as_slice())
            .take(MAX_JSON_BYTES + 1)
            .read_to_end(&mut json)
            .map_err(|_| malformed("not zlib data"))?;
        if json.len() as u64 > MAX_JSON_BYTES {
            return Err(malformed("too large"));
        }
        let doc: Map<String, Value> =
            serde_json::from_slice(&json).map_err(|_| malformed("not a JSON object"))?;
        if doc.get("TLS.ver").and_then(Value::as_str) != Some("2.0") {
            return Err(malformed("TLS.ver is not \"2.0\""));
        }
        let text = |key: &str| {
            doc.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| malformed(&format!("{key} missing")))
        };
        Ok(Self {
            identifier: text("TLS.identifier")?,
            sdkappid: integer(&doc, "TLS.sdkappid")?,
            time: integer(&doc, "TLS.time")?,
            expire: integer(&doc, "TLS.expire")?,
            sig: text("TLS.sig")?,
            userbuf: doc.get("TLS.userbuf").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// The text the HMAC is computed over.
    fn content(&self) -> String {
        let mut content = format!(
            "TLS.identifier:{}\nTLS.sdkappid:{}\nTLS.time:{}\nTLS.expire:{}\n",
            self.identifier, self.sdkappid, self.time, self.expire
        );
        if let Some(userbuf) = &self.userbuf {
            content.push_str(&format!("TLS.userbuf:{userbuf}\n"));
        }
        content
    }

    /// Whether `TLS.sig` was made with one of `secrets`; compared in constant time.
    pub fn signed_with_any<'a>(&self, secrets: impl IntoIterator<Item = &'a str>) -> bool {
        let Ok(given) = LENIENT.decode(self.sig.trim()) else { return false };
        let content = self.content();
        secrets.into_iter().any(|secret| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                return false;
            };
            mac.update(content.as_bytes());
            mac.verify_slice(&given).is_ok()
        })
    }

    /// Unix second after which the usersig is refused.
    pub fn expires_at(&self) -> i64 {
        self.time.saturating_add(self.expire)
    }
}

/// Numbers are written as JSON numbers by the public packages; a numeric string is accepted
/// too, as some hand-written signers quote them.
fn integer<T: std::str::FromStr + TryFrom<i64> + TryFrom<u64>>(
    doc: &Map<String, Value>,
    key: &str,
) -> Result<T, TencentError> {
    let parsed = match doc.get(key) {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| T::try_from(n).ok())
            .or_else(|| n.as_i64().and_then(|n| T::try_from(n).ok())),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| TencentError::SigMalformed(format!("{key} missing or not an integer")))
}

/// Checks that `usersig` was made for `identifier` and `sdkappid` with one of `secrets`, and is
/// not expired at `now` (Unix seconds).
pub fn verify<'a>(
    usersig: &str,
    identifier: &str,
    sdkappid: u64,
    secrets: impl IntoIterator<Item = &'a str>,
    now: i64,
) -> Result<(), TencentError> {
    let sig = UserSig::decode(usersig)?;
    if sig.identifier != identifier {
        return Err(TencentError::SigIdentifier {
            signed: sig.identifier,
            given: identifier.to_owned(),
        });
    }
    if sig.sdkappid != sdkappid {
        return Err(TencentError::SigSdkAppId { signed: sig.sdkappid, given: sdkappid });
    }
    if !sig.signed_with_any(secrets) {
        return Err(TencentError::SigMismatch);
    }
    if sig.expires_at() < now {
        return Err(TencentError::SigExpired { expired_at: sig.expires_at() });
    }
    Ok(())
}

/// Makes a usersig the way `tls-sig-api-v2` does: for operators' scripts and tests.
pub fn sign(secret: &str, sdkappid: u64, identifier: &str, time: i64, expire: i64) -> String {
    let mut sig = UserSig {
        identifier: identifier.to_owned(),
        sdkappid,
        time,
        expire,
        sig: String::new(),
        userbuf: None,
    };
    // HMAC-SHA256 takes a key of any length, so this cannot fail.
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        mac.update(sig.content().as_bytes());
        sig.sig = STANDARD.encode(mac.finalize().into_bytes());
    }
    let doc = json!({
        "TLS.ver": "2.0",
        "TLS.identifier": sig.identifier,
        "TLS.sdkappid": sig.sdkappid,
        "TLS.expire": sig.expire,
        "TLS.time": sig.time,
        "TLS.sig": sig.sig,
    });
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec does not fail.
    let _ = std::io::Write::write_all(&mut encoder, doc.to_string().as_bytes());
    let compressed = encoder.finish().unwrap_or_default();
    STANDARD
        .encode(compressed)
        .chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";

    #[test]
    fn own_signature_verifies() {
        let sig = sign(KEY, 1_400_000_000, "admin", 1_700_000_000, 86_400);
        assert!(verify(&sig, "admin", 1_400_000_000, [KEY], 1_700_000_100).is_ok());
    }

    #[test]
    fn wrong_key_identifier_appid_and_time_are_refused() {
        let sig = sign(KEY, 1_400_000_000, "admin", 1_700_000_000, 60);
        let code = |r: Result<(), TencentError>| r.map_err(|e| e.code()).err();
        assert_eq!(
            code(verify(&sig, "admin", 1_400_000_000, ["other"], 1_700_000_000)),
            Some(70009)
        );
        assert_eq!(code(verify(&sig, "bob", 1_400_000_000, [KEY], 1_700_000_000)), Some(70013));
        assert_eq!(code(verify(&sig, "admin", 1_400_000_001, [KEY], 1_700_000_000)), Some(70014));
        assert_eq!(code(verify(&sig, "admin", 1_400_000_000, [KEY], 1_700_000_061)), Some(70001));
        assert_eq!(code(verify("not*a*sig", "admin", 1, [KEY], 0)), Some(70003));
    }

    #[test]
    fn previous_secret_still_verifies() {
        let sig = sign("old", 7, "admin", 1_700_000_000, 60);
        assert!(verify(&sig, "admin", 7, ["new", "old"], 1_700_000_000).is_ok());
    }

    /// Made by the reference Python package (`tls-sig-api-v2` 1.1) with its clock set to
    /// 1700000000: `TLSSigAPIv2(1400000000, KEY).gen_sig("xiaojun", 86400)`, then
    /// `.gen_sig_with_userbuf("xiaojun", 86400, b"abc")`.
    const PYTHON_SIG: &str = "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87NK82CSxSnZiQUFmSlAKUMTAyiAyqVWFGQWpQJlLMxM4IIlmbkgIUNzNMXFmekg44P93EzccsOcA0qT8yOKnfwLksLcjNPcnNNMzb0Ccg1Sq6IMs1LDPH1ywpJtlWoBk68y0A__";
    const PYTHON_SIG_USERBUF: &str = "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87NK82CSxSnZiQUFmSlAKUMTAyiAyqVWFGQWpQJlLMxM4IIlmbkgIUNzNMWlxalFSaVpICsiw72y4OZnpoOE-BOTjMsi0nMiTUwDkiuqtIODszJSKpzCSzNCHCvCMioifdLKwrLcM-y9DGyVagF2rTqB";

    #[test]
    fn reference_package_signatures_verify() {
        for sig in [PYTHON_SIG, PYTHON_SIG_USERBUF] {
            assert!(verify(sig, "xiaojun", 1_400_000_000, [KEY], 1_700_000_000).is_ok());
            let code =
                verify(sig, "xiaojun", 1_400_000_000, [KEY], 1_700_086_401).map_err(|e| e.code());
            assert_eq!(code, Err(70001));
        }
        let decoded = UserSig::decode(PYTHON_SIG_USERBUF).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decoded.userbuf.as_deref(), Some("YWJj"));
        assert!(decoded.content().ends_with("TLS.expire:86400\nTLS.userbuf:YWJj\n"));
        let mut tampered = decoded.clone();
        tampered.userbuf = Some("YWJk".into());
        assert!(!tampered.signed_with_any([KEY]));
    }

    #[test]
    fn own_signature_matches_the_reference_package() {
        let ours = UserSig::decode(&sign(KEY, 1_400_000_000, "xiaojun", 1_700_000_000, 86_400));
        let theirs = UserSig::decode(PYTHON_SIG);
        assert_eq!(ours.map_err(|e| e.to_string()), theirs.map_err(|e| e.to_string()));
    }
}
