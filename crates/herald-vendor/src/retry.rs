//! Retries with exponential back-off and jitter, `Retry-After`, and the circuit breaker that
//! stops an app's sends from queueing behind a vendor endpoint that is down.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::clock::{unix_secs, Clock};
use crate::outcome::Outcome;

/// How sends are retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Retries after the first attempt for rate limits, 5xx answers, timeouts and broken
    /// connections. 0 disables retrying.
    pub max_retries: u32,
    /// Back-off before the first retry, in milliseconds; it doubles on every further retry.
    pub base_delay_ms: u64,
    /// Longest back-off between two attempts, in milliseconds.
    pub max_delay_ms: u64,
    /// A `Retry-After` longer than this (seconds) is not waited for: the send fails as retryable
    /// so that one rate-limited app does not hold its workers for minutes.
    pub max_retry_after_secs: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self { max_retries: 3, base_delay_ms: 250, max_delay_ms: 10_000, max_retry_after_secs: 60 }
    }
}

impl RetrySettings {
    /// The wait before retry number `retry` (0-based): "equal jitter", half of the doubled delay
    /// plus a random share of the other half, so that waits grow yet never synchronise.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.base_delay_ms.saturating_mul(1u64 << retry.min(30));
        let capped = exp.min(self.max_delay_ms);
        let half = capped / 2;
        let jitter =
            if capped > half { rand::thread_rng().gen_range(0..=capped - half) } else { 0 };
        Duration::from_millis(half + jitter)
    }
}

/// How notifications that still failed retryably after [`RetrySettings::max_retries`] (the
/// endpoint down, the breaker open, rate limited) are sent again, until the push's offline TTL
/// ends or it is cancelled: a vendor outage of minutes delays notifications, it does not drop
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedeliverySettings {
    /// Wait before the first new round, in milliseconds; it doubles on every further round.
    pub first_delay_ms: u64,
    /// Longest wait between two rounds, in milliseconds.
    pub max_delay_ms: u64,
}

impl Default for RedeliverySettings {
    fn default() -> Self {
        Self { first_delay_ms: 5_000, max_delay_ms: 300_000 }
    }
}

impl RedeliverySettings {
    /// The wait before round `round` (0-based) of sending again.
    pub fn delay(&self, round: u32) -> Duration {
        let doubled = self.first_delay_ms.saturating_mul(1u64 << round.min(30));
        Duration::from_millis(doubled.min(self.max_delay_ms))
    }
}

/// Parses a `Retry-After` header: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = u64::try_from(date.timestamp()).ok()?;
    Some(Duration::from_secs(at.saturating_sub(unix_secs(now))))
}

/// What one attempt asks the retry loop to do next; each vendor's error type maps itself to a
/// step in a single match.
#[derive(Debug)]
pub(crate) enum Step {
    /// Final: report this outcome.
    Done(Outcome),
    /// Worth another attempt after the back-off, or after exactly `after` when the vendor said.
    Retry { reason: String, after: Option<Duration> },
    /// The vendor refused the access token as expired: try once more with a new one.
    Reauthorize { reason: String },
}

/// Runs `attempt` until it is done, retrying as `settings` allow. An attempt that was refused
/// for an expired token has already dropped that token, so the next attempt mints a new one;
/// that happens once per send.
pub(crate) async fn with_retries<F, Fut>(
    settings: &RetrySettings,
    clock: &dyn Clock,
    retries: &AtomicU64,
    mut attempt: F,
) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Step>,
{
    let mut retry = 0;
    let mut reauthorized = false;
    loop {
        match attempt().await {
            Step::Done(outcome) => return outcome,
            Step::Reauthorize { reason } => {
                if reauthorized {
                    return Outcome::failed(reason, false);
                }
                reauthorized = true;
            }
            Step::Retry { reason, after } => {
                if retry >= settings.max_retries {
                    return Outcome::failed(reason, true);
                }
                let wait = match after {
                    Some(after) if after.as_secs() > settings.max_retry_after_secs => {
                        return Outcome::failed(reason, true);
                    }
                    Some(after) => after,
                    None => settings.backoff(retry),
                };
                retry += 1;
                retries.fetch_add(1, Ordering::Relaxed);
                clock.sleep(wait).await;
            }
        }
    }
}

