//! Rate limits per app: a request rate over the whole signed API, and for broadcast pushes a
//! minimum interval and a daily quota. Refusals name the limit, its value and when to retry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use herald_core::{App, AppId};
use herald_store::{BroadcastQuota, QuotaBreach};

use crate::ServiceError;

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
    pub fn admit(&self, app: &App) -> Result<(), ServiceError> {
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
        Err(ServiceError::RateLimited {
            limit: "requests_per_second",
            value: u64::from(app.limits.requests_per_second),
            retry_after_secs: wait as u64,
        })
    }
}

/// The names a rule's limits are reported by.
#[derive(Debug, Clone, Copy)]
pub struct RuleNames {
    pub min_interval: &'static str,
    pub per_hour: &'static str,
    pub per_day: &'static str,
}

/// Broadcast rate limits of one API (native or a compat layer).
#[derive(Debug, Clone, Copy)]
pub struct BroadcastRule {
    pub min_interval_secs: u32,
    pub per_hour: Option<u32>,
    pub per_day: u32,
    pub names: RuleNames,
}

impl BroadcastRule {
    /// The native API's rule, from the app's limits.
    pub fn native(app: &App) -> Self {
        Self {
            min_interval_secs: app.limits.broadcast_min_interval_secs,
            per_hour: None,
            per_day: app.limits.broadcast_daily_quota,
            names: RuleNames {
                min_interval: "broadcast_min_interval_secs",
                per_hour: "broadcast_hourly_quota",
                per_day: "broadcast_daily_quota",
            },
        }
    }
}

impl BroadcastRule {
    /// The limits the store checks when it stores the broadcast: counted where pushes are
    /// written, so concurrent requests on any node cannot both pass.
    pub fn quota(&self) -> BroadcastQuota {
        BroadcastQuota {
            per_day: self.per_day,
            per_hour: self.per_hour,
            min_interval_secs: self.min_interval_secs,
        }
    }

    /// The refusal of a broadcast the store found over a limit at `now`: which limit, its
    /// value and when a retry can pass.
    pub fn refusal(&self, breach: QuotaBreach, now: DateTime<Utc>) -> ServiceError {
        let (limit, value, free_at) = match breach {
            QuotaBreach::PerDay { day_start } => {
                (self.names.per_day, self.per_day, day_start + Duration::days(1))
            }
            // The window frees a slot when its oldest push turns an hour old; the newest gives
            // a safe upper bound.
            QuotaBreach::PerHour { latest } => (
                self.names.per_hour,
                self.per_hour.unwrap_or(0),
                latest.unwrap_or(now) + Duration::hours(1),
            ),
            QuotaBreach::MinInterval { latest } => (
                self.names.min_interval,
                self.min_interval_secs,
                latest + Duration::seconds(i64::from(self.min_interval_secs)),
            ),
        };
        ServiceError::RateLimited {
            limit,
            value: u64::from(value),
            retry_after_secs: secs_until(now, free_at),
        }
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
            ServiceError::RateLimited {
                limit: "requests_per_second",
                value: 3,
                retry_after_secs: 1
            }
        ));
    }

    #[test]
    fn refusals_name_the_limit_and_when_it_frees() {
        let now = Utc::now();
        let rule = BroadcastRule::native(&app(1));
        let day_start = BroadcastQuota::day_start(now);
        let day = rule.refusal(QuotaBreach::PerDay { day_start }, now);
        let ServiceError::RateLimited { limit, retry_after_secs, .. } = day else {
            panic!("{day:?}")
        };
        assert_eq!(limit, "broadcast_daily_quota");
        assert_eq!(retry_after_secs, secs_until(now, day_start + Duration::days(1)));
        let latest = now - Duration::seconds(10);
        let interval = rule.refusal(QuotaBreach::MinInterval { latest }, now);
        let ServiceError::RateLimited { limit, value, retry_after_secs } = interval else {
            panic!("{interval:?}")
        };
        assert_eq!(limit, "broadcast_min_interval_secs");
        assert_eq!(value, u64::from(rule.min_interval_secs));
        assert_eq!(retry_after_secs, secs_until(now, latest + Duration::seconds(value as i64)));
    }

    #[test]
    fn retry_after_rounds_up() {
        let now = Utc::now();
        assert_eq!(secs_until(now, now + Duration::milliseconds(1_200)), 2);
        assert_eq!(secs_until(now, now - Duration::seconds(5)), 1);
    }
}
