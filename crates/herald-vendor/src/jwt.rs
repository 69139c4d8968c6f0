//! JSON Web Tokens signed with the two algorithms the vendors ask for: ES256 for APNs provider
//! tokens and VAPID, RS256 for Google service-account assertions, plus the PEM key parsing behind them.
//!
//! The tokens are built by hand (`base64url(header).base64url(claims).base64url(signature)`)
//! because both formats are fixed and small; ring does the cryptography.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Why a private key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM private key ({0}); expected a `-----BEGIN PRIVATE KEY-----` block")]
    NotPem(String),
    #[error("the key is {found}; expected {expected}")]
    WrongFormat { found: &'static str, expected: &'static str },
    #[error("the key was rejected: {0}")]
    Rejected(String),
    #[error("signing failed")]
    Sign,
}

/// Base64url without padding, the JWT alphabet.
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn private_key_der(pem: &str) -> Result<PrivateKeyDer<'static>, KeyError> {
    PrivateKeyDer::from_pem_slice(pem.trim().as_bytes())
        .map_err(|e| KeyError::NotPem(e.to_string()))
}

fn signing_input(header: &impl Serialize, claims: &impl Serialize) -> Result<String, KeyError> {
    let header = serde_json::to_vec(header).map_err(|_| KeyError::Sign)?;
    let claims = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
    Ok(format!("{}.{}", b64(&header), b64(&claims)))
}

/// A P-256 ECDSA private key, as in an APNs `.p8` file.
pub struct Es256Key {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for Es256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es256Key").field("fingerprint", &self.fingerprint()).finish()
    }
}

impl Es256Key {
    /// Parses a PKCS#8 PEM (`BEGIN PRIVATE KEY`) holding a P-256 key.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = match private_key_der(pem)? {
            PrivateKeyDer::Pkcs8(der) => der,
            PrivateKeyDer::Sec1(_) => {
                return Err(KeyError::WrongFormat {
                    found: "a SEC1 EC key (`BEGIN EC PRIVATE KEY`)",
                    expected: "the PKCS#8 .p8 file from Apple (`BEGIN PRIVATE KEY`)",
                })
            }
            PrivateKeyDer::Pkcs1(_) => {
                return Err(KeyError::WrongFormat {
                    found: "an RSA key",
                    expected: "a P-256 (ES256) key",
                })
            }
            _ => return Err(KeyError::NotPem("unknown key format".into())),
        };
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| KeyError::Rejected(format!("not a P-256 ECDSA key: {e}")))?;
        Ok(Self { pair, rng })
    }

    /// A P-256 key from its raw parts: the 32-byte private scalar and the uncompressed public
    /// point, the form VAPID keys are exchanged in.
    pub fn from_raw_p256(private_scalar: &[u8], public_point: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            private_scalar,
            public_point,
            &rng,
        )
        .map_err(|e| KeyError::Rejected(format!("not a P-256 key pair: {e}")))?;
        Ok(Self { pair, rng })
    }

    /// The uncompressed public point, what a verifier needs.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// First 16 hex digits of the SHA-256 of the public key: names the key without revealing it.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.public_key())
    }

    /// Signs `header.claims` and returns the compact JWT.
    pub fn sign(
        &self,
        header: &impl Serialize,
        claims: &impl Serialize,
    ) -> Result<String, KeyError> {
        let input = signing_input(header, claims)?;
        let sig = self.pair.sign(&self.rng, input.as_bytes()).map_err(|_| KeyError::Sign)?;
        Ok(format!("{input}.{}", b64(sig.as_ref())))
    }
}

/// An RSA private key, as in a Google service-account file.
pub struct Rs256Key {
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for Rs256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rs256Key").field("fingerprint", &self.fingerprint()).finish()
    }
}

impl Rs256Key {
    /// Parses a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM of at least
    /// 2048 bits.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let pair = match private_key_der(pem)? {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(_) => {
                return Err(KeyError::WrongFormat {
                    found: "an EC key",
                    expected: "the RSA key of a service account",
                })
            }
            _ => return Err(KeyError::NotPem("unknown key format".into())),
        }
        .map_err(|e| KeyError::Rejected(format!("not an RSA key of 2048 bits or more: {e}")))?;
        Ok(Self { pair, rng: SystemRandom::new() })
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER, what a verifier needs.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public().as_ref()
    }

    /// First 16 hex digits of the SHA-256 of the public key (PKCS#1 DER).
    pub fn fingerprint(&self) -> String {
        fingerprint(self.public_key())
    }

    /// Signs `header.claims` and returns the compact JWT.
    pub fn sign(
        &self,
        header: &impl Serialize,
        claims: &impl Serialize,
    ) -> Result<String, KeyError> {
        let input = signing_input(header, claims)?;
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut sig)
            .map_err(|_| KeyError::Sign)?;
        Ok(format!("{input}.{}", b64(&sig)))
    }
}

fn fingerprint(public: &[u8]) -> String {
    hex::encode(&Sha256::digest(public)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn garbage_is_not_pem() {
        assert!(matches!(Es256Key::from_pem("hello"), Err(KeyError::NotPem(_))));
        assert!(matches!(Rs256Key::from_pem(""), Err(KeyError::NotPem(_))));
    }

    #[test]
    fn es256_token_has_three_parts() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = Es256Key::from_pem(&key.serialize_pem()).unwrap();
        let jwt = key.sign(&json!({"alg": "ES256"}), &json!({"iss": "T"})).unwrap();
        let parts: Vec<_> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 64);
    }
}
