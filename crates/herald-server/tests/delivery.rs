//! Online and offline delivery through the real binary, with SDK clients as devices.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{next_push, AppCreds, Herald, Start};
use herald_client::Push;
use reqwest::Method;
use serde_json::{json, Value};

async fn push(herald: &Herald, app: &AppCreds, body: Value) -> String {
    let (status, out) = herald.signed(app, Method::POST, "/v1/pushes", Some(body)).await;
    assert!(status == 201 || status == 200, "{status} {out}");
    out["push_id"].as_str().unwrap().to_owned()
}

/// Pushes a sentinel to everyone: a client's next push being the sentinel proves it received
/// nothing in between, without waiting for an absence.
async fn sentinel(herald: &Herald, app: &AppCreds, text: &str) {
    push(herald, app, json!({"audience": {"all": true}, "message": {"sentinel": text}})).await;
}

fn text(push: &Push) -> Value {
    push.message.clone()
}

async fn post(herald: &Herald, app: &AppCreds, path: &str, body: Value) {
    let (status, out) = herald.signed(app, Method::POST, path, Some(body)).await;
    assert_eq!(status, 200, "{out}");
}

#[tokio::test]
async fn tag_and_attribute_audiences_reach_exactly_the_right_devices() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let mut alice = herald.device(&app, "alice", "alice-phone", "ios").await;
    let mut bob = herald.device(&app, "bob", "bob-phone", "android").await;
    let mut carol = herald.device(&app, "carol", "carol-phone", "android").await;
    post(&herald, &app, "/v1/tags/add", json!({"accounts": ["alice", "bob"], "tags": ["stock-a"]}))
        .await;
    let (status, _) = herald
        .signed(&app, Method::PUT, "/v1/attributes/names", Some(json!({"names": {"0": "city"}})))
        .await;
    assert_eq!(status, 200);
    post(
        &herald,
        &app,
        "/v1/attributes/set",
        json!({"accounts": [{"account": "carol", "attributes": {"city": "Shenzhen"}}]}),
    )
    .await;

    push(&herald, &app, json!({"audience": {"tag": "stock-a"}, "message": {"n": 1},
        "notification": {"title": "A", "body": "up", "ios": {"subtitle": "now"}, "android": {"channel_id": "stocks"}}})).await;
    push(
        &herald,
        &app,
        json!({"audience": {"attr": {"name": "city", "eq": "Shenzhen"}}, "message": {"n": 2}}),
    )
    .await;
    push(
        &herald,
        &app,
        json!({"audience": {"tag": "stock-a"}, "message": {"n": 3}, "platforms": ["android"]}),
    )
    .await;
    sentinel(&herald, &app, "end").await;

    let a1 = next_push(&mut alice).await;
    assert_eq!(text(&a1), json!({"n": 1}));
    assert_eq!(
        a1.notification.as_ref().unwrap()["subtitle"],
        "now",
        "iOS notification resolved for iOS"
    );
    assert_eq!(
        text(&next_push(&mut alice).await),
        json!({"sentinel": "end"}),
        "alice got nothing else"
    );

    let b1 = next_push(&mut bob).await;
    assert_eq!(b1.notification.as_ref().unwrap()["channel_id"], "stocks");
    assert!(b1.notification.as_ref().unwrap().get("subtitle").is_none());
    assert_eq!(text(&next_push(&mut bob).await), json!({"n": 3}));
    assert_eq!(text(&next_push(&mut bob).await), json!({"sentinel": "end"}));

    assert_eq!(text(&next_push(&mut carol).await), json!({"n": 2}));
    assert_eq!(text(&next_push(&mut carol).await), json!({"sentinel": "end"}));
}

#[tokio::test]
async fn offline_pushes_arrive_in_order_and_online_only_ones_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    post(&herald, &app, "/v1/accounts/import", json!({"accounts": ["dave"]})).await;

    push(&herald, &app, json!({"audience": {"accounts": ["dave"]}, "message": {"n": 1}})).await;
    push(
        &herald,
        &app,
        json!({"audience": {"all": true}, "message": {"n": 2}, "online_only": true}),
    )
    .await;
    push(&herald, &app, json!({"audience": {"all": true}, "message": {"n": 3}, "ttl_secs": 1}))
        .await;
    push(&herald, &app, json!({"audience": {"accounts": ["dave"]}, "message": {"n": 4}})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut phone = herald.device(&app, "dave", "dave-phone", "ios").await;
    let first = next_push(&mut phone).await;
    let second = next_push(&mut phone).await;
    assert_eq!(
        (text(&first), text(&second)),
        (json!({"n": 1}), json!({"n": 4})),
        "in order, expired and online-only left out"
    );
    assert!(first.seq < second.seq);
    push(
        &herald,
        &app,
        json!({"audience": {"all": true}, "message": {"n": 5}, "online_only": true}),
    )
    .await;
    assert_eq!(
        text(&next_push(&mut phone).await),
        json!({"n": 5}),
        "online-only reaches online devices"
    );
}

