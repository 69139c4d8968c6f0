//! Vendor credentials sealed at rest: AES-256-GCM under a key from the configuration.
//!
//! # Format
//!
//! `hv1.` followed by base64url (no padding) of `fingerprint (4) | nonce (12) | ciphertext+tag`.
//! The fingerprint is the first 4 bytes of SHA-256 of the key: it lets [`SecretBox::open`] pick
//! the right key during a rotation and say "sealed with another key" instead of a bare
//! authentication failure. The nonce is random per seal. The associated data binds the version,
//! the fingerprint and a caller-chosen *context* (for herald, `app/{id}/apns`), so a sealed value
//! copied into another app's row does not open there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "hv1.";
const FINGERPRINT_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

/// Why a key or a sealed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the credentials key must be base64 of {KEY_LEN} bytes: {0}")]
    BadKey(String),
    #[error("not a sealed value of a version this herald reads (expected the prefix `{PREFIX}`)")]
    UnknownFormat,
    #[error("the sealed value is truncated or not base64")]
    Malformed,
    #[error(
        "sealed with another credentials key (fingerprint {sealed_with}); the configured keys are \
         {configured}: set the key it was sealed with, or add it to the previous keys"
    )]
    WrongKey { sealed_with: String, configured: String },
    #[error(
        "the sealed value does not open with its key: it was altered or belongs to another record"
    )]
    Corrupted,
}

/// One AES-256 key with its fingerprint.
struct SealKey {
    fingerprint: [u8; FINGERPRINT_LEN],
    cipher: Aes256Gcm,
}

impl SealKey {
    fn parse(encoded: &str) -> Result<Self, SecretError> {
        let bytes =
            STANDARD.decode(encoded.trim()).map_err(|e| SecretError::BadKey(e.to_string()))?;
        if bytes.len() != KEY_LEN {
            return Err(SecretError::BadKey(format!("got {} bytes", bytes.len())));
        }
        let mut fingerprint = [0; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&Sha256::digest(&bytes)[..FINGERPRINT_LEN]);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes));
        Ok(Self { fingerprint, cipher })
    }
}

/// Seals and opens credential JSON. Holds the current key and any previous keys still accepted
/// for opening, so that a key rotation can re-seal records at leisure.
pub struct SecretBox {
    current: SealKey,
    previous: Vec<SealKey>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox").field("keys", &self.fingerprints()).finish()
    }
}

impl SecretBox {
    /// A box sealing with `key` (standard base64 of 32 bytes) and opening with it or any of
    /// `previous`.
    pub fn new(key: &str, previous: &[String]) -> Result<Self, SecretError> {
        Ok(Self {
            current: SealKey::parse(key)?,
            previous: previous.iter().map(|k| SealKey::parse(k)).collect::<Result<_, _>>()?,
        })
    }

    /// A fresh random key in the configuration's format.
    pub fn generate_key() -> String {
        let mut key = [0; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    /// Encrypts `plaintext` for the record named `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(&self.current.fingerprint, context);
        // AES-GCM encryption only fails for inputs beyond 64 GiB, which credentials never are.
        let ciphertext = self
            .current
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(FINGERPRINT_LEN + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&self.current.fingerprint);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Decrypts a value sealed for `context` by this box or by one with a previous key.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(SecretError::UnknownFormat)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| SecretError::Malformed)?;
        if bytes.len() < FINGERPRINT_LEN + NONCE_LEN + 16 {
            return Err(SecretError::Malformed);
        }
        let (fingerprint, rest) = bytes.split_at(FINGERPRINT_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.fingerprint == fingerprint)
            .ok_or_else(|| SecretError::WrongKey {
                sealed_with: hex::encode(fingerprint),
                configured: self.fingerprints().join(", "),
            })?;
        let aad = associated_data(&key.fingerprint, context);
        key.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| SecretError::Corrupted)
    }

    /// Whether `sealed` was made with a previous key and should be sealed again with the current
    /// one.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        let fingerprint = sealed
            .strip_prefix(PREFIX)
            .and_then(|body| URL_SAFE_NO_PAD.decode(body).ok())
            .and_then(|bytes| bytes.get(..FINGERPRINT_LEN).map(<[u8]>::to_vec));
        fingerprint.is_some_and(|f| f != self.current.fingerprint)
    }

    /// Serialises `value` as JSON and seals it.
    pub fn seal_json<T: serde::Serialize>(&self, context: &str, value: &T) -> String {
        // Serialising the crate's credential structs cannot fail: they hold strings and enums.
        self.seal(context, &serde_json::to_vec(value).unwrap_or_default())
    }

    /// Opens a value sealed by [`SecretBox::seal_json`].
    pub fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        context: &str,
        sealed: &str,
    ) -> Result<T, SecretError> {
        let plain = self.open(context, sealed)?;
        serde_json::from_slice(&plain).map_err(|_| SecretError::Corrupted)
    }

    fn fingerprints(&self) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|k| hex::encode(k.fingerprint))
            .collect()
    }
}

