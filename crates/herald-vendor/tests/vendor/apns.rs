//! APNs: exact requests, provider tokens, retries and token errors.

use std::collections::HashSet;
use std::time::Duration;

use herald_core::account::TokenKind;
use herald_core::push::{IosNotification, Notification};
use herald_vendor::clock::unix_secs;
use herald_vendor::test_support::{ApnsTestServer, Reply, TestApnsKey};
use herald_vendor::{ApnsEnvironment, Clock, Outcome, Vendor, VendorPush};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn alert_push_has_exact_headers_payload_and_a_verified_jwt() {
    let h = harness(|_| {}).await;
    h.apns_app(1, "KEY1234567", "TEAM123456", "com.example.app");
    let notification = Notification {
        title: Some("Sale".into()),
        body: Some("50% off".into()),
        ios: Some(IosNotification {
            subtitle: Some("today only".into()),
            badge: Some(2),
            sound: Some("chime.caf".into()),
            mutable_content: Some(true),
            category: Some("PROMO".into()),
            thread_id: Some("sales".into()),
            collapse_id: Some("sale-1".into()),
            extras: Some(json!({"deep_link": "app://sale"}).as_object().unwrap().clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let push = h.sender.prepare(&VendorPush::new("push-42", notification, 3600));
    let outcome = h.sender.send(1, &push, &apns_token(7)).await;
    assert!(matches!(&outcome, Outcome::Sent { id: Some(id) } if id.starts_with("00000000-")));

    let requests = h.apns.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.status, 200);
    assert_eq!(r.token, format!("{:064x}", 7));
    assert_eq!(r.header("apns-topic"), Some("com.example.app"));
    assert_eq!(r.header("apns-push-type"), Some("alert"));
    assert_eq!(r.header("apns-priority"), Some("10"));
    let expiration = (unix_secs(h.clock.now()) + 3600).to_string();
    assert_eq!(r.header("apns-expiration"), Some(expiration.as_str()));
    assert_eq!(r.header("apns-collapse-id"), Some("sale-1"));
    assert!(r.header("authorization").unwrap().starts_with("bearer "));
    assert_eq!(
        r.body,
        json!({
            "aps": {
                "alert": {"title": "Sale", "subtitle": "today only", "body": "50% off"},
                "badge": 2, "sound": "chime.caf", "mutable-content": 1,
                "category": "PROMO", "thread-id": "sales"
            },
            "deep_link": "app://sale",
            "herald_push_id": "push-42"
        })
    );
    // The server verified the ES256 signature with the key registered under this kid.
    assert_eq!(r.key_id.as_deref(), Some("KEY1234567"));
    assert_eq!(
        r.claims.clone().unwrap(),
        json!({"iss": "TEAM123456", "iat": unix_secs(h.clock.now())})
    );
    let jwt = r.header("authorization").unwrap().strip_prefix("bearer ").unwrap();
    let decoded = herald_vendor::test_support::DecodedJwt::decode(jwt).unwrap();
    assert_eq!(decoded.header, json!({"alg": "ES256", "kid": "KEY1234567"}));
}

#[tokio::test]
async fn content_available_only_is_a_background_push_and_ttl_zero_expires_at_once() {
    let h = harness(|_| {}).await;
    h.apns_app(1, "KEY1234567", "TEAM123456", "com.example.app");
    let notification = Notification {
        ios: Some(IosNotification { content_available: Some(true), ..Default::default() }),
        ..Default::default()
    };
    let push = h.sender.prepare(&VendorPush::new("p", notification, 0));
    assert!(h.sender.send(1, &push, &apns_token(1)).await.is_sent());
    let r = &h.apns.requests()[0];
    assert_eq!(r.header("apns-push-type"), Some("background"));
    assert_eq!(r.header("apns-priority"), Some("5"));
    assert_eq!(r.header("apns-expiration"), Some("0"));
    assert_eq!(r.header("apns-collapse-id"), None);
    assert_eq!(r.body, json!({"aps": {"content-available": 1}, "herald_push_id": "p"}));
}

#[tokio::test]
async fn sandbox_apps_use_the_sandbox_endpoint() {
    let sandbox = ApnsTestServer::start().await.unwrap();
    let sandbox_url = sandbox.url();
    let h = harness(|s| s.apns.sandbox_url = sandbox_url).await;
    let key = TestApnsKey::generate("KEY1234567", "TEAM123456");
    sandbox.add_key(&key);
    h.sender.set_apns(1, &key.credentials("com.example.dev", ApnsEnvironment::Sandbox)).unwrap();
    let push = h.sender.prepare(&simple_push("p"));
    assert!(h.sender.send(1, &push, &apns_token(1)).await.is_sent());
    assert_eq!(sandbox.request_count(), 1);
    assert_eq!(h.apns.request_count(), 0);
}

#[tokio::test]
async fn one_provider_token_serves_many_sends_until_its_refresh_age() {
    let h = harness(|_| {}).await;
    h.apns_app(1, "KEY1234567", "TEAM123456", "com.example.app");
    let push = h.sender.prepare(&simple_push("p"));
    let tokens: Vec<_> = (0..50).map(apns_token).collect();
    let outcomes = h.sender.send_many(1, &push, &tokens).await;
    assert!(outcomes.iter().all(Outcome::is_sent));
    let auths = |h: &Harness| -> HashSet<String> {
        h.apns.requests().iter().map(|r| r.header("authorization").unwrap().to_owned()).collect()
    };
    assert_eq!(auths(&h).len(), 1);
    assert_eq!(h.sender.stats(1, TokenKind::Apns).unwrap().auth_tokens, 1);

    h.clock.advance(49 * MINUTE);
    assert!(h.sender.send(1, &push, &apns_token(1)).await.is_sent());
    assert_eq!(auths(&h).len(), 1, "a 49-minute-old token is still used");

    h.clock.advance(2 * MINUTE);
    assert!(h.sender.send(1, &push, &apns_token(1)).await.is_sent());
    assert_eq!(auths(&h).len(), 2, "a 51-minute-old token is replaced");
    let last = h.apns.requests().pop().unwrap();
    assert_eq!(last.claims.unwrap()["iat"], unix_secs(h.clock.now()));
    assert_eq!(h.sender.stats(1, TokenKind::Apns).unwrap().auth_tokens, 2);
}

#[tokio::test]
async fn expired_provider_token_is_replaced_and_the_send_retried_once() {
    let h = harness(|_| {}).await;
    h.apns_app(1, "KEY1234567", "TEAM123456", "com.example.app");
    let push = h.sender.prepare(&simple_push("p"));
    h.apns.script(&apns_token(1).token, [Reply::AuthExpired]);
    assert!(h.sender.send(1, &push, &apns_token(1)).await.is_sent());
    let requests = h.apns.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].reason.as_deref(), Some("ExpiredProviderToken"));
    assert_ne!(requests[0].header("authorization"), requests[1].header("authorization"));
    assert!(h.clock.sleeps().is_empty(), "a token refresh is not a back-off");

    // Refused twice in a row: the credentials are at fault, not the token's age.
    h.apns.script(&apns_token(2).token, [Reply::AuthExpired, Reply::AuthExpired]);
    assert_eq!(
        h.sender.send(1, &push, &apns_token(2)).await,
        Outcome::Failed { reason: "ExpiredProviderToken".into(), retryable: false }
    );
}

#[tokio::test]
async fn a_key_apns_does_not_know_fails_without_retry() {
    let h = harness(|_| {}).await;
    let key = TestApnsKey::generate("KEY1234567", "TEAM123456");
    // Not registered with the server: its signature cannot be verified.
    h.sender.set_apns(1, &key.credentials("com.example.app", ApnsEnvironment::Production)).unwrap();
    let push = h.sender.prepare(&simple_push("p"));
    assert_eq!(
        h.sender.send(1, &push, &apns_token(1)).await,
        Outcome::Failed { reason: "InvalidProviderToken".into(), retryable: false }
    );
    assert_eq!(h.apns.request_count(), 1);
}

#[tokio::test]
async fn permanent_token_errors_tell_the_caller_to_remove_the_token() {
    let h = harness(|_| {}).await;
    h.apns_app(1, "KEY1234567", "TEAM123456", "com.example.app");
    h.apns.script(&apns_token(1).token, [Reply::Unregistered]);
    h.apns.script(&apns_token(2).token, [Reply::BadDeviceToken]);
    let push = h.sender.prepare(&simple_push("p"));
    let mut tokens = vec![apns_token(1), apns_token(2), apns_token(3)];
    tokens.push(herald_core::account::VendorToken {
        kind: TokenKind::Apns,
        token: "../../not-hex".into(),
    });
    let outcomes = h.sender.send_many(1, &push, &tokens).await;
    assert_eq!(outcomes[0], Outcome::Unregistered { reason: "Unregistered".into() });
    assert_eq!(outcomes[1], Outcome::BadDeviceToken { reason: "BadDeviceToken".into() });
    assert!(outcomes[2].is_sent());
    assert_eq!(outcomes[3], Outcome::BadDeviceToken { reason: "BadDeviceToken".into() });
    assert!(
        outcomes[0].removes_token() && outcomes[1].removes_token() && outcomes[3].removes_token()
    );
    // No retries for permanent errors, and the malformed token never left the process.
    assert_eq!(h.apns.request_count(), 3);
    let stats = h.sender.stats(1, TokenKind::Apns).unwrap();
    assert_eq!((stats.sent, stats.unregistered, stats.bad_device_token), (1, 1, 2));
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_with_back_off() {
    let h = harness(|s| {
        s.retry.base_delay_ms = 100;
        s.retry.max_retries = 3;
    })
    .await;
    h.apns_app(1, "KEY1234567", "TEAM123456", "com.example.app");
    let push = h.sender.prepare(&simple_push("p"));

    // Retry-After is honoured exactly.
    h.apns.script(&apns_token(1).token, [Reply::TooManyRequests { retry_after: Some(7) }]);
    assert!(h.sender.send(1, &push, &apns_token(1)).await.is_sent());
    assert_eq!(h.clock.sleeps(), vec![Duration::from_secs(7)]);

    // Without it, exponential back-off with jitter: 50..=100 ms, then 100..=200 ms.
    h.apns.script(
        &apns_token(2).token,
        [Reply::InternalError, Reply::Unavailable { retry_after: None }],
    );
    assert!(h.sender.send(1, &push, &apns_token(2)).await.is_sent());
    let sleeps = h.clock.sleeps();
    assert_eq!(sleeps.len(), 3);
    assert!((50..=100).contains(&sleeps[1].as_millis()), "{sleeps:?}");
    assert!((100..=200).contains(&sleeps[2].as_millis()), "{sleeps:?}");

    // Retries run out: the failure is retryable later.
    h.apns.script(&apns_token(3).token, vec![Reply::InternalError; 4]);
    assert_eq!(
        h.sender.send(1, &push, &apns_token(3)).await,
        Outcome::Failed { reason: "InternalServerError".into(), retryable: true }
    );
    // A Retry-After beyond the cap is not waited for.
    h.apns.script(&apns_token(4).token, [Reply::TooManyRequests { retry_after: Some(3600) }]);
    let before = h.apns.request_count();
    assert_eq!(
        h.sender.send(1, &push, &apns_token(4)).await,
        Outcome::Failed { reason: "TooManyRequests".into(), retryable: true }
    );
    assert_eq!(h.apns.request_count(), before + 1);
    assert_eq!(h.sender.stats(1, TokenKind::Apns).unwrap().retries, 1 + 2 + 3);
}
