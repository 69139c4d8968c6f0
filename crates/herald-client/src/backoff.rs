//! Exponential backoff with jitter, so that clients dropped together do not come back together.

use std::time::Duration;

use rand::Rng;

use crate::options::Reconnect;

#[derive(Debug)]
pub(crate) struct Backoff {
    policy: Reconnect,
    attempts: u32,
}

impl Backoff {
    pub(crate) fn new(policy: Reconnect) -> Self {
        Self { policy, attempts: 0 }
    }

    /// The delay before the next attempt, or `None` when the attempts are used up.
    /// "Equal jitter": half the exponential delay, plus a random part of the other half.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        if !self.policy.enabled || self.policy.max_attempts.is_some_and(|max| self.attempts >= max)
        {
            return None;
        }
        let factor = 2u32.saturating_pow(self.attempts.min(30));
        self.attempts += 1;
        let base = self.policy.initial_delay.saturating_mul(factor).min(self.policy.max_delay);
        let half = base / 2;
        let jitter = rand::thread_rng().gen_range(0.0..=1.0);
        Some(half + half.mul_f64(jitter))
    }

    /// A connection succeeded: start again from the initial delay.
    pub(crate) fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds_and_stop() {
        let policy = Reconnect {
            enabled: true,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1_000),
            max_attempts: Some(6),
        };
        let mut backoff = Backoff::new(policy);
        let bases = [100, 200, 400, 800, 1_000, 1_000];
        for base in bases {
            let delay = backoff.next_delay().unwrap();
            let base = Duration::from_millis(base);
            assert!(delay >= base / 2 && delay <= base, "{delay:?} for {base:?}");
        }
        assert_eq!(backoff.next_delay(), None);
        backoff.reset();
        assert!(backoff.next_delay().unwrap() <= Duration::from_millis(100));
    }

    #[test]
    fn disabled_never_retries() {
        let mut backoff = Backoff::new(Reconnect { enabled: false, ..Reconnect::default() });
        assert_eq!(backoff.next_delay(), None);
    }
}
