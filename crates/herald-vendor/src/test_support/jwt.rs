//! Decoding and verifying the JWTs herald sends, as Apple's and Google's servers would.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256};
use serde_json::Value;

/// A compact JWT split into its parts.
#[derive(Debug, Clone)]
pub struct DecodedJwt {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl DecodedJwt {
    /// Splits and decodes `header.claims.signature`; `None` when it is not a JWT.
    pub fn decode(jwt: &str) -> Option<Self> {
        let mut parts = jwt.split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let json = |part: &str| -> Option<Value> {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
        };
        Some(Self {
            header: json(header)?,
            claims: json(claims)?,
            signing_input: format!("{header}.{claims}"),
            signature: URL_SAFE_NO_PAD.decode(signature).ok()?,
        })
    }

    /// Checks an ES256 signature against an uncompressed P-256 public point.
    pub fn verify_es256(&self, public_key: &[u8]) -> bool {
        self.header["alg"] == "ES256"
            && UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
                .verify(self.signing_input.as_bytes(), &self.signature)
                .is_ok()
    }

    /// Checks an RS256 signature against a PKCS#1 `RSAPublicKey` DER.
    pub fn verify_rs256(&self, public_key: &[u8]) -> bool {
        self.header["alg"] == "RS256"
            && UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
                .verify(self.signing_input.as_bytes(), &self.signature)
                .is_ok()
    }

    /// A numeric claim.
    pub fn claim_u64(&self, name: &str) -> Option<u64> {
        self.claims.get(name)?.as_u64()
    }
}
