//! VAPID (RFC 8292): the `Authorization: vapid t=<jwt>, k=<public key>` header. The JWT is
//! ES256 over `{aud, exp, sub}` with `aud` the push service's origin, so one token serves
//! every subscription at that origin; it is cached per origin until near its expiry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use serde::Serialize;

use crate::clock::unix_secs;
use crate::jwt::{b64, Es256Key, KeyError};

#[derive(Serialize)]
struct Header {
    typ: &'static str,
    alg: &'static str,
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    exp: u64,
    sub: &'a str,
}

#[derive(Clone)]
struct Minted {
    authorization: HeaderValue,
    expires: SystemTime,
}

/// The VAPID tokens of one app, one per push-service origin.
pub(crate) struct VapidTokens {
    key: Es256Key,
    /// base64url of the public point: the header's `k`.
    public_key: String,
    subject: String,
    lifetime: Duration,
    refresh_margin: Duration,
    /// Origins kept at most; beyond that the cache starts over. Subscriptions name their
    /// origin, so this bounds what a flood of odd endpoints can make herald hold.
    max_origins: usize,
    by_origin: RwLock<HashMap<String, Minted>>,
    pub(crate) minted: AtomicU64,
}

impl VapidTokens {
    pub(crate) fn new(
        key: Es256Key,
        subject: String,
        lifetime: Duration,
        refresh_margin: Duration,
        max_origins: usize,
    ) -> Self {
        Self {
            public_key: b64(key.public_key()),
            key,
            subject,
            lifetime,
            refresh_margin,
            max_origins,
            by_origin: RwLock::new(HashMap::new()),
            minted: AtomicU64::new(0),
        }
    }

    /// The `authorization` header for `origin` at `now`: the cached one while it has more than
    /// the refresh margin left, else a new one.
    pub(crate) fn authorization(
        &self,
        origin: &str,
        now: SystemTime,
    ) -> Result<HeaderValue, KeyError> {
        let fresh = |m: &Minted| m.expires > now + self.refresh_margin;
        if let Some(m) = self.by_origin.read().unwrap_or_else(|e| e.into_inner()).get(origin) {
            if fresh(m) {
                return Ok(m.authorization.clone());
            }
        }
        let mut by_origin = self.by_origin.write().unwrap_or_else(|e| e.into_inner());
        // Another request may have minted while this one waited for the lock.
        if let Some(m) = by_origin.get(origin).filter(|m| fresh(m)) {
            return Ok(m.authorization.clone());
        }
        let expires = now + self.lifetime;
        let jwt = self.key.sign(
            &Header { typ: "JWT", alg: "ES256" },
            &Claims { aud: origin, exp: unix_secs(expires), sub: &self.subject },
        )?;
        let mut authorization =
            HeaderValue::from_str(&format!("vapid t={jwt}, k={}", self.public_key))
                .map_err(|_| KeyError::Sign)?;
        authorization.set_sensitive(true);
        if by_origin.len() >= self.max_origins && !by_origin.contains_key(origin) {
            by_origin.clear();
        }
        by_origin
            .insert(origin.to_owned(), Minted { authorization: authorization.clone(), expires });
        self.minted.fetch_add(1, Ordering::Relaxed);
        Ok(authorization)
    }

    /// Drops the token a push service refused, unless a newer one already replaced it.
    pub(crate) fn invalidate(&self, origin: &str, seen: &HeaderValue) {
        let mut by_origin = self.by_origin.write().unwrap_or_else(|e| e.into_inner());
        if by_origin.get(origin).is_some_and(|m| m.authorization == seen) {
            by_origin.remove(origin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webpush::WebPushCredentials;

    fn tokens() -> VapidTokens {
        let c = WebPushCredentials::generate("mailto:ops@example.com").unwrap();
        VapidTokens::new(
            c.signing_key().unwrap(),
            c.subject,
            Duration::from_secs(12 * 3600),
            Duration::from_secs(3600),
            2,
        )
    }

    #[test]
    fn one_token_per_origin_until_near_expiry() {
        let t = tokens();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let a = t.authorization("https://a.example", t0).unwrap();
        assert!(a.to_str().unwrap().starts_with("vapid t="));
        assert!(a.to_str().unwrap().contains(&format!(", k={}", t.public_key)));
        assert_eq!(
            t.authorization("https://a.example", t0 + Duration::from_secs(10 * 3600)).unwrap(),
            a
        );
        let b = t.authorization("https://b.example", t0).unwrap();
        assert_ne!(a, b);
        // Within the last hour of its 12, a token is replaced.
        let later =
            t.authorization("https://a.example", t0 + Duration::from_secs(11 * 3600 + 1)).unwrap();
        assert_ne!(later, a);
        assert_eq!(t.minted.load(Ordering::Relaxed), 3);
        t.invalidate("https://b.example", &a);
        assert_eq!(t.authorization("https://b.example", t0).unwrap(), b);
        t.invalidate("https://b.example", &b);
        assert_ne!(t.authorization("https://b.example", t0).unwrap(), b);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let t = tokens();
        let now = SystemTime::now();
        for n in 0..10 {
            t.authorization(&format!("https://{n}.example"), now).unwrap();
        }
        assert!(t.by_origin.read().unwrap().len() <= 2);
    }
}
