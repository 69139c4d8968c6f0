//! Web Push: encrypted messages the push service decrypts, VAPID verified, RFC 8030 headers,
//! and every status a push service answers mapped to its outcome.

use std::sync::Arc;
use std::time::Duration;

use herald_core::push::Notification;
use herald_vendor::clock::unix_secs;
use herald_vendor::test_support::{ca_pem, ManualClock, Reply, TestSubscriber, WebPushTestServer};
use herald_vendor::webpush::ece::MAX_PLAINTEXT_BYTES;
use herald_vendor::{
    Clock, Outcome, SecretBox, Urgency, Vendor, VendorPush, VendorSender, VendorSettings,
    WebPushCredentials,
};
use serde_json::json;

struct Harness {
    clock: Arc<ManualClock>,
    service: WebPushTestServer,
    sender: VendorSender,
    credentials: WebPushCredentials,
}

/// App 1 with fresh VAPID credentials, a push service on the same manual clock.
async fn harness(tweak: impl FnOnce(&mut VendorSettings)) -> Harness {
    let clock = ManualClock::new();
    let service =
        WebPushTestServer::start_with_clock(clock.clone()).await.expect("push test server");
    let mut settings =
        VendorSettings { extra_root_pem: Some(ca_pem()), ..VendorSettings::default() };
    settings.breaker.failures = 0;
    settings.retry.base_delay_ms = 100;
    tweak(&mut settings);
    let sender = VendorSender::with_clock(settings, clock.clone()).expect("settings");
    let credentials = WebPushCredentials::generate("mailto:ops@example.com").expect("keys");
    sender.set_webpush(1, &credentials).expect("VAPID credentials");
    Harness { clock, service, sender, credentials }
}

impl Harness {
    fn subscribe(&self) -> TestSubscriber {
        self.service.subscribe(&self.credentials.public_key)
    }

    async fn send(&self, push: &VendorPush, to: &TestSubscriber) -> Outcome {
        let prepared = self.sender.prepare(push);
        let mut outcomes =
            self.sender.send_webpush_many(1, &prepared, &[to.subscription_json()]).await;
        outcomes.pop().expect("one outcome")
    }
}

fn push(id: &str) -> VendorPush {
    let notification = Notification {
        title: Some("Hello".into()),
        body: Some("World".into()),
        ..Default::default()
    };
    VendorPush::new(id, notification, 3600)
}

#[tokio::test]
async fn a_message_arrives_encrypted_with_vapid_and_rfc8030_headers() {
    let h = harness(|_| {}).await;
    let browser = h.subscribe();
    let mut p = push("push-7");
    p.urgency = Urgency::High;
    p.collapse_id = Some("score".into());
    let outcome = h.send(&p, &browser).await;
    assert!(
        matches!(&outcome, Outcome::Sent { id: Some(location) } if location.contains("/m/")),
        "{outcome:?}"
    );

    let requests = h.service.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.status, 201);
    // The push service decrypted the body with the browser's private key.
    assert_eq!(
        r.json().unwrap(),
        json!({"title": "Hello", "body": "World", "tag": "score", "herald_push_id": "push-7"})
    );
    assert_eq!(r.header("content-encoding"), Some("aes128gcm"));
    assert_eq!(r.header("ttl"), Some("3600"));
    assert_eq!(r.header("urgency"), Some("high"));
    assert_eq!(r.header("topic"), Some("score"));
    // VAPID: signed by the app's key, for this origin, 12 hours, with the contact.
    assert_eq!(r.vapid_key.as_deref(), Some(h.credentials.public_key.as_str()));
    let claims = r.vapid_claims.clone().unwrap();
    assert_eq!(claims["aud"], h.service.url());
    assert_eq!(claims["exp"], unix_secs(h.clock.now()) + 12 * 3600);
    assert_eq!(claims["sub"], "mailto:ops@example.com");
}

#[tokio::test]
async fn ttl_zero_default_urgency_and_hashed_topics() {
    let h = harness(|_| {}).await;
    let browser = h.subscribe();
    let mut p = VendorPush::new("p", Notification::default(), 0);
    p.collapse_id = Some("a collapse id far longer than thirty-two characters".into());
    assert!(h.send(&p, &browser).await.is_sent());
    let r = &h.service.requests()[0];
    assert_eq!(r.header("ttl"), Some("0"));
    assert_eq!(r.header("urgency"), Some("normal"));
    let topic = r.header("topic").unwrap();
    assert_eq!(topic.len(), 32);
    assert_eq!(
        Some(topic),
        herald_vendor::webpush::topic(p.collapse_id.as_deref().unwrap()).to_str().ok()
    );
    assert_eq!(r.json().unwrap(), json!({"tag": p.collapse_id, "herald_push_id": "p"}));
}

