//! Web Push message encryption: RFC 8291 keys over the RFC 8188 `aes128gcm` content coding, in
//! one record.
//!
//! # Format
//!
//! ```text
//! salt (16) | rs (4, big-endian) | idlen (1) = 65 | keyid = sender's public point (65)
//! | AES-128-GCM( plaintext | 0x02 ) with its 16-byte tag
//! ```
//!
//! The sender's key pair is new for every message (ephemeral ECDH), the salt random. Sends use
//! ring's P-256 for the key agreement, about ten times faster than the pure-Rust `p256` here;
//! ring takes only keys it generated itself, so the known-answer path ([`encrypt_with`]) and
//! the user agent's side ([`decrypt`]) use `p256`, and the round-trip tests check one against
//! the other. Push
//! services need not accept bodies over 4096 bytes, so a plaintext over
//! [`MAX_PLAINTEXT_BYTES`] is refused rather than split into records a browser may not read.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Key, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use ring::agreement::{agree_ephemeral, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P256};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::Sha256;

/// Largest body a push service must accept (RFC 8030, section 7.2).
pub const MAX_BODY_BYTES: usize = 4096;
/// Bytes of the `aes128gcm` header with a P-256 key id: salt, record size, key id length, key.
pub const HEADER_BYTES: usize = SALT_BYTES + 4 + 1 + PUBLIC_KEY_BYTES;
/// Largest plaintext that fits one 4096-byte body: header, padding delimiter and tag removed.
pub const MAX_PLAINTEXT_BYTES: usize = MAX_BODY_BYTES - HEADER_BYTES - 1 - TAG_BYTES;
/// An uncompressed P-256 point: `0x04 | x | y`.
pub const PUBLIC_KEY_BYTES: usize = 65;
/// The subscription's authentication secret.
pub const AUTH_SECRET_BYTES: usize = 16;

const SALT_BYTES: usize = 16;
const TAG_BYTES: usize = 16;
/// The record size announced in the header; one record of at most this size follows.
const RECORD_SIZE: u32 = MAX_BODY_BYTES as u32;
/// Ends the plaintext of the last (here: only) record.
const LAST_RECORD_DELIMITER: u8 = 0x02;

/// Why a message could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EceError {
    #[error("the payload is {size} bytes; Web Push carries at most {MAX_PLAINTEXT_BYTES}")]
    PayloadTooLarge { size: usize },
    #[error("the public key is not an uncompressed P-256 point")]
    BadPublicKey,
    #[error("the private key is not a P-256 scalar")]
    BadPrivateKey,
    #[error("the body is not a single aes128gcm record: {0}")]
    Malformed(&'static str),
    #[error("the record does not decrypt with this key and secret")]
    Undecryptable,
    #[error("no randomness for a sender key or salt")]
    Random,
}

/// What a user agent gave the application server to encrypt for it (`keys.p256dh`,
/// `keys.auth` of its `PushSubscription`).
#[derive(Clone, PartialEq, Eq)]
pub struct UaKeys {
    pub public_key: [u8; PUBLIC_KEY_BYTES],
    pub auth_secret: [u8; AUTH_SECRET_BYTES],
}

impl std::fmt::Debug for UaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UaKeys").field("public_key", &hex::encode(self.public_key)).finish()
    }
}

/// Encrypts `plaintext` for the user agent holding `ua`, with a fresh sender key and salt.
pub fn encrypt(plaintext: &[u8], ua: &UaKeys) -> Result<Vec<u8>, EceError> {
    check_size(plaintext)?;
    let rng = SystemRandom::new();
    let sender = EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| EceError::Random)?;
    let sender_public: [u8; PUBLIC_KEY_BYTES] = sender
        .compute_public_key()
        .map_err(|_| EceError::Random)?
        .as_ref()
        .try_into()
        .map_err(|_| EceError::Random)?;
    let mut salt = [0; SALT_BYTES];
    rng.fill(&mut salt).map_err(|_| EceError::Random)?;
    let ua_public = UnparsedPublicKey::new(&ECDH_P256, &ua.public_key);
    agree_ephemeral(sender, &ua_public, |shared| seal(plaintext, ua, &sender_public, shared, &salt))
        .map_err(|_| EceError::BadPublicKey)?
}