#[tokio::test]
async fn acked_pushes_are_not_resent_and_unacked_ones_are() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let mut phone = herald.device(&app, "erin", "erin-phone", "android").await;
    push(&herald, &app, json!({"audience": {"accounts": ["erin"]}, "message": {"n": 1}})).await;
    push(&herald, &app, json!({"audience": {"accounts": ["erin"]}, "message": {"n": 2}})).await;
    let first = next_push(&mut phone).await;
    let second = next_push(&mut phone).await;
    assert_eq!(text(&second), json!({"n": 2}));
    phone.ack(first.seq).unwrap();
    // The ack travels before the close on the same connection.
    phone.close().await;

    // A reinstall that remembers nothing: the server's cursor decides.
    let mut again = herald.device(&app, "erin", "erin-phone", "android").await;
    let resent = next_push(&mut again).await;
    assert_eq!(
        (text(&resent), resent.seq),
        (json!({"n": 2}), second.seq),
        "only the unacked push comes again"
    );
    again.ack(resent.seq).unwrap();
    again.close().await;

    let mut third = herald.device(&app, "erin", "erin-phone", "android").await;
    sentinel(&herald, &app, "after-acks").await;
    assert_eq!(text(&next_push(&mut third).await), json!({"sentinel": "after-acks"}));
}

#[tokio::test]
async fn two_devices_of_one_account_both_receive() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let mut phone = herald.device(&app, "frank", "frank-phone", "ios").await;
    let mut tablet = herald.device(&app, "frank", "frank-tablet", "android").await;
    push(&herald, &app, json!({"audience": {"accounts": ["frank"]}, "message": {"hello": "both"}}))
        .await;
    assert_eq!(text(&next_push(&mut phone).await), json!({"hello": "both"}));
    assert_eq!(text(&next_push(&mut tablet).await), json!({"hello": "both"}));
}

#[tokio::test]
async fn the_per_device_cap_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald
        .create_app_with(json!({"offline_pushes_per_device": 2, "broadcast_min_interval_secs": 0}))
        .await;
    post(&herald, &app, "/v1/accounts/import", json!({"accounts": ["gina"]})).await;
    for n in 1..=4 {
        push(&herald, &app, json!({"audience": {"accounts": ["gina"]}, "message": {"n": n}})).await;
    }
    // Each push is dispatched in order; wait until the last one is done before connecting.
    wait_dispatched(&herald, &app, 4).await;
    let mut phone = herald.device(&app, "gina", "gina-phone", "web").await;
    assert_eq!(text(&next_push(&mut phone).await), json!({"n": 3}));
    assert_eq!(text(&next_push(&mut phone).await), json!({"n": 4}));
    sentinel(&herald, &app, "capped").await;
    assert_eq!(text(&next_push(&mut phone).await), json!({"sentinel": "capped"}));
}

/// Waits until `count` pushes of the app have been dispatched (seqs 1..=count exist), by
/// polling the estimate-free push listing: a push with the highest seq reports `done`.
async fn wait_dispatched(herald: &Herald, app: &AppCreds, count: u64) {
    let probe = push(
        herald,
        app,
        json!({"audience": {"accounts": ["nobody"]}, "message": {"probe": count}}),
    )
    .await;
    for _ in 0..400 {
        let (_, view) = herald.signed(app, Method::GET, &format!("/v1/pushes/{probe}"), None).await;
        if view["status"] == "done" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("pushes were not dispatched");
}

#[tokio::test]
async fn a_killed_server_loses_no_stored_push() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    post(&herald, &app, "/v1/accounts/import", json!({"accounts": ["hank"]})).await;
    let id =
        push(&herald, &app, json!({"audience": {"accounts": ["hank"]}, "message": {"kept": true}}))
            .await;
    drop(herald); // SIGKILL: no graceful shutdown.

    let herald = Herald::start(dir.path());
    let mut phone = herald.device(&app, "hank", "hank-phone", "ios").await;
    let got = next_push(&mut phone).await;
    assert_eq!((got.push_id.as_str(), text(&got)), (id.as_str(), json!({"kept": true})));
}