/// When to stop sending to an endpoint that keeps failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Consecutive failed attempts (timeouts, broken connections, 5xx) that open the breaker.
    /// 0 disables it.
    pub failures: u32,
    /// Seconds the breaker stays open: sends fail at once as retryable, without a request.
    /// Afterwards it is half-open: one request at a time probes the endpoint (the others still
    /// fail at once); a probe the endpoint answers closes it, a failed probe opens it again.
    pub cooldown_secs: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self { failures: 64, cooldown_secs: 10 }
    }
}

/// A vendor's error as the breaker and the retry loop see it.
pub(crate) trait VendorFailure: Sized {
    /// The error of an attempt the open breaker refused.
    fn circuit_open() -> Self;
    /// Whether the error says the endpoint is unwell (counts towards the breaker).
    fn is_outage(&self) -> bool;
    /// What the retry loop does next.
    fn step(self) -> Step;
}

/// A per-endpoint circuit breaker. Lock-free: a failure counter, the time it opened, and
/// whether a probe is out.
///
/// Closed: requests flow, consecutive outages are counted. Open (that count reached
/// [`BreakerSettings::failures`]): requests are refused until the cooldown ends. Half-open
/// (cooldown over): one probe at a time; its answer closes the breaker, its failure opens it
/// for another cooldown. So an endpoint that is down for minutes gets one request per cooldown,
/// not the whole send queue.
#[derive(Debug)]
pub(crate) struct Breaker {
    settings: BreakerSettings,
    consecutive: AtomicU32,
    /// Unix milliseconds until which the breaker is open; 0 when closed.
    open_until_ms: AtomicU64,
    /// A half-open probe is in flight.
    probing: AtomicBool,
}

/// What the breaker lets an attempt do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Closed: go.
    Pass,
    /// Half-open: go as the one probe.
    Probe,
    /// Open, or half-open with a probe out: fail at once.
    Refuse,
}