/// Encrypts with a given sender key and salt. Only for known-answer tests: reusing a sender
/// key or salt across messages weakens the encryption.
pub fn encrypt_with(
    plaintext: &[u8],
    ua: &UaKeys,
    sender: &SecretKey,
    salt: &[u8; SALT_BYTES],
) -> Result<Vec<u8>, EceError> {
    check_size(plaintext)?;
    let ua_public =
        PublicKey::from_sec1_bytes(&ua.public_key).map_err(|_| EceError::BadPublicKey)?;
    let sender_public = encoded_point(&sender.public_key());
    let shared = p256::ecdh::diffie_hellman(sender.to_nonzero_scalar(), ua_public.as_affine());
    seal(plaintext, ua, &sender_public, shared.raw_secret_bytes(), salt)
}

fn check_size(plaintext: &[u8]) -> Result<(), EceError> {
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(EceError::PayloadTooLarge { size: plaintext.len() });
    }
    Ok(())
}

/// The record and its header, once the key agreement is done.
fn seal(
    plaintext: &[u8],
    ua: &UaKeys,
    sender_public: &[u8; PUBLIC_KEY_BYTES],
    ecdh_secret: &[u8],
    salt: &[u8; SALT_BYTES],
) -> Result<Vec<u8>, EceError> {
    let (key, nonce) =
        content_key(ecdh_secret, &ua.auth_secret, &ua.public_key, sender_public, salt);
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(LAST_RECORD_DELIMITER);
    let sealed = Aes128Gcm::new(&key)
        .encrypt(&nonce, record.as_slice())
        .map_err(|_| EceError::Malformed("plaintext too long for AES-GCM"))?;

    let mut body = Vec::with_capacity(HEADER_BYTES + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(PUBLIC_KEY_BYTES as u8);
    body.extend_from_slice(sender_public);
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// Decrypts a one-record body as the user agent whose private key is `ua_private` and whose
/// secret is `auth_secret`: what a browser does, and what the test push service does to check
/// what herald sent.
pub fn decrypt(
    body: &[u8],
    ua_private: &SecretKey,
    auth_secret: &[u8; AUTH_SECRET_BYTES],
) -> Result<Vec<u8>, EceError> {
    let (header, sealed) =
        body.split_at_checked(HEADER_BYTES).ok_or(EceError::Malformed("short"))?;
    let (salt, rest) = header.split_at(SALT_BYTES);
    let (record_size, rest) = rest.split_at(4);
    let (id_len, sender_public) = rest.split_at(1);
    if id_len != [PUBLIC_KEY_BYTES as u8] {
        return Err(EceError::Malformed("the key id is not a P-256 public key"));
    }
    let record_size =
        u32::from_be_bytes(record_size.try_into().map_err(|_| EceError::Malformed("rs"))?);
    if sealed.len() > record_size as usize || sealed.len() <= TAG_BYTES {
        return Err(EceError::Malformed("the record is empty or longer than rs"));
    }
    let sender = PublicKey::from_sec1_bytes(sender_public).map_err(|_| EceError::BadPublicKey)?;
    let ua_public = encoded_point(&ua_private.public_key());
    let shared = p256::ecdh::diffie_hellman(ua_private.to_nonzero_scalar(), sender.as_affine());
    let salt: &[u8; SALT_BYTES] = salt.try_into().map_err(|_| EceError::Malformed("salt"))?;
    let (key, nonce) = content_key(
        shared.raw_secret_bytes(),
        auth_secret,
        &ua_public,
        &encoded_point(&sender),
        salt,
    );
    let mut plain =
        Aes128Gcm::new(&key).decrypt(&nonce, sealed).map_err(|_| EceError::Undecryptable)?;
    // Padding is zeros after the delimiter; the delimiter must say "last record".
    while plain.last() == Some(&0) {
        plain.pop();
    }
    if plain.pop() != Some(LAST_RECORD_DELIMITER) {
        return Err(EceError::Malformed("not a single final record"));
    }
    Ok(plain)
}

/// The uncompressed encoding of a public key.
pub(crate) fn encoded_point(key: &PublicKey) -> [u8; PUBLIC_KEY_BYTES] {
    let point = key.to_encoded_point(false);
    let mut out = [0; PUBLIC_KEY_BYTES];
    out.copy_from_slice(point.as_bytes());
    out
}

/// RFC 8291 section 3.4 then RFC 8188 section 2.2: the input keying material from the ECDH
/// secret and the auth secret, then the content key and nonce from it and the salt.
fn content_key(
    ecdh_secret: &[u8],
    auth_secret: &[u8; AUTH_SECRET_BYTES],
    ua_public: &[u8; PUBLIC_KEY_BYTES],
    sender_public: &[u8; PUBLIC_KEY_BYTES],
    salt: &[u8; SALT_BYTES],
) -> (Key<Aes128Gcm>, Nonce<aes_gcm::aead::consts::U12>) {
    let mut key_info = Vec::with_capacity(14 + 2 * PUBLIC_KEY_BYTES);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(sender_public);
    let mut ikm = [0; 32];
    expand(&Hkdf::<Sha256>::new(Some(auth_secret), ecdh_secret), &key_info, &mut ikm);

    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut key = [0; 16];
    expand(&prk, b"Content-Encoding: aes128gcm\0", &mut key);
    let mut nonce = [0; 12];
    expand(&prk, b"Content-Encoding: nonce\0", &mut nonce);
    (Key::<Aes128Gcm>::from(key), Nonce::from(nonce))
}

/// HKDF-Expand to at most 32 bytes, which SHA-256 always allows.
fn expand(prk: &Hkdf<Sha256>, info: &[u8], out: &mut [u8]) {
    // Fails only for outputs longer than 255 hash lengths; these are 12 to 32 bytes.
    let _ = prk.expand(info, out);
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use rand::RngCore;

    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    fn rfc_ua() -> (SecretKey, UaKeys) {
        let private =
            SecretKey::from_slice(&b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")).unwrap();
        let ua = UaKeys {
            public_key: b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")
                .try_into()
                .unwrap(),
            auth_secret: b64("BTBZMqHH6r4Tts7J_aSIgg").try_into().unwrap(),
        };
        (private, ua)
    }

    /// RFC 8291 Appendix A: fixed keys and salt give exactly the published body.
    #[test]
    fn rfc8291_appendix_a_vector() {
        let (ua_private, ua) = rfc_ua();
        assert_eq!(encoded_point(&ua_private.public_key()), ua.public_key);
        let sender =
            SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        assert_eq!(
            encoded_point(&sender.public_key()).to_vec(),
            b64("BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8")
        );
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let plaintext = b"When I grow up, I want to be a watermelon";
        let body = encrypt_with(plaintext, &ua, &sender, &salt).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(&body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml\
             mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT\
             pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
        assert_eq!(decrypt(&body, &ua_private, &ua.auth_secret).unwrap(), plaintext);
    }

    #[test]
    fn round_trip_with_fresh_keys_and_salt() {
        let ua_private = SecretKey::random(&mut rand::rngs::OsRng);
        let mut auth_secret = [0; 16];
        rand::rngs::OsRng.fill_bytes(&mut auth_secret);
        let ua = UaKeys { public_key: encoded_point(&ua_private.public_key()), auth_secret };
        for plaintext in [&b""[..], b"{\"title\":\"Hi\"}", &[7u8; MAX_PLAINTEXT_BYTES]] {
            let body = encrypt(plaintext, &ua).unwrap();
            assert!(body.len() <= MAX_BODY_BYTES);
            assert_eq!(decrypt(&body, &ua_private, &auth_secret).unwrap(), plaintext);
        }
        // A new sender key and salt each time: the same message never encrypts the same way.
        assert_ne!(encrypt(b"x", &ua).unwrap(), encrypt(b"x", &ua).unwrap());
        // Another subscriber's secret does not open it.
        let body = encrypt(b"x", &ua).unwrap();
        assert_eq!(decrypt(&body, &ua_private, &[0; 16]), Err(EceError::Undecryptable));
    }

    #[test]
    fn a_payload_over_one_record_is_refused_not_truncated() {
        let (_, ua) = rfc_ua();
        let body = encrypt(&[b'a'; MAX_PLAINTEXT_BYTES], &ua).unwrap();
        assert_eq!(body.len(), MAX_BODY_BYTES);
        assert_eq!(MAX_PLAINTEXT_BYTES, 3993);
        assert_eq!(
            encrypt(&[b'a'; MAX_PLAINTEXT_BYTES + 1], &ua),
            Err(EceError::PayloadTooLarge { size: 3994 })
        );
    }

    #[test]
    fn bad_keys_and_bodies() {
        let (ua_private, mut ua) = rfc_ua();
        ua.public_key[10] ^= 1;
        assert_eq!(encrypt(b"x", &ua), Err(EceError::BadPublicKey));
        assert!(matches!(
            decrypt(&[0; 20], &ua_private, &ua.auth_secret),
            Err(EceError::Malformed(_))
        ));
    }
}