#[tokio::test]
async fn push_api_refusals_and_idempotency() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app =
        herald.create_app_with(json!({"message_bytes": 100, "max_offline_ttl_secs": 3600})).await;
    let send = |body: Value| {
        let herald = &herald;
        let app = &app;
        async move { herald.signed(app, Method::POST, "/v1/pushes", Some(body)).await }
    };
    let (status, err) =
        send(json!({"audience": {"all": true}, "message": {"x": "y".repeat(200)}})).await;
    assert_eq!((status, err["error"]["limit"].as_str()), (422, Some("message_bytes")), "{err}");
    let (status, err) =
        send(json!({"audience": {"all": true}, "message": 1, "ttl_secs": 3601})).await;
    assert_eq!(
        (status, err["error"]["limit"].as_str()),
        (422, Some("max_offline_ttl_secs")),
        "{err}"
    );
    let (status, err) = send(json!({"audience": {"tagg": "x"}, "message": 1})).await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("invalid_audience")), "{err}");
    let (status, err) = send(json!({"audience": {"all": true}})).await;
    assert_eq!(status, 400, "{err}");
    let (status, err) =
        send(json!({"audience": {"all": true}, "message": 1, "notification": {"titel": "x"}}))
            .await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("invalid_json")), "{err}");

    let (status, first) =
        send(json!({"audience": {"all": true}, "message": 1, "idempotency_key": "k-1"})).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) =
        send(json!({"audience": {"all": true}, "message": 2, "idempotency_key": "k-1"})).await;
    assert_eq!(
        (status, &again["push_id"], again["duplicate"].as_bool()),
        (200, &first["push_id"], Some(true))
    );
    let (status, err) = herald.signed(&app, Method::GET, "/v1/pushes/p_unknown", None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn cli_pushes_and_listens() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let env = [
        ("HERALD_SERVER", herald.base.as_str()),
        ("HERALD_APP_KEY", app.key.as_str()),
        ("HERALD_APP_SECRET", app.secret.as_str()),
    ];
    let (ok, _, err) = common::cli(&["account", "import", "ivy"], &env);
    assert!(ok, "{err}");
    let (ok, out, err) = common::cli(
        &[
            "push",
            "--audience",
            r#"{"accounts":["ivy"]}"#,
            "--message",
            r#"{"hi":"ivy"}"#,
            "--notification",
            r#"{"title":"Hello"}"#,
            "--ttl",
            "600",
            "--json",
        ],
        &env,
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let (ok, out, err) = common::cli(
        &[
            "listen",
            "--account",
            "ivy",
            "--device",
            "ivy-cli",
            "--platform",
            "ios",
            "--count",
            "1",
            "--timeout",
            "20",
        ],
        &env,
    );
    assert!(ok, "{err}");
    let line: Value = serde_json::from_str(out.lines().next().expect("one push printed")).unwrap();
    assert_eq!((&line["push_id"], &line["message"]), (&created["push_id"], &json!({"hi": "ivy"})));
    assert_eq!(line["notification"]["title"], "Hello");

    let (ok, out, _) = common::cli(&["push", "get", created["push_id"].as_str().unwrap()], &env);
    assert!(ok && out.contains("done"), "{out}");
    let (ok, out, _) = common::cli(&["token", "--account", "ivy"], &env);
    assert!(ok && out.trim().contains('.'), "{out}");
}

/// Reconnects of an unchanged install skip the store; every other change of the device in the
/// store must still be seen by the next login.
#[tokio::test]
async fn logins_after_the_device_changed_elsewhere_register_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let device_path = "/v1/devices/gina-phone";
    let relogin = || async {
        let mut client = herald.device(&app, "gina", "gina-phone", "ios").await;
        sentinel(&herald, &app, "back").await;
        assert_eq!(text(&next_push(&mut client).await), json!({"sentinel": "back"}));
        client.close().await;
    };

    relogin().await;
    relogin().await;
    let (status, device) = herald.signed(&app, Method::GET, device_path, None).await;
    assert_eq!((status, device["account"].as_str()), (200, Some("gina")), "{device}");

    // Unregistered through the API: the next login registers it again.
    let (status, _) = herald.signed(&app, Method::DELETE, device_path, None).await;
    assert_eq!(status, 204);
    relogin().await;
    let (status, device) = herald.signed(&app, Method::GET, device_path, None).await;
    assert_eq!((status, device["account"].as_str()), (200, Some("gina")), "{device}");

    // Moved to another account through the API: the login moves it back.
    let body = json!({"account": "hank", "platform": "ios", "package": "com.shop"});
    let (status, out) = herald.signed(&app, Method::PUT, device_path, Some(body)).await;
    assert_eq!(status, 200, "{out}");
    relogin().await;
    let (_, device) = herald.signed(&app, Method::GET, device_path, None).await;
    assert_eq!(device["account"], "gina", "{device}");

    // The account deleted: the login makes it (and the device) anew.
    let (status, _) = herald.signed(&app, Method::DELETE, "/v1/accounts/gina", None).await;
    assert_eq!(status, 204);
    relogin().await;
    let (status, account) = herald.signed(&app, Method::GET, "/v1/accounts/gina", None).await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["devices"][0]["device_id"], "gina-phone", "{account}");
}

