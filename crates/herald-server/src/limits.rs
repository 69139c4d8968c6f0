//! Rate limits per app: a request rate over the whole signed API, and for broadcast pushes a
//! minimum interval and a daily quota. Refusals name the limit, its value and when to retry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use herald_core::{App, AppId};
use herald_store::DynStore;

use crate::error::ApiErrorKind;

/// Token buckets of the request rate, one per app, refilled continuously.
#[derive(Default)]
pub struct RequestLimiter {
    buckets: Mutex<HashMap<AppId, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RequestLimiter {
    /// Takes one request from the app's budget of `requests_per_second` (bursts up to one
    /// second's worth).
    pub fn admit(&self, app: &App) -> Result<(), ApiErrorKind> {
        let rate = f64::from(app.limits.requests_per_second.max(1));
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(app.id).or_insert(Bucket { tokens: rate, at: now });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - bucket.tokens) / rate).ceil().max(1.0);
        Err(ApiErrorKind::RateLimited {
            limit: "requests_per_second",
            value: u64::from(app.limits.requests_per_second),
            retry_after_secs: wait as u64,
        })
    }
}

/// Serialises broadcast pushes of an app so the interval and quota checks cannot race.
#[derive(Default)]
pub struct BroadcastGate {
    locks: Mutex<HashMap<AppId, Arc<tokio::sync::Mutex<()>>>>,
}

impl BroadcastGate {
    /// The app's broadcast lock; hold it from the check until the push is stored.
    pub fn lock_for(&self, app: AppId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).entry(app).or_default().clone()
    }

    /// Refuses a broadcast that comes too soon after the last one or past the daily quota.
    pub async fn check(
        &self,
        store: &DynStore,
        app: &App,
        now: DateTime<Utc>,
    ) -> Result<(), ApiErrorKind> {
        let day_start = now.date_naive().and_time(NaiveTime::MIN).and_utc();
        let usage = store.broadcast_usage(app.id, day_start).await?;
        let quota = app.limits.broadcast_daily_quota;
        if usage.count >= u64::from(quota) {
            let tomorrow = day_start + Duration::days(1);
            return Err(ApiErrorKind::RateLimited {
                limit: "broadcast_daily_quota",
                value: u64::from(quota),
                retry_after_secs: secs_until(now, tomorrow),
            });
        }
        let interval = Duration::seconds(i64::from(app.limits.broadcast_min_interval_secs));
        if let Some(latest) = usage.latest {
            if now < latest + interval {
                return Err(ApiErrorKind::RateLimited {
                    limit: "broadcast_min_interval_secs",
                    value: u64::from(app.limits.broadcast_min_interval_secs),
                    retry_after_secs: secs_until(now, latest + interval),
                });
            }
        }
        Ok(())
    }
}

/// Whole seconds from `now` until `then`, at least 1.
fn secs_until(now: DateTime<Utc>, then: DateTime<Utc>) -> u64 {
    let millis = (then - now).num_milliseconds().max(0);
    u64::try_from((millis + 999) / 1000).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::Limits;

    fn app(rate: u32) -> App {
        let now = Utc::now();
        App {
            id: 1,
            name: "a".into(),
            key: "k".into(),
            secret: "s".into(),
            previous_secret: None,
            previous_secret_expires_at: None,
            limits: Limits { requests_per_second: rate, ..Limits::default() },
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn bucket_allows_one_second_of_burst_then_refuses() {
        let limiter = RequestLimiter::default();
        let app = app(3);
        for _ in 0..3 {
            limiter.admit(&app).unwrap();
        }
        let err = limiter.admit(&app).unwrap_err();
        assert!(matches!(
            err,
            ApiErrorKind::RateLimited {
                limit: "requests_per_second",
                value: 3,
                retry_after_secs: 1
            }
        ));
    }

    #[test]
    fn retry_after_rounds_up() {
        let now = Utc::now();
        assert_eq!(secs_until(now, now + Duration::milliseconds(1_200)), 2);
        assert_eq!(secs_until(now, now - Duration::seconds(5)), 1);
    }
}
