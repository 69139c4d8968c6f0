//! Many apps in one sender: credentials kept apart, outages isolated, order kept.

use std::time::Duration;

use herald_core::account::TokenKind;
use herald_vendor::test_support::{ApnsTestServer, RecordingVendor, Reply, TestApnsKey};
use herald_vendor::{ApnsEnvironment, Outcome, Vendor};

use crate::common::*;

#[tokio::test]
async fn two_apps_send_with_their_own_credentials() {
    let h = harness(|_| {}).await;
    h.apns_app(1, "KEYAAAAAAA", "TEAMAAAAAA", "com.example.one");
    h.apns_app(2, "KEYBBBBBBB", "TEAMBBBBBB", "com.example.two");
    let one = h.fcm_app(1, "project-one", "one@project-one.iam.gserviceaccount.com");
    let two = h.fcm_app(2, "project-two", "two@project-two.iam.gserviceaccount.com");
    assert_ne!(one.public_key, two.public_key);

    let push = h.sender.prepare(&simple_push("p"));
    let app1 = [apns_token(1), fcm_token(1), apns_token(2), fcm_token(2)];
    let app2 = [apns_token(101), fcm_token(101)];
    let (o1, o2) =
        tokio::join!(h.sender.send_many(1, &push, &app1), h.sender.send_many(2, &push, &app2));
    assert!(o1.iter().chain(&o2).all(Outcome::is_sent), "{o1:?} {o2:?}");

    for r in h.apns.requests() {
        let n = u32::from_str_radix(&r.token, 16).unwrap();
        let (kid, team, topic) = if n < 100 {
            ("KEYAAAAAAA", "TEAMAAAAAA", "com.example.one")
        } else {
            ("KEYBBBBBBB", "TEAMBBBBBB", "com.example.two")
        };
        assert_eq!(r.key_id.as_deref(), Some(kid));
        assert_eq!(r.header("apns-topic"), Some(topic));
        assert_eq!(r.claims.unwrap()["iss"], team);
    }
    for r in h.fcm.requests() {
        let (project, email) = if r.token() == Some("fcm-token-101") {
            ("project-two", &two.client_email)
        } else {
            ("project-one", &one.client_email)
        };
        assert_eq!(r.project_id, project);
        assert_eq!(r.client_email.as_ref(), Some(email));
    }
    assert_eq!(h.fcm.token_exchanges().len(), 2);
}

#[tokio::test]
async fn an_outage_of_one_apps_endpoint_does_not_hold_up_other_apps() {
    // App 1 is a sandbox app whose endpoint accepts requests and never answers.
    let stalled = ApnsTestServer::start().await.unwrap();
    stalled.set_default(Reply::Hang);
    let stalled_url = stalled.url();
    let h = harness(|s| {
        s.apns.sandbox_url = stalled_url;
        s.max_in_flight = 4;
    })
    .await;
    let key = TestApnsKey::generate("KEYAAAAAAA", "TEAMAAAAAA");
    stalled.add_key(&key);
    h.sender.set_apns(1, &key.credentials("com.example.one", ApnsEnvironment::Sandbox)).unwrap();
    h.fcm_app(1, "project-one", "one@project-one.iam.gserviceaccount.com");
    h.apns_app(2, "KEYBBBBBBB", "TEAMBBBBBB", "com.example.two");

    let sender = std::sync::Arc::new(h.sender);
    let push = std::sync::Arc::new(sender.prepare(&simple_push("p")));
    let stuck = {
        let (sender, push) = (sender.clone(), push.clone());
        tokio::spawn(async move {
            let tokens: Vec<_> = (0..20).map(apns_token).collect();
            sender.send_many(1, &push, &tokens).await
        })
    };
    // Wait until app 1 has its whole in-flight share stuck at the stalled endpoint.
    while stalled.request_count() < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let tokens: Vec<_> = (100..120).map(apns_token).collect();
    let outcomes = sender.send_many(2, &push, &tokens).await;
    assert!(outcomes.iter().all(Outcome::is_sent));
    // The same app's other vendor is not held up either.
    assert!(sender.send(1, &push, &fcm_token(1)).await.is_sent());

    assert!(!stuck.is_finished(), "app 1's sends are still waiting on their endpoint");
    assert_eq!(stalled.request_count(), 4, "no more than app 1's in-flight limit went out");
    stuck.abort();
}