#[tokio::test]
async fn the_vapid_token_is_reused_per_origin_until_near_expiry() {
    let h = harness(|_| {}).await;
    let (a, b) = (h.subscribe(), h.subscribe());
    for browser in [&a, &b, &a] {
        assert!(h.send(&push("p"), browser).await.is_sent());
    }
    let auth: Vec<_> = h
        .service
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_owned())
        .collect();
    assert!(auth.iter().all(|t| t == &auth[0]));
    assert_eq!(h.sender.webpush_stats(1).unwrap().auth_tokens, 1);

    h.clock.advance(Duration::from_secs(11 * 3600 + 60));
    assert!(h.send(&push("p"), &a).await.is_sent());
    let last = h.service.requests().pop().unwrap();
    assert_ne!(last.header("authorization").unwrap(), auth[0]);
    assert_eq!(h.sender.webpush_stats(1).unwrap().auth_tokens, 2);
}

#[tokio::test]
async fn gone_subscriptions_are_unregistered() {
    let h = harness(|_| {}).await;
    let (gone, missing, revoked) = (h.subscribe(), h.subscribe(), h.subscribe());
    h.service.script(&gone.id, [Reply::Unregistered]);
    h.service.script(&missing.id, [Reply::BadDeviceToken]);
    h.service.unsubscribe(&revoked.id);
    let p = push("p");
    let outcome = h.send(&p, &gone).await;
    assert_eq!(outcome, Outcome::Unregistered { reason: "Gone".into() });
    assert!(outcome.removes_token());
    assert_eq!(h.send(&p, &missing).await, Outcome::Unregistered { reason: "NotFound".into() });
    assert_eq!(h.send(&p, &revoked).await, Outcome::Unregistered { reason: "Gone".into() });
    assert_eq!(h.service.request_count(), 3);
    assert_eq!(h.sender.webpush_stats(1).unwrap().unregistered, 3);
}

#[tokio::test]
async fn rate_limits_wait_for_retry_after_then_succeed() {
    let h = harness(|_| {}).await;
    let browser = h.subscribe();
    h.service.script(&browser.id, [Reply::TooManyRequests { retry_after: Some(7) }]);
    assert!(h.send(&push("p"), &browser).await.is_sent());
    assert_eq!(h.clock.sleeps(), vec![Duration::from_secs(7)]);
    let statuses: Vec<u16> = h.service.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 201]);
    // The retry carried the same message, still decryptable.
    assert!(h.service.requests().iter().all(|r| r.json().is_some()));
}

#[tokio::test]
async fn server_errors_are_retried_with_back_off_until_retries_run_out() {
    let h = harness(|s| s.retry.max_retries = 2).await;
    let (flaky, down) = (h.subscribe(), h.subscribe());
    h.service.script(&flaky.id, [Reply::InternalError, Reply::Unavailable { retry_after: None }]);
    assert!(h.send(&push("p"), &flaky).await.is_sent());
    let sleeps = h.clock.sleeps();
    assert!((50..=100).contains(&sleeps[0].as_millis()), "{sleeps:?}");
    assert!((100..=200).contains(&sleeps[1].as_millis()), "{sleeps:?}");

    h.service.script(&down.id, vec![Reply::InternalError; 3]);
    assert_eq!(
        h.send(&push("p"), &down).await,
        Outcome::Failed { reason: "PushServiceError".into(), retryable: true }
    );
    assert_eq!(h.service.request_count(), 3 + 3);
    assert_eq!(h.sender.webpush_stats(1).unwrap().retries, 4);
}

