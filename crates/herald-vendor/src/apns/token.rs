//! The APNs provider token: a JWT (ES256, `{alg, kid}` / `{iss, iat}`) signed with the app's
//! `.p8` key, reused for every request until it is due for replacement.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use serde::Serialize;

use crate::clock::{age, unix_secs};
use crate::jwt::{Es256Key, KeyError};

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: u64,
}

#[derive(Clone)]
struct Minted {
    authorization: HeaderValue,
    issued: SystemTime,
}

/// A cache of one provider token.
pub(crate) struct ProviderToken {
    key: Es256Key,
    key_id: String,
    team_id: String,
    refresh_after: Duration,
    current: RwLock<Option<Minted>>,
    pub(crate) minted: AtomicU64,
}

impl ProviderToken {
    pub(crate) fn new(
        key: Es256Key,
        key_id: String,
        team_id: String,
        refresh_after: Duration,
    ) -> Self {
        Self {
            key,
            key_id,
            team_id,
            refresh_after,
            current: RwLock::new(None),
            minted: AtomicU64::new(0),
        }
    }

    /// The `authorization` header value to use at `now`, minting a token when there is none or
    /// the one there is has reached its refresh age.
    pub(crate) fn authorization(&self, now: SystemTime) -> Result<HeaderValue, KeyError> {
        let fresh = |m: &Minted| age(now, m.issued) < self.refresh_after;
        if let Some(m) = self.current.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if fresh(m) {
                return Ok(m.authorization.clone());
            }
        }
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        // Another request may have minted while this one waited for the lock.
        if let Some(m) = current.as_ref().filter(|m| fresh(m)) {
            return Ok(m.authorization.clone());
        }
        let jwt = self.key.sign(
            &Header { alg: "ES256", kid: &self.key_id },
            &Claims { iss: &self.team_id, iat: unix_secs(now) },
        )?;
        let mut authorization =
            HeaderValue::from_str(&format!("bearer {jwt}")).map_err(|_| KeyError::Sign)?;
        authorization.set_sensitive(true);
        *current = Some(Minted { authorization: authorization.clone(), issued: now });
        self.minted.fetch_add(1, Ordering::Relaxed);
        Ok(authorization)
    }

    /// Drops the token APNs called expired, unless a newer one already replaced it: when many
    /// requests fail together only one new token is minted (Apple limits how often).
    pub(crate) fn invalidate(&self, seen: &HeaderValue) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|m| m.authorization == seen) {
            *current = None;
        }
    }
}
