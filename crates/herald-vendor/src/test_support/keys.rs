//! Generated vendor keys and the credentials built from them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use rsa::pkcs8::{EncodePrivateKey, LineEnding};

use crate::apns::{ApnsCredentials, ApnsEnvironment};
use crate::fcm::FcmCredentials;
use crate::jwt::{Es256Key, Rs256Key};

/// An APNs signing key (`.p8`) with its ids; the public key is what the test server verifies.
#[derive(Debug, Clone)]
pub struct TestApnsKey {
    pub key_id: String,
    pub team_id: String,
    pub key_p8: String,
    /// Uncompressed P-256 point.
    pub public_key: Vec<u8>,
}

impl TestApnsKey {
    /// A fresh P-256 key; `key_id` and `team_id` must be 10 upper-case letters or digits.
    pub fn generate(key_id: &str, team_id: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        let key_p8 = pair.serialize_pem();
        let public_key = Es256Key::from_pem(&key_p8).expect("own key").public_key().to_vec();
        Self { key_id: key_id.into(), team_id: team_id.into(), key_p8, public_key }
    }

    pub fn credentials(&self, topic: &str, environment: ApnsEnvironment) -> ApnsCredentials {
        ApnsCredentials {
            key_p8: self.key_p8.clone(),
            key_id: self.key_id.clone(),
            team_id: self.team_id.clone(),
            topic: topic.into(),
            environment,
        }
    }
}

/// A Google service account with an RSA key; the public key is what the test server verifies.
#[derive(Debug, Clone)]
pub struct TestServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub private_key_id: String,
    pub private_key_pem: String,
    /// PKCS#1 `RSAPublicKey` DER.
    pub public_key: Vec<u8>,
}

/// RSA key generation takes seconds in debug builds, so a process makes two keys (in
/// parallel) and hands them out in turn: consecutive accounts never share a key.
fn rsa_keys() -> &'static [String; 2] {
    static KEYS: OnceLock<[String; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let make = || {
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key");
            key.to_pkcs8_pem(LineEnding::LF).expect("PEM").to_string()
        };
        let other = std::thread::spawn(make);
        let first = make();
        [first, other.join().expect("RSA key thread")]
    })
}

impl TestServiceAccount {
    pub fn generate(project_id: &str, client_email: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let index = NEXT.fetch_add(1, Ordering::Relaxed);
        let private_key_pem = rsa_keys()[index % 2].clone();
        let public_key =
            Rs256Key::from_pem(&private_key_pem).expect("own key").public_key().to_vec();
        Self {
            project_id: project_id.into(),
            client_email: client_email.into(),
            private_key_id: format!("test-key-{index}"),
            private_key_pem,
            public_key,
        }
    }

    /// The service-account file as Google issues it, with `token_uri` pointing where told.
    pub fn json(&self, token_uri: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.private_key_pem,
            "client_email": self.client_email,
            "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        })
        .to_string()
    }

    pub fn credentials(&self, token_uri: &str) -> FcmCredentials {
        FcmCredentials { service_account_json: self.json(token_uri), project_id: None }
    }
}
