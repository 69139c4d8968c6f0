//! Offline notifications through APNs and FCM, against local HTTP/2 servers that behave like
//! them, through the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::vendors::VendorFakes;
use common::{next_push, until, Herald, Start};
use herald_vendor::test_support::{ca_pem, ApnsTestServer, Reply, TestApnsKey};
use herald_vendor::ApnsEnvironment;
use reqwest::Method;
use serde_json::{json, Value};

const LIVE_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const DEAD_TOKEN: &str = "deaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddead";
const ONLINE_TOKEN: &str = "0000000000000000000000000000000000000000000000000000000000000001";

#[tokio::test]
async fn offline_devices_get_vendor_notifications_and_dead_tokens_are_pruned() {
    let fakes = VendorFakes::start().await;
    fakes.apns.script(DEAD_TOKEN, [Reply::Unregistered]);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(&config, fakes.config("")).unwrap();
    let VendorFakes { apns, fcm, apns_key: key, fcm_account: account } = fakes;
    let data = dir.path().join("data");
    let start =
        Start { args: vec!["--config".into(), config.display().to_string()], ..Start::default() };
    let herald = Herald::start_with(&data, start);
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;

    let apns_credentials = key.credentials("com.shop.app", ApnsEnvironment::Production);
    let (status, shown) =
        herald.signed(&app, Method::PUT, "/v1/vendors/apns", Some(json!(apns_credentials))).await;
    assert_eq!(status, 200, "{shown}");
    assert!(!shown.to_string().contains("PRIVATE KEY"), "secrets are never shown: {shown}");
    let (status, shown) = herald
        .signed(
            &app,
            Method::PUT,
            "/v1/vendors/fcm",
            Some(json!(account.credentials(&fcm.token_uri()))),
        )
        .await;
    assert_eq!(status, 200, "{shown}");
    assert!(!shown.to_string().contains("PRIVATE KEY"));
    let (status, err) =
        herald.signed(&app, Method::PUT, "/v1/vendors/apns", Some(json!({"key_p8": "x"}))).await;
    assert_eq!(status, 400, "{err}");
    let (status, _) = herald.signed(&app, Method::GET, "/v1/vendors/hms", None).await;
    assert_eq!(status, 404);

    for (device, account, platform, kind, token) in [
        ("ios-off", "ann", "ios", "apns", LIVE_TOKEN),
        ("ios-dead", "bob", "ios", "apns", DEAD_TOKEN),
        ("android-off", "cat", "android", "fcm", "fcm-token-cat"),
        ("ios-on", "dan", "ios", "apns", ONLINE_TOKEN),
    ] {
        let body = json!({"account": account, "platform": platform, "package": "com.shop.app",
            "vendor_token": {"kind": kind, "token": token}});
        let (status, out) =
            herald.signed(&app, Method::PUT, &format!("/v1/devices/{device}"), Some(body)).await;
        assert_eq!(status, 200, "{out}");
    }
    let mut online = herald.device(&app, "dan", "ios-on", "ios").await;

    let notification = json!({"title": "Sale", "body": "50% off", "ios": {"badge": 3, "sound": "ding.caf"},
        "android": {"channel_id": "promo"}});
    let (status, quiet) = herald
        .signed(&app, Method::POST, "/v1/pushes",
            Some(json!({"audience": {"all": true}, "message": 0, "notification": {"title": "quiet"}, "vendor_push": false})))
        .await;
    assert_eq!(status, 201, "{quiet}");
    let (status, sent) = herald
        .signed(&app, Method::POST, "/v1/pushes",
            Some(json!({"audience": {"all": true}, "message": 1, "notification": notification, "ttl_secs": 3600})))
        .await;
    assert_eq!(status, 201, "{sent}");
    let push_id = sent["push_id"].as_str().unwrap().to_owned();
    assert_eq!(next_push(&mut online).await.push_id, quiet["push_id"].as_str().unwrap());
    assert_eq!(next_push(&mut online).await.push_id, push_id);

    until("the vendor sends", || apns.request_count() >= 2 && fcm.request_count() >= 1).await;
    let apns_requests = apns.requests();
    assert_eq!(
        apns_requests.len(),
        2,
        "one notification per offline iOS device, none for the online one nor the quiet push"
    );
    let live = apns_requests.iter().find(|r| r.token == LIVE_TOKEN).expect("the live token got it");
    assert_eq!(live.headers.get("apns-topic").map(String::as_str), Some("com.shop.app"));
    assert_eq!(live.headers.get("apns-push-type").map(String::as_str), Some("alert"));
    assert_eq!(live.headers.get("apns-priority").map(String::as_str), Some("10"));
    assert_eq!(live.key_id.as_deref(), Some("KEYID12345"), "the JWT verified with the app's key");
    assert_eq!(live.body["aps"]["alert"], json!({"title": "Sale", "body": "50% off"}));
    assert_eq!(
        (live.body["aps"]["badge"].clone(), live.body["herald_push_id"].clone()),
        (json!(3), json!(push_id))
    );

    let fcm_requests = fcm.requests();
    assert_eq!(fcm_requests.len(), 1);
    let message = &fcm_requests[0].body["message"];
    assert_eq!(message["token"], "fcm-token-cat");
    assert_eq!(message["notification"]["title"], "Sale");
    assert_eq!(message["android"]["notification"]["channel_id"], "promo");
    assert_eq!(message["data"]["herald_push_id"], json!(push_id));

    let report = async {
        let (_, report) =
            herald.signed(&app, Method::GET, &format!("/v1/pushes/{push_id}/report"), None).await;
        report
    };
    let mut report: Value = report.await;
    for _ in 0..100 {
        if report["platforms"]["ios"]["vendor_failed"]["Unregistered"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, again) =
            herald.signed(&app, Method::GET, &format!("/v1/pushes/{push_id}/report"), None).await;
        report = again;
    }
    assert_eq!(report["platforms"]["ios"]["vendor_sent"], 1, "{report}");
    assert_eq!(report["platforms"]["ios"]["vendor_failed"], json!({"Unregistered": 1}));
    assert_eq!(report["platforms"]["android"]["vendor_sent"], 1);
    let (_, dead) = herald.signed(&app, Method::GET, "/v1/devices/ios-dead", None).await;
    assert_eq!(dead["vendor_token"], Value::Null, "the dead token was removed");
    let (_, live_device) = herald.signed(&app, Method::GET, "/v1/devices/ios-off", None).await;
    assert_eq!(live_device["vendor_token"]["token"], LIVE_TOKEN);
    let (_, metrics) = herald.raw(herald.request(Method::GET, "/metrics")).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    for series in [
        r#"herald_vendor_notifications_total{vendor="apns",outcome="sent"} 1"#,
        r#"herald_vendor_notifications_total{vendor="apns",outcome="unregistered"} 1"#,
        r#"herald_vendor_notifications_total{vendor="fcm",outcome="sent"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == series), "{series} missing from:\n{metrics}");
    }

    // Credentials survive a restart: they are sealed in the store and installed at start-up.
    herald.stop();
    let start =
        Start { args: vec!["--config".into(), config.display().to_string()], ..Start::default() };
    let herald = Herald::start_with(&data, start);
    let (status, shown) = herald.signed(&app, Method::GET, "/v1/vendors/apns", None).await;
    assert_eq!((status, shown["key_id"].as_str()), (200, Some("KEYID12345")), "{shown}");
    let (status, _) = herald
        .signed(&app, Method::POST, "/v1/pushes",
            Some(json!({"audience": {"accounts": ["ann"]}, "message": 2, "notification": {"title": "again"}})))
        .await;
    assert_eq!(status, 201);
    until("a send after the restart", || apns.request_count() >= 3).await;
    let (status, _) = herald.signed(&app, Method::DELETE, "/v1/vendors/fcm", None).await;
    assert_eq!(status, 204);
    let (status, _) = herald.signed(&app, Method::GET, "/v1/vendors/fcm", None).await;
    assert_eq!(status, 404);
}

