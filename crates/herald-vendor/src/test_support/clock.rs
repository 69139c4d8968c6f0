//! A clock that moves only when told to, so token lifetimes and back-off are tested without
//! waiting.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, Sleep};

/// A manual [`Clock`]. `sleep` returns at once, records the duration it was asked for and
/// moves the clock forward by it, as if the time had passed.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
    sleeps: Mutex<Vec<Duration>>,
}

impl ManualClock {
    /// A clock starting at the current real time (JWT verifiers compare against real dates).
    pub fn new() -> Arc<Self> {
        Self::starting_at(SystemTime::now())
    }

    pub fn starting_at(start: SystemTime) -> Arc<Self> {
        Arc::new(Self { now: Mutex::new(start), sleeps: Mutex::new(Vec::new()) })
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// Every duration slept so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        self.sleeps.lock().unwrap_or_else(|e| e.into_inner()).push(duration);
        self.advance(duration);
        Box::pin(tokio::task::yield_now())
    }
}
