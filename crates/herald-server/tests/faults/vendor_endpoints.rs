//! APNs and FCM misbehave for a long while (answer 500, hang, cut the connection, rate-limit
//! with `Retry-After`), compressed to seconds by settings: the breaker opens and probes, online
//! devices get every push while the vendors are down, and once they recover every offline
//! device gets each notification accepted exactly once; the reports count the failures by
//! reason.

use std::collections::{BTreeMap, BTreeSet};

use herald_vendor::test_support::{ApnsTestServer, FcmTestServer, Reply};
use herald_vendor::ApnsEnvironment;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::vendors::VendorFakes;
use crate::common::{next_push, until, AppCreds, Herald, Start};

/// Offline devices per vendor.
const DEVICES: usize = 8;

fn apns_token(n: usize) -> String {
    format!("{n:064x}")
}

fn fcm_token(n: usize) -> String {
    format!("fcm-token-{n}")
}

/// Timings compressed so that minutes of outage take seconds: a request times out after
/// 2 s (shorter, a loaded test machine answers too late and the vendor gets the send twice),
/// one retry, three outages open the breaker for a second, rounds of sending again
/// from 200 ms up to a second apart.
fn config(fakes: &VendorFakes) -> String {
    fakes.config("request_timeout_ms = 2000\nconnect_timeout_ms = 2000\n")
        + "[vendor.retry]\nmax_retries = 1\nbase_delay_ms = 20\nmax_delay_ms = 50\n\
           max_retry_after_secs = 1\n\
           [vendor.breaker]\nfailures = 3\ncooldown_secs = 1\n\
           [vendor.redelivery]\nfirst_delay_ms = 200\nmax_delay_ms = 1000\n"
}

async fn push(herald: &Herald, app: &AppCreds, n: usize) -> String {
    let body = json!({"audience": {"all": true}, "message": {"n": n},
        "notification": {"title": format!("sale {n}")}, "ttl_secs": 3600});
    let (status, sent) = herald.signed(app, Method::POST, "/v1/pushes", Some(body)).await;
    assert_eq!(status, 201, "{sent}");
    sent["push_id"].as_str().unwrap().to_owned()
}

/// `(push id, token)` of every notification a vendor accepted (answered 200).
fn accepted(apns: &ApnsTestServer, fcm: &FcmTestServer) -> Vec<(String, String)> {
    let apns = apns.requests().into_iter().filter(|r| r.status == 200).map(|r| {
        (r.body["herald_push_id"].as_str().unwrap_or_default().to_owned(), r.token.clone())
    });
    let fcm = fcm.requests().into_iter().filter(|r| r.status == 200).map(|r| {
        let message = &r.body["message"];
        let push_id = message["data"]["herald_push_id"].as_str().unwrap_or_default().to_owned();
        (push_id, message["token"].as_str().unwrap_or_default().to_owned())
    });
    apns.chain(fcm).collect()
}