#[tokio::test]
async fn the_breaker_stops_requests_to_a_failing_endpoint_until_the_cool_down_ends() {
    let h = harness(|s| {
        s.retry.max_retries = 0;
        s.breaker.failures = 3;
        s.breaker.cooldown_secs = 10;
    })
    .await;
    h.apns_app(1, "KEYAAAAAAA", "TEAMAAAAAA", "com.example.one");
    h.apns.set_default(Reply::InternalError);
    let push = h.sender.prepare(&simple_push("p"));
    for _ in 0..3 {
        assert_eq!(
            h.sender.send(1, &push, &apns_token(1)).await,
            Outcome::Failed { reason: "InternalServerError".into(), retryable: true }
        );
    }
    assert_eq!(
        h.sender.send(1, &push, &apns_token(1)).await,
        Outcome::Failed { reason: "CircuitOpen".into(), retryable: true }
    );
    assert_eq!(h.apns.request_count(), 3);

    h.apns.set_default(Reply::Ok);
    h.clock.advance(Duration::from_secs(10));
    assert!(h.sender.send(1, &push, &apns_token(1)).await.is_sent());
    assert_eq!(h.apns.request_count(), 4);
}

#[tokio::test]
async fn send_many_answers_in_input_order() {
    let h = harness(|_| {}).await;
    h.apns_app(1, "KEYAAAAAAA", "TEAMAAAAAA", "com.example.one");
    h.fcm_app(1, "project-one", "one@project-one.iam.gserviceaccount.com");
    let tokens: Vec<_> =
        (0..40).map(|n| if n % 2 == 0 { apns_token(n) } else { fcm_token(n) }).collect();
    for n in (0..40).step_by(5) {
        if n % 2 == 0 {
            h.apns.script(&apns_token(n).token, [Reply::Unregistered]);
        } else {
            h.fcm.script(&fcm_token(n).token, [Reply::Unregistered]);
        }
    }
    let push = h.sender.prepare(&simple_push("p"));
    let outcomes = h.sender.send_many(1, &push, &tokens).await;
    assert_eq!(outcomes.len(), 40);
    for (n, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.removes_token(), n % 5 == 0, "token {n}: {outcome:?}");
    }
}

#[tokio::test]
async fn credentials_are_replaced_and_removed() {
    let h = harness(|_| {}).await;
    h.apns_app(1, "KEYAAAAAAA", "TEAMAAAAAA", "com.example.one");
    let push = h.sender.prepare(&simple_push("p"));
    assert!(h.sender.send(1, &push, &apns_token(1)).await.is_sent());

    h.apns_app(1, "KEYCCCCCCC", "TEAMAAAAAA", "com.example.one");
    assert!(h.sender.send(1, &push, &apns_token(1)).await.is_sent());
    assert_eq!(h.apns.requests()[1].key_id.as_deref(), Some("KEYCCCCCCC"));

    assert!(h.sender.has_channel(1, TokenKind::Apns));
    assert!(!h.sender.has_channel(1, TokenKind::Fcm));
    assert_eq!(
        h.sender.send(1, &push, &fcm_token(1)).await,
        Outcome::Failed { reason: "NoCredentials".into(), retryable: false }
    );
    h.sender.remove_app(1);
    assert!(!h.sender.has_channel(1, TokenKind::Apns));
    assert_eq!(
        h.sender.send(1, &push, &apns_token(1)).await,
        Outcome::Failed { reason: "NoCredentials".into(), retryable: false }
    );
    assert!(h.sender.stats(1, TokenKind::Apns).is_none());
}

#[tokio::test]
async fn a_push_apns_cannot_carry_fails_for_apns_only() {
    let h = harness(|_| {}).await;
    h.apns_app(1, "KEYAAAAAAA", "TEAMAAAAAA", "com.example.one");
    h.fcm_app(1, "project-one", "one@project-one.iam.gserviceaccount.com");
    let mut push = simple_push("p");
    push.notification.body = Some("x".repeat(4_100));
    push.notification.android = Some(herald_core::push::AndroidNotification {
        body: Some("short".into()),
        ..Default::default()
    });
    let push = h.sender.prepare(&push);
    let outcomes = h.sender.send_many(1, &push, &[apns_token(1), fcm_token(1)]).await;
    assert_eq!(outcomes[0], Outcome::Failed { reason: "PayloadTooLarge".into(), retryable: false });
    assert!(outcomes[1].is_sent());
    assert_eq!(h.apns.request_count(), 0);
}

#[tokio::test]
async fn the_recording_fake_behaves_like_a_sender() {
    let vendor: std::sync::Arc<dyn Vendor> = std::sync::Arc::new(RecordingVendor::new());
    let key = TestApnsKey::generate("KEYAAAAAAA", "TEAMAAAAAA");
    vendor.set_apns(1, &key.credentials("com.example.one", ApnsEnvironment::Production)).unwrap();
    let push = vendor.prepare(&simple_push("p"));
    let outcomes = vendor.send_many(1, &push, &[apns_token(1), fcm_token(1)]).await;
    assert!(outcomes[0].is_sent());
    assert_eq!(outcomes[1], Outcome::Failed { reason: "NoCredentials".into(), retryable: false });
}