// Two threads: the APNs look-alike keeps answering while the test blocks on herald's exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_send_under_way_at_sigterm_is_finished_and_counted() {
    let apns = ApnsTestServer::start().await.unwrap();
    let key = TestApnsKey::generate("KEYID12345", "TEAMID1234");
    apns.add_key(&key);
    // The first attempt is answered "come back in 2 s": SIGTERM arrives while the send waits.
    apns.script(LIVE_TOKEN, [Reply::Unavailable { retry_after: Some(2) }, Reply::Ok]);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    let toml = format!(
        "[vendor]\nextra_root_pem = {pem:?}\n[vendor.apns]\nproduction_url = {url:?}\nsandbox_url = {url:?}\n",
        pem = ca_pem(),
        url = apns.url(),
    );
    std::fs::write(&config, toml).unwrap();
    let data = dir.path().join("data");
    let start =
        Start { args: vec!["--config".into(), config.display().to_string()], ..Start::default() };
    let herald = Herald::start_with(&data, start.clone());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let credentials = key.credentials("com.shop.app", ApnsEnvironment::Production);
    let (status, _) =
        herald.signed(&app, Method::PUT, "/v1/vendors/apns", Some(json!(credentials))).await;
    assert_eq!(status, 200);
    let body = json!({"account": "ann", "platform": "ios", "package": "com.shop.app",
        "vendor_token": {"kind": "apns", "token": LIVE_TOKEN}});
    let (status, _) = herald.signed(&app, Method::PUT, "/v1/devices/ios-off", Some(body)).await;
    assert_eq!(status, 200);
    let push = json!({"audience": {"all": true}, "message": 1, "notification": {"title": "Sale"},
        "ttl_secs": 3600});
    let (status, sent) = herald.signed(&app, Method::POST, "/v1/pushes", Some(push)).await;
    assert_eq!(status, 201, "{sent}");
    let push_id = sent["push_id"].as_str().unwrap().to_owned();

    until("the first vendor attempt", || apns.request_count() >= 1).await;
    herald.stop();
    assert_eq!(apns.request_count(), 2, "shutdown waited for the retry");

    let herald = Herald::start_with(&data, start);
    let (_, report) =
        herald.signed(&app, Method::GET, &format!("/v1/pushes/{push_id}/report"), None).await;
    assert_eq!(report["platforms"]["ios"]["vendor_sent"], 1, "{report}");
}