async fn report(herald: &Herald, app: &AppCreds, push_id: &str) -> Value {
    let path = format!("/v1/pushes/{push_id}/report");
    let (status, report) = herald.signed(app, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{report}");
    report
}

#[tokio::test]
async fn vendors_down_for_minutes_delay_notifications_without_losing_or_doubling_them() {
    let fakes = VendorFakes::start().await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("herald.toml");
    std::fs::write(&file, config(&fakes)).unwrap();
    let VendorFakes { apns, fcm, apns_key: key, fcm_account: account } = fakes;
    let start =
        Start { args: vec!["--config".into(), file.display().to_string()], ..Start::default() };
    let herald = Herald::start_with(&dir.path().join("data"), start);
    let app = herald
        .create_app_with(json!({"broadcast_min_interval_secs": 0, "broadcast_daily_quota": 1000}))
        .await;
    let credentials = json!(key.credentials("com.shop.app", ApnsEnvironment::Production));
    let (status, out) =
        herald.signed(&app, Method::PUT, "/v1/vendors/apns", Some(credentials)).await;
    assert_eq!(status, 200, "{out}");
    let credentials = json!(account.credentials(&fcm.token_uri()));
    let (status, out) =
        herald.signed(&app, Method::PUT, "/v1/vendors/fcm", Some(credentials)).await;
    assert_eq!(status, 200, "{out}");
    for n in 0..DEVICES {
        for (platform, kind, token) in
            [("ios", "apns", apns_token(n)), ("android", "fcm", fcm_token(n))]
        {
            let body = json!({"account": format!("{platform}-{n}"), "platform": platform,
                "package": "com.shop.app", "vendor_token": {"kind": kind, "token": token}});
            let path = format!("/v1/devices/{platform}-{n}");
            let (status, out) = herald.signed(&app, Method::PUT, &path, Some(body)).await;
            assert_eq!(status, 200, "{out}");
        }
    }
    let mut online = herald.device(&app, "live", "live-phone", "android").await;

    // Healthy first.
    let mut pushes = vec![push(&herald, &app, 0).await];
    assert_eq!(next_push(&mut online).await.push_id, pushes[0]);
    until("the healthy vendor sends", || accepted(&apns, &fcm).len() == 2 * DEVICES).await;

    // Down: one fault after another, a push in each; the online device gets every push while
    // the vendors are still down.
    let faults = [
        Reply::InternalError,
        Reply::Hang,
        Reply::Reset,
        Reply::TooManyRequests { retry_after: Some(1) },
        Reply::Unavailable { retry_after: None },
    ];
    let requests_before = apns.request_count() + fcm.request_count();
    for (n, fault) in faults.iter().enumerate() {
        apns.set_default(fault.clone());
        fcm.set_default(fault.clone());
        let seen = (apns.request_count(), fcm.request_count());
        let push_id = push(&herald, &app, n + 1).await;
        assert_eq!(
            next_push(&mut online).await.push_id,
            push_id,
            "online delivery during {fault:?}"
        );
        pushes.push(push_id);
        until(&format!("both vendors see requests during {fault:?}"), || {
            apns.request_count() > seen.0 && fcm.request_count() > seen.1
        })
        .await;
    }
    let requests_during_outage = apns.request_count() + fcm.request_count() - requests_before;

    // Back: every notification of every push goes out, once.
    apns.set_default(Reply::Ok);
    fcm.set_default(Reply::Ok);
    let expected: BTreeSet<(String, String)> = pushes
        .iter()
        .flat_map(|push_id| {
            (0..DEVICES).flat_map(move |n| {
                [(push_id.clone(), apns_token(n)), (push_id.clone(), fcm_token(n))]
            })
        })
        .collect();
    until("every notification accepted after the recovery", || {
        accepted(&apns, &fcm).into_iter().collect::<BTreeSet<_>>() == expected
    })
    .await;
    let mut times: BTreeMap<(String, String), usize> = BTreeMap::new();
    for sent in accepted(&apns, &fcm) {
        *times.entry(sent).or_default() += 1;
    }
    let doubled: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "accepted more than once: {doubled:?}");

    // The reports: every device sent once, the failures by reason.
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for push_id in &pushes {
        let mut shown = report(&herald, &app, push_id).await;
        for _ in 0..100 {
            let sent = |platform: &str| shown["platforms"][platform]["vendor_sent"].as_u64();
            if sent("ios") == Some(DEVICES as u64) && sent("android") == Some(DEVICES as u64) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            shown = report(&herald, &app, push_id).await;
        }
        for platform in ["ios", "android"] {
            let counts = &shown["platforms"][platform];
            assert_eq!(counts["vendor_sent"], DEVICES, "{push_id} {platform}: {shown}");
            for (reason, n) in counts["vendor_failed"].as_object().into_iter().flatten() {
                *failures.entry(format!("{platform}:{reason}")).or_default() +=
                    n.as_u64().unwrap_or_default();
            }
        }
    }
    let total: u64 = failures.values().sum();
    eprintln!(
        "{} pushes to {} offline devices; {requests_during_outage} requests reached the vendors \
         while down; failed sends by reason: {failures:?}",
        pushes.len(),
        2 * DEVICES
    );
    for reason in ["ios:CircuitOpen", "android:CircuitOpen"] {
        assert!(failures.get(reason).is_some_and(|n| *n > 0), "{reason} missing: {failures:?}");
    }
    assert!(
        failures.keys().any(|r| r.starts_with("ios:") && !r.ends_with("CircuitOpen")),
        "APNs' own failures are counted: {failures:?}"
    );
    // The breaker held: most sends during the outage failed at once, without a request.
    assert!(
        requests_during_outage < total,
        "{requests_during_outage} requests for {total} failed sends: {failures:?}"
    );
    herald.stop();
}