#[tokio::test]
async fn payload_too_large_is_a_failure_never_retried_nor_truncated() {
    let h = harness(|_| {}).await;
    let browser = h.subscribe();
    h.service.script(&browser.id, [Reply::Raw { status: 413, body: "too big".into() }]);
    assert_eq!(
        h.send(&push("p"), &browser).await,
        Outcome::Failed { reason: "PayloadTooLarge".into(), retryable: false }
    );
    assert_eq!(h.service.request_count(), 1);

    // Too large to fit one record: refused before any request.
    let big = Notification { body: Some("x".repeat(MAX_PLAINTEXT_BYTES)), ..Default::default() };
    assert_eq!(
        h.send(&VendorPush::new("p", big, 60), &browser).await,
        Outcome::Failed { reason: "PayloadTooLarge".into(), retryable: false }
    );
    assert_eq!(h.service.request_count(), 1);
}

#[tokio::test]
async fn vapid_refusals_are_failures_with_a_reason() {
    let h = harness(|_| {}).await;
    // Subscribed with another app's applicationServerKey: the push service answers 403.
    let other = WebPushCredentials::generate("mailto:other@example.com").unwrap();
    let foreign = h.service.subscribe(&other.public_key);
    assert_eq!(
        h.send(&push("p"), &foreign).await,
        Outcome::Failed { reason: "VapidRejected".into(), retryable: false }
    );
    assert_eq!(h.service.requests()[0].reason.as_deref(), Some("VapidKeyMismatch"));

    // A 401 gets one new token; a second 401 is final.
    let browser = h.subscribe();
    h.service.script(&browser.id, [Reply::AuthExpired]);
    assert!(h.send(&push("p"), &browser).await.is_sent());
    h.service.script(&browser.id, [Reply::AuthExpired, Reply::AuthExpired]);
    assert_eq!(
        h.send(&push("p"), &browser).await,
        Outcome::Failed { reason: "VapidRejected".into(), retryable: false }
    );
    h.service.script(&browser.id, [Reply::Raw { status: 400, body: "bad".into() }]);
    assert_eq!(
        h.send(&push("p"), &browser).await,
        Outcome::Failed { reason: "BadRequest".into(), retryable: false }
    );
}

#[tokio::test]
async fn a_hanging_push_service_times_out_as_retryable() {
    let h = harness(|s| {
        s.request_timeout_ms = 200;
        s.retry.max_retries = 1;
    })
    .await;
    let browser = h.subscribe();
    h.service.script(&browser.id, [Reply::Hang, Reply::Hang]);
    assert_eq!(
        h.send(&push("p"), &browser).await,
        Outcome::Failed { reason: "Timeout".into(), retryable: true }
    );
}

#[tokio::test]
async fn bad_subscriptions_and_missing_credentials_send_nothing() {
    let h = harness(|_| {}).await;
    let prepared = h.sender.prepare(&push("p"));
    let bad = [
        "not json".to_owned(),
        json!({"endpoint": "http://127.0.0.1/push/x", "keys": {"p256dh": "AA", "auth": "AA"}})
            .to_string(),
    ];
    let outcomes = h.sender.send_webpush_many(1, &prepared, &bad).await;
    let expected = Outcome::BadDeviceToken { reason: "BadSubscription".into() };
    assert_eq!(outcomes, [expected.clone(), expected]);

    let browser = h.subscribe();
    let outcomes = h.sender.send_webpush_many(2, &prepared, &[browser.subscription_json()]).await;
    assert_eq!(outcomes, [Outcome::Failed { reason: "NoCredentials".into(), retryable: false }]);
    assert!(!h.sender.has_webpush(2));
    h.sender.remove_webpush(1);
    assert!(!h.sender.has_webpush(1));
    assert_eq!(h.service.request_count(), 0);
}

#[tokio::test]
async fn each_push_service_has_its_own_breaker_and_their_number_is_bounded() {
    let h = harness(|s| {
        s.breaker.failures = 2;
        s.retry.max_retries = 0;
        s.webpush.max_push_services = 2;
    })
    .await;
    let down = WebPushTestServer::start_with_clock(h.clock.clone()).await.unwrap();
    down.set_default(Reply::InternalError);
    let (up, broken) = (h.subscribe(), down.subscribe(&h.credentials.public_key));
    for _ in 0..2 {
        assert!(!h.send(&push("p"), &broken).await.is_sent());
    }
    // The breaker of the failing service is open: no request, retryable.
    assert_eq!(
        h.send(&push("p"), &broken).await,
        Outcome::Failed { reason: "CircuitOpen".into(), retryable: true }
    );
    assert_eq!(down.request_count(), 2);
    // The other push service is not paused.
    assert!(h.send(&push("p"), &up).await.is_sent());

    // A third origin is past `max_push_services`.
    let third = WebPushTestServer::start_with_clock(h.clock.clone()).await.unwrap();
    let stranger = third.subscribe(&h.credentials.public_key);
    assert_eq!(
        h.send(&push("p"), &stranger).await,
        Outcome::Failed { reason: "TooManyPushServices".into(), retryable: false }
    );
    assert_eq!(third.request_count(), 0);
}

