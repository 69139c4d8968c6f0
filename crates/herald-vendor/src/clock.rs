//! Time as the vendor channels see it: a wall clock for token lifetimes and `apns-expiration`,
//! and a sleep for back-off. Both sit behind one trait so that tests move time instead of waiting.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A future returned by [`Clock::sleep`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The source of "now" and of waiting.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current wall-clock time; JWT `iat` claims and `apns-expiration` are derived from it.
    fn now(&self) -> SystemTime;
    /// Waits `duration`; used between retries.
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// The real clock: `SystemTime::now` and `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Seconds since the Unix epoch; times before it (a badly set clock) count as 0.
pub fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How long ago `then` was; zero when `then` is in the future (the clock went back).
pub(crate) fn age(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or(Duration::ZERO)
}
