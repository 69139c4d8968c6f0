//! Random credentials: app keys and secrets, the generated admin token.

use rand::distributions::Alphanumeric;
use rand::Rng;

/// A random string of `len` characters from `[A-Za-z0-9]`, from the OS-seeded CSPRNG.
pub fn random_token(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// A new app key: public, short enough to read in logs.
pub fn app_key() -> String {
    format!("hk_{}", random_token(20))
}

/// A new app secret: 256 bits of entropy and more.
pub fn app_secret() -> String {
    format!("hs_{}", random_token(43))
}
