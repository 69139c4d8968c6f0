//! Failed sign-ins slow down whoever makes them: after three failures from one address, the
//! next attempt waits a second, and each further failure doubles the wait, up to five minutes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed from one address before attempts are spaced out.
const FREE_FAILURES: u32 = 3;
/// Longest wait between two attempts.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Addresses kept at most; the oldest failures are forgotten beyond that.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Default)]
pub struct SignInThrottle {
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    fn wait(self) -> Duration {
        let Some(over) = self.count.checked_sub(FREE_FAILURES) else { return Duration::ZERO };
        let wait = Duration::from_secs(1u64 << over.min(16));
        wait.min(MAX_WAIT)
    }
}

impl SignInThrottle {
    /// How long `addr` must still wait before its next attempt is looked at.
    pub fn wait(&self, addr: IpAddr, now: Instant) -> Duration {
        let failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failures
            .get(&addr)
            .map(|f| (f.last + f.wait()).saturating_duration_since(now))
            .unwrap_or_default()
    }

    pub fn failed(&self, addr: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() >= MAX_ADDRESSES {
            failures.retain(|_, f| now.saturating_duration_since(f.last) < MAX_WAIT);
        }
        let entry = failures.entry(addr).or_insert(Failures { count: 0, last: now });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    pub fn succeeded(&self, addr: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn three_failures_are_free_then_waits_double() {
        let throttle = SignInThrottle::default();
        let now = Instant::now();
        for _ in 0..2 {
            throttle.failed(ADDR, now);
            assert_eq!(throttle.wait(ADDR, now), Duration::ZERO);
        }
        throttle.failed(ADDR, now);
        assert_eq!(throttle.wait(ADDR, now), Duration::from_secs(1));
        throttle.failed(ADDR, now);
        assert_eq!(throttle.wait(ADDR, now), Duration::from_secs(2));
        throttle.failed(ADDR, now);
        assert_eq!(throttle.wait(ADDR, now), Duration::from_secs(4));
        assert_eq!(throttle.wait(ADDR, now + Duration::from_secs(4)), Duration::ZERO);
    }

    #[test]
    fn success_forgets_failures() {
        let throttle = SignInThrottle::default();
        let now = Instant::now();
        for _ in 0..6 {
            throttle.failed(ADDR, now);
        }
        throttle.succeeded(ADDR);
        assert_eq!(throttle.wait(ADDR, now), Duration::ZERO);
    }

    #[test]
    fn the_wait_is_capped() {
        let throttle = SignInThrottle::default();
        let now = Instant::now();
        for _ in 0..40 {
            throttle.failed(ADDR, now);
        }
        assert_eq!(throttle.wait(ADDR, now), MAX_WAIT);
    }
}