/// Gives the probe back however the attempt ends, cancelled included.
struct ProbeGuard<'a>(&'a AtomicBool);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Breaker {
    pub(crate) fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            consecutive: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    /// Whether (and how) a request may go out now; a `Probe` admission must be followed by
    /// `succeeded` or `failed` and the release of the probe.
    pub(crate) fn admit(&self, now: SystemTime) -> Admission {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Admission::Pass;
        }
        if unix_ms(now) < until {
            return Admission::Refuse;
        }
        match self.probing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Admission::Probe,
            Err(_) => Admission::Refuse,
        }
    }

    /// One attempt through the breaker: refused while it is open or another probe is out; an
    /// outage counts towards opening it, any answer of the vendor (even an error) closes it.
    pub(crate) async fn attempt<E, F>(&self, now: SystemTime, request: F) -> Step
    where
        E: VendorFailure,
        F: Future<Output = Result<Option<String>, E>>,
    {
        let _probe = match self.admit(now) {
            Admission::Pass => None,
            Admission::Probe => Some(ProbeGuard(&self.probing)),
            Admission::Refuse => return E::circuit_open().step(),
        };
        match request.await {
            Ok(id) => {
                self.succeeded();
                Step::Done(Outcome::Sent { id })
            }
            Err(e) => {
                if e.is_outage() {
                    self.failed(now);
                } else {
                    self.succeeded();
                }
                e.step()
            }
        }
    }

    pub(crate) fn succeeded(&self) {
        self.consecutive.store(0, Ordering::Relaxed);
        self.open_until_ms.store(0, Ordering::Release);
    }

    pub(crate) fn failed(&self, now: SystemTime) {
        if self.settings.failures == 0 {
            return;
        }
        let count = self.consecutive.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if count >= self.settings.failures {
            let until =
                unix_ms(now).saturating_add(self.settings.cooldown_secs.saturating_mul(1000));
            self.open_until_ms.store(until.max(1), Ordering::Release);
        }
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_cap() {
        let s = RetrySettings { base_delay_ms: 100, max_delay_ms: 1_000, ..Default::default() };
        for _ in 0..50 {
            let first = s.backoff(0).as_millis();
            assert!((50..=100).contains(&first), "{first}");
            let third = s.backoff(2).as_millis();
            assert!((200..=400).contains(&third), "{third}");
            let capped = s.backoff(20).as_millis();
            assert!((500..=1_000).contains(&capped), "{capped}");
        }
    }

    #[test]
    fn retry_after_as_seconds_or_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        // 21 Oct 2015 07:28:00 GMT is 1445412480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn breaker_opens_after_failures_and_recloses() {
        let b = Breaker::new(BreakerSettings { failures: 2, cooldown_secs: 10 });
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        b.failed(t0);
        assert_eq!(b.admit(t0), Admission::Pass);
        b.failed(t0);
        assert_eq!(b.admit(t0 + Duration::from_secs(9)), Admission::Refuse);
        assert_eq!(b.admit(t0 + Duration::from_secs(10)), Admission::Probe);
        b.succeeded();
        b.probing.store(false, Ordering::Release);
        assert_eq!(b.admit(t0), Admission::Pass);
    }

    /// A vendor error that is always an outage, for driving the breaker.
    #[derive(Debug)]
    struct Down;

    impl VendorFailure for Down {
        fn circuit_open() -> Self {
            Down
        }
        fn is_outage(&self) -> bool {
            true
        }
        fn step(self) -> Step {
            Step::Retry { reason: "Down".into(), after: None }
        }
    }

    #[tokio::test]
    async fn half_open_lets_one_probe_through_and_a_failed_probe_reopens() {
        let b = Breaker::new(BreakerSettings { failures: 1, cooldown_secs: 10 });
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        b.attempt::<Down, _>(t0, async { Err(Down) }).await;
        assert_eq!(b.admit(t0), Admission::Refuse, "open after one failure");

        let t1 = t0 + Duration::from_secs(10);
        let (release, hold) = tokio::sync::oneshot::channel::<()>();
        let probe = b.attempt::<Down, _>(t1, async move {
            let _ = hold.await;
            Err(Down)
        });
        tokio::pin!(probe);
        assert!(futures_poll_once(probe.as_mut()).await.is_none(), "the probe is out");
        assert_eq!(b.admit(t1), Admission::Refuse, "one probe at a time");
        release.send(()).unwrap();
        probe.await;
        assert_eq!(b.admit(t1 + Duration::from_secs(9)), Admission::Refuse, "reopened");

        let t2 = t1 + Duration::from_secs(10);
        let step = b.attempt::<Down, _>(t2, async { Ok(Some("id".into())) }).await;
        assert!(matches!(step, Step::Done(Outcome::Sent { .. })), "{step:?}");
        assert_eq!(b.admit(t2), Admission::Pass, "a probe that went through closes it");
    }

    #[tokio::test]
    async fn a_cancelled_probe_gives_the_probe_back() {
        let b = Breaker::new(BreakerSettings { failures: 1, cooldown_secs: 1 });
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        b.failed(t0);
        let t1 = t0 + Duration::from_secs(1);
        let mut probe = Box::pin(b.attempt::<Down, _>(t1, std::future::pending()));
        assert!(futures_poll_once(probe.as_mut()).await.is_none());
        assert_eq!(b.admit(t1), Admission::Refuse);
        drop(probe);
        assert_eq!(b.admit(t1), Admission::Probe);
    }

    /// Polls `future` once: `Some` if it finished.
    async fn futures_poll_once<F: Future + Unpin>(mut future: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(out) => Some(out),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