#[tokio::test]
async fn pushes_sent_at_once_arrive_complete_in_order_and_are_each_reported() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let mut alice = herald.device(&app, "alice", "alice-phone", "ios").await;
    let mut bob = herald.device(&app, "bob", "bob-phone", "android").await;
    post(&herald, &app, "/v1/tags/add", json!({"accounts": ["alice"], "tags": ["a"]})).await;
    post(&herald, &app, "/v1/tags/add", json!({"accounts": ["bob"], "tags": ["b"]})).await;

    // Sent concurrently, so the dispatcher finds many waiting and fans them out together.
    let audience = |n: u64| match n % 3 {
        0 => json!({"tag": "a"}),
        1 => json!({"tag": "b"}),
        _ => json!({"all": true}),
    };
    let sends = (0..60u64).map(|n| {
        let body = json!({"audience": audience(n), "message": {"n": n}, "ttl_secs": 300});
        let (herald, app) = (&herald, &app);
        async move { (n, push(herald, app, body).await) }
    });
    let ids = futures_util::future::join_all(sends).await;
    sentinel(&herald, &app, "end").await;

    for (client, skip) in [(&mut alice, 1), (&mut bob, 0)] {
        let mut expected: Vec<u64> = (0..60).filter(|n| n % 3 != skip).collect();
        let mut got = Vec::new();
        let mut last_seq = 0;
        loop {
            let push = next_push(client).await;
            assert!(push.seq > last_seq, "seq {} after {last_seq}", push.seq);
            last_seq = push.seq;
            match text(&push).get("n") {
                Some(n) => got.push(n.as_u64().unwrap()),
                None => break,
            }
        }
        // Acceptance order among concurrent requests is the server's; seqs follow it.
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected);
    }

    for (n, id) in ids {
        let (_, report) =
            herald.signed(&app, Method::GET, &format!("/v1/pushes/{id}/report"), None).await;
        let sent = |platform: &str| report["platforms"][platform]["sent_online"].as_u64();
        let expected = match n % 3 {
            0 => (Some(1), Some(0)),
            1 => (Some(0), Some(1)),
            _ => (Some(1), Some(1)),
        };
        assert_eq!((sent("ios"), sent("android")), expected, "push {n}: {report}");
    }
}

#[tokio::test]
async fn stored_pushes_beyond_the_memory_budget_are_read_back() {
    let dir = tempfile::tempdir().unwrap();
    // Room for the content of about two of the eight pushes.
    let start =
        Start { env: vec![("HERALD_INBOX_CACHE_BYTES".into(), "200".into())], ..Start::default() };
    let herald = Herald::start_with(dir.path(), start.clone());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    post(&herald, &app, "/v1/accounts/import", json!({"accounts": ["ida"]})).await;
    let pad = "x".repeat(50);
    for n in 0..8 {
        push(&herald, &app, json!({"audience": {"accounts": ["ida"]}, "message": {"n": n, "pad": pad},
            "notification": {"title": "T", "ios": {"subtitle": format!("s{n}")}}, "sender": "shop"}))
        .await;
    }
    wait_dispatched(&herald, &app, 9).await;

    let receive_all = |mut client: herald_client::Client| async move {
        let mut got = Vec::new();
        for _ in 0..8 {
            let push = next_push(&mut client).await;
            let subtitle = push.notification.as_ref().unwrap()["subtitle"].clone();
            got.push((text(&push)["n"].as_u64().unwrap(), subtitle, push.sender.clone()));
        }
        client.close().await;
        got
    };
    let expected: Vec<_> =
        (0..8).map(|n| (n, json!(format!("s{n}")), Some("shop".to_owned()))).collect();
    let phone = herald.device(&app, "ida", "ida-phone", "ios").await;
    assert_eq!(receive_all(phone).await, expected);
    let (_, metrics) = herald.raw(herald.request(Method::GET, "/metrics")).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(metrics.contains("herald_inbox_content_reads_total"), "{metrics}");
    herald.stop();

    // At start-up too, only the newest contents are loaded; the rest is read when needed.
    let herald = Herald::start_with(dir.path(), start);
    let tablet = herald.device(&app, "ida", "ida-tablet", "ios").await;
    assert_eq!(receive_all(tablet).await, expected);
}
