//! FCM HTTP v1: exact messages, OAuth exchanges, retries and token errors.

use std::time::Duration;

use herald_core::account::TokenKind;
use herald_core::push::{AndroidNotification, Notification};
use herald_vendor::clock::unix_secs;
use herald_vendor::fcm::FCM_SCOPE;
use herald_vendor::test_support::{Reply, TestServiceAccount};
use herald_vendor::{Clock, FcmCredentials, Outcome, Vendor, VendorPush};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn message_has_exact_body_and_the_oauth_assertion_is_verified() {
    let h = harness(|_| {}).await;
    let account = h.fcm_app(1, "demo-project", "herald@demo-project.iam.gserviceaccount.com");
    let notification = Notification {
        title: Some("Sale".into()),
        body: Some("50% off".into()),
        image: Some("https://cdn.example/sale.png".into()),
        android: Some(AndroidNotification {
            body: Some("50% off on Android".into()),
            channel_id: Some("promo".into()),
            sound: Some("default".into()),
            extras: Some(json!({"deep_link": "app://sale", "n": 3}).as_object().unwrap().clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut push = VendorPush::new("push-42", notification, 600);
    push.collapse_id = Some("sale".into());
    let push = h.sender.prepare(&push);
    let outcome = h.sender.send(1, &push, &fcm_token(7)).await;
    assert_eq!(outcome, Outcome::Sent { id: Some("projects/demo-project/messages/1".into()) });

    let requests = h.fcm.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.project_id, "demo-project");
    assert_eq!(r.client_email.as_deref(), Some(account.client_email.as_str()));
    assert_eq!(r.headers["authorization"], "Bearer ya29.herald-test-0");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.body,
        json!({"message": {
            "token": "fcm-token-7",
            "notification": {"title": "Sale", "body": "50% off on Android",
                             "image": "https://cdn.example/sale.png"},
            "android": {"ttl": "600s", "collapse_key": "sale", "priority": "HIGH",
                        "notification": {"channel_id": "promo", "sound": "default"}},
            "data": {"deep_link": "app://sale", "n": "3", "herald_push_id": "push-42"}
        }})
    );

    // The assertion verified with the account's RSA key, and says what Google requires.
    let exchanges = h.fcm.token_exchanges();
    let now = unix_secs(h.clock.now());
    assert_eq!(
        exchanges,
        vec![json!({
            "iss": account.client_email,
            "scope": FCM_SCOPE,
            "aud": h.fcm.token_uri(),
            "iat": now,
            "exp": now + 3600,
        })]
    );
}

#[tokio::test]
async fn one_access_token_serves_many_sends_until_shortly_before_it_expires() {
    let h = harness(|_| {}).await;
    h.fcm_app(1, "demo-project", "herald@demo-project.iam.gserviceaccount.com");
    let push = h.sender.prepare(&simple_push("p"));
    let tokens: Vec<_> = (0..50).map(fcm_token).collect();
    let outcomes = h.sender.send_many(1, &push, &tokens).await;
    assert!(outcomes.iter().all(Outcome::is_sent));
    assert_eq!(h.fcm.token_exchanges().len(), 1);
    assert_eq!(h.sender.stats(1, TokenKind::Fcm).unwrap().auth_tokens, 1);

    // expires_in is 3599 s and the margin 300 s: reused at 3298 s, replaced at 3299 s.
    h.clock.advance(Duration::from_secs(3298));
    assert!(h.sender.send(1, &push, &fcm_token(1)).await.is_sent());
    assert_eq!(h.fcm.token_exchanges().len(), 1);
    h.clock.advance(Duration::from_secs(1));
    assert!(h.sender.send(1, &push, &fcm_token(1)).await.is_sent());
    assert_eq!(h.fcm.token_exchanges().len(), 2);
    assert_eq!(
        h.fcm.requests().last().unwrap().headers["authorization"],
        "Bearer ya29.herald-test-1"
    );
}

#[tokio::test]
async fn unauthenticated_gets_a_new_access_token_and_one_more_try() {
    let h = harness(|_| {}).await;
    h.fcm_app(1, "demo-project", "herald@demo-project.iam.gserviceaccount.com");
    let push = h.sender.prepare(&simple_push("p"));
    h.fcm.script("fcm-token-1", [Reply::AuthExpired]);
    assert!(h.sender.send(1, &push, &fcm_token(1)).await.is_sent());
    assert_eq!(h.fcm.token_exchanges().len(), 2);
    let requests = h.fcm.requests();
    assert_eq!(requests[0].status, 401);
    assert_eq!(requests[1].headers["authorization"], "Bearer ya29.herald-test-1");

    h.fcm.script("fcm-token-2", [Reply::AuthExpired, Reply::AuthExpired]);
    assert_eq!(
        h.sender.send(1, &push, &fcm_token(2)).await,
        Outcome::Failed { reason: "UNAUTHENTICATED".into(), retryable: false }
    );
}

#[tokio::test]
async fn unregistered_and_invalid_tokens_are_permanent() {
    let h = harness(|_| {}).await;
    h.fcm_app(1, "demo-project", "herald@demo-project.iam.gserviceaccount.com");
    h.fcm.script("fcm-token-1", [Reply::Unregistered]);
    h.fcm.script("fcm-token-2", [Reply::BadDeviceToken]);
    let push = h.sender.prepare(&simple_push("p"));
    let outcomes = h.sender.send_many(1, &push, &[fcm_token(1), fcm_token(2), fcm_token(3)]).await;
    assert_eq!(outcomes[0], Outcome::Unregistered { reason: "UNREGISTERED".into() });
    assert_eq!(outcomes[1], Outcome::BadDeviceToken { reason: "INVALID_ARGUMENT".into() });
    assert!(outcomes[2].is_sent());
    assert_eq!(h.fcm.request_count(), 3);
}

#[tokio::test]
async fn quota_and_unavailable_are_retried_honouring_retry_after() {
    let h = harness(|_| {}).await;
    h.fcm_app(1, "demo-project", "herald@demo-project.iam.gserviceaccount.com");
    h.fcm.script(
        "fcm-token-1",
        [
            Reply::TooManyRequests { retry_after: Some(3) },
            Reply::Unavailable { retry_after: Some(5) },
            Reply::InternalError,
        ],
    );
    let push = h.sender.prepare(&simple_push("p"));
    assert!(h.sender.send(1, &push, &fcm_token(1)).await.is_sent());
    let sleeps = h.clock.sleeps();
    assert_eq!(&sleeps[..2], &[Duration::from_secs(3), Duration::from_secs(5)]);
    assert_eq!(sleeps.len(), 3);
    assert_eq!(h.fcm.request_count(), 4);
    // The access token outlived the waits: no new exchange.
    assert_eq!(h.fcm.token_exchanges().len(), 1);
}

#[tokio::test]
async fn the_token_endpoint_can_be_overridden_in_settings() {
    let h = harness(|_| {}).await;
    // A service account file as Google issues it, pointing at Google's token endpoint.
    let account =
        TestServiceAccount::generate("demo-project", "sa@demo-project.iam.gserviceaccount.com");
    h.fcm.add_account(&account);
    let token_uri = h.fcm.token_uri();
    let mut settings = herald_vendor::VendorSettings::default();
    settings.fcm.base_url = h.fcm.url();
    settings.fcm.token_uri = Some(token_uri);
    settings.extra_root_pem = Some(herald_vendor::test_support::ca_pem());
    let sender = herald_vendor::VendorSender::with_clock(settings, h.clock.clone()).unwrap();
    let credentials = FcmCredentials {
        service_account_json: account.json("https://oauth2.googleapis.com/token"),
        project_id: None,
    };
    sender.set_fcm(9, &credentials).unwrap();
    let push = sender.prepare(&simple_push("p"));
    assert!(sender.send(9, &push, &fcm_token(1)).await.is_sent());
    assert_eq!(h.fcm.token_exchanges()[0]["aud"], h.fcm.token_uri());
}

#[tokio::test]
async fn a_refused_assertion_fails_without_sending() {
    let h = harness(|_| {}).await;
    // Unknown to the server: the token endpoint answers invalid_grant.
    let account = TestServiceAccount::generate("demo-project", "stranger@example.com");
    h.sender.set_fcm(1, &account.credentials(&h.fcm.token_uri())).unwrap();
    let push = h.sender.prepare(&simple_push("p"));
    assert_eq!(
        h.sender.send(1, &push, &fcm_token(1)).await,
        Outcome::Failed { reason: "OAuth invalid_grant".into(), retryable: false }
    );
    assert_eq!(h.fcm.request_count(), 0);
}
