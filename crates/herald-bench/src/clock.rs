//! Wall-clock time in microseconds. The orchestrator stamps a push just before sending it and a
//! worker stamps its arrival; both are processes of one machine, so CLOCK_REALTIME is shared and
//! the difference is the delivery latency. `Instant` would not do: it is not comparable across
//! processes.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