#[tokio::test]
async fn many_subscriptions_keep_their_order() {
    let h = harness(|s| s.max_in_flight = 4).await;
    let browsers: Vec<TestSubscriber> = (0..20).map(|_| h.subscribe()).collect();
    h.service.script(&browsers[3].id, [Reply::Unregistered]);
    let tokens: Vec<String> = browsers.iter().map(TestSubscriber::subscription_json).collect();
    let outcomes = h.sender.send_webpush_many(1, &h.sender.prepare(&push("p")), &tokens).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.is_sent(), i != 3, "{i}: {outcome:?}");
    }
    assert_eq!(h.service.request_count(), 20);
}

#[test]
fn vapid_credentials_are_sealed_like_the_others() {
    let secret_box = SecretBox::new(&SecretBox::generate_key(), &[]).unwrap();
    let credentials = WebPushCredentials::generate("https://example.com/contact").unwrap();
    let sealed = secret_box.seal_json("app/1/webpush", &credentials);
    assert!(!sealed.contains(&credentials.private_key));
    let opened: WebPushCredentials = secret_box.open_json("app/1/webpush", &sealed).unwrap();
    assert_eq!(opened, credentials);
    assert!(secret_box.open_json::<WebPushCredentials>("app/2/webpush", &sealed).is_err());
    let shown = opened.redacted().unwrap();
    assert_eq!(shown.public_key, credentials.application_server_key().unwrap());
    assert!(!serde_json::to_string(&shown).unwrap().contains(&credentials.private_key));
}

#[test]
fn webpush_settings_are_checked() {
    let invalid = |tweak: fn(&mut VendorSettings)| {
        let mut settings = VendorSettings::default();
        tweak(&mut settings);
        settings.validate().unwrap_err().to_string()
    };
    VendorSettings::default().validate().unwrap();
    assert!(invalid(|s| s.webpush.vapid_lifetime_secs = 25 * 3600).contains("vapid_lifetime_secs"));
    assert!(invalid(|s| s.webpush.vapid_refresh_margin_secs = 12 * 3600)
        .contains("vapid_refresh_margin_secs"));
    assert!(invalid(|s| s.webpush.max_push_services = 0).contains("max_push_services"));
    // Fields left out of `[vendor.webpush]` keep their defaults.
    let settings: VendorSettings =
        serde_json::from_value(json!({"webpush": {"vapid_lifetime_secs": 3600}})).unwrap();
    assert_eq!(settings.webpush.vapid_lifetime_secs, 3600);
    assert_eq!(settings.webpush.max_push_services, 16);
}

#[tokio::test]
async fn webpush_tokens_go_through_send_many_with_the_other_vendors() {
    use herald_core::account::{TokenKind, VendorToken};

    let h = harness(|_| {}).await;
    let browser = h.subscribe();
    assert_eq!(h.sender.webpush_key(1).as_deref(), Some(h.credentials.public_key.as_str()));
    assert!(h.sender.has_channel(1, TokenKind::WebPush));
    let tokens = [
        VendorToken { kind: TokenKind::WebPush, token: browser.subscription_json() },
        // No APNs credentials: that token fails alone, the browser still gets its message.
        VendorToken { kind: TokenKind::Apns, token: "ab".repeat(32) },
    ];
    let outcomes = h.sender.send_many(1, &h.sender.prepare(&push("mixed")), &tokens).await;
    assert!(matches!(outcomes[0], Outcome::Sent { .. }), "{outcomes:?}");
    assert_eq!(outcomes[1], Outcome::Failed { reason: "NoCredentials".into(), retryable: false });
    assert_eq!(h.service.request_count(), 1);
    assert_eq!(h.sender.stats(1, TokenKind::WebPush).map(|s| s.sent), Some(1));

    h.sender.remove(1, TokenKind::WebPush);
    assert_eq!(h.sender.webpush_key(1), None);
    assert!(!h.sender.has_webpush(1));
}