fn associated_data(fingerprint: &[u8], context: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(PREFIX.len() + FINGERPRINT_LEN + context.len());
    aad.extend_from_slice(PREFIX.as_bytes());
    aad.extend_from_slice(fingerprint);
    aad.extend_from_slice(context.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let key = SecretBox::generate_key();
        let sb = SecretBox::new(&key, &[]).unwrap();
        let sealed = sb.seal("app/1/apns", b"{\"key\":\"secret\"}");
        assert!(sealed.starts_with("hv1."));
        assert!(!sealed.contains("secret"));
        assert_eq!(sb.open("app/1/apns", &sealed).unwrap(), b"{\"key\":\"secret\"}");
        // A random nonce per seal: the same plaintext never seals the same way twice.
        assert_ne!(sb.seal("app/1/apns", b"x"), sb.seal("app/1/apns", b"x"));
    }

    #[test]
    fn wrong_key_is_named() {
        let sealed = SecretBox::new(&SecretBox::generate_key(), &[]).unwrap().seal("c", b"x");
        let other = SecretBox::new(&SecretBox::generate_key(), &[]).unwrap();
        let err = other.open("c", &sealed).unwrap_err();
        assert!(matches!(err, SecretError::WrongKey { .. }), "{err:?}");
        assert!(err.to_string().contains("another credentials key"));
    }

    #[test]
    fn context_and_tampering_are_detected() {
        let sb = SecretBox::new(&SecretBox::generate_key(), &[]).unwrap();
        let sealed = sb.seal("app/1/apns", b"x");
        assert_eq!(sb.open("app/2/apns", &sealed), Err(SecretError::Corrupted));
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed[4..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("hv1.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(sb.open("app/1/apns", &tampered), Err(SecretError::Corrupted));
        assert_eq!(sb.open("app/1/apns", "v0.abc"), Err(SecretError::UnknownFormat));
        assert_eq!(sb.open("app/1/apns", "hv1.!!"), Err(SecretError::Malformed));
        assert_eq!(sb.open("app/1/apns", "hv1.AAAA"), Err(SecretError::Malformed));
    }

    #[test]
    fn rotation_opens_old_values_and_flags_them() {
        let old = SecretBox::generate_key();
        let new = SecretBox::generate_key();
        let sealed = SecretBox::new(&old, &[]).unwrap().seal("c", b"x");
        let rotated = SecretBox::new(&new, std::slice::from_ref(&old)).unwrap();
        assert_eq!(rotated.open("c", &sealed).unwrap(), b"x");
        assert!(rotated.needs_reseal(&sealed));
        assert!(!rotated.needs_reseal(&rotated.seal("c", b"x")));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(SecretBox::new("not base64!", &[]), Err(SecretError::BadKey(_))));
        let short = STANDARD.encode([0u8; 16]);
        let err = SecretBox::new(&short, &[]).unwrap_err();
        assert_eq!(err.to_string(), "the credentials key must be base64 of 32 bytes: got 16 bytes");
    }
}
