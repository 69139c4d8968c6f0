//! A connection's frame budget: a token bucket refilled at `client_frame_rate` frames a second
//! up to `client_frame_burst`. A client that floods acks or pings would otherwise take the
//! gateway's CPU (and the ack writer's store time) from everyone else.

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct FrameBudget {
    /// Frames the client may still send now; `f32` keeps the budget small per connection.
    tokens: f32,
    refilled: Instant,
}

impl FrameBudget {
    /// A full budget of `burst` frames.
    pub(crate) fn new(burst: u32) -> Self {
        Self { tokens: burst as f32, refilled: Instant::now() }
    }

    /// Spends one frame at `now`; `false` when the budget is used up.
    pub(crate) fn spend(&mut self, rate: f64, burst: u32, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.refilled).as_secs_f64() * rate;
        self.tokens = (f64::from(self.tokens) + earned).min(f64::from(burst)) as f32;
        self.refilled = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut budget = FrameBudget::new(3);
        budget.refilled = start;
        assert!((0..3).all(|_| budget.spend(2.0, 3, start)));
        assert!(!budget.spend(2.0, 3, start), "the burst is spent");
        // Two frames a second: one more after half a second, not two.
        let later = start + Duration::from_millis(500);
        assert!(budget.spend(2.0, 3, later));
        assert!(!budget.spend(2.0, 3, later));
        // A long pause refills to the burst, not beyond.
        let much_later = later + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| budget.spend(2.0, 3, much_later)).count(), 3);
    }
}
