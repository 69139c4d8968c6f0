//! Web Push through the real binary: VAPID credentials set through the API, a browser's
//! subscription given in the hello, the encrypted notification a push-service look-alike
//! receives and decrypts, dead subscriptions pruned, and a service worker's reports.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{code, until, Herald, Start};
use herald_client::{mint_token, Client, ClientError, ConnectOptions, Event, Reconnect};
use herald_client::{VendorKind, VendorToken};
use herald_vendor::test_support::{ca_pem, Reply, TestSubscriber, WebPushTestServer};
use herald_vendor::{WebPushCredentials, WebPushSubscription};
use reqwest::Method;
use serde_json::{json, Value};

const SUBJECT: &str = "mailto:ops@example.com";

/// Webhook events the app's back end received, as JSON.
type Received = Arc<Mutex<Vec<Value>>>;

/// A back end that records every webhook event posted to it; returns its URL.
async fn webhook_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let log = received.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, hook).await });
    (url, received)
}

/// herald trusting the look-alike's certificate authority (its endpoints are the
/// subscriptions' own, nothing else to configure).
fn start(dir: &std::path::Path) -> Herald {
    let config = dir.join("herald.toml");
    std::fs::write(&config, format!("[vendor]\nextra_root_pem = {:?}\n", ca_pem())).unwrap();
    let start =
        Start { args: vec!["--config".into(), config.display().to_string()], ..Start::default() };
    Herald::start_with(&dir.join("data"), start)
}

fn client_token(app: &common::AppCreds, account: &str) -> String {
    mint_token(&app.key, &app.secret, account, chrono::Utc::now().timestamp() + 3600)
}

/// A browser tab of `account` whose hello carries `subscription` as its vendor token.
async fn browser(
    herald: &Herald,
    app: &common::AppCreds,
    account: &str,
    device: &str,
    subscription: String,
) -> Result<Client, ClientError> {
    let mut options =
        ConnectOptions::new(client_token(app, account), device, "web", "shop.example");
    options.vendor_token = Some(VendorToken { kind: VendorKind::WebPush, token: subscription });
    options.reconnect = Reconnect { enabled: false, ..Reconnect::default() };
    let url = format!("{}/v1/connect", herald.base.replace("http://", "ws://"));
    Client::connect(url, options).await
}

/// The report of a push once `ready` holds for it (the vendor sends finish in the background).
async fn report_when(
    herald: &Herald,
    app: &common::AppCreds,
    push_id: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/v1/pushes/{push_id}/report");
    let mut report = Value::Null;
    for _ in 0..200 {
        report = herald.signed(app, Method::GET, &path, None).await.1;
        if ready(&report) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report
}

/// `POST /v1/client/{what}` as a service worker makes it.
async fn device_report(herald: &Herald, token: &str, what: &str, body: Value) -> (u16, Value) {
    let request = herald.request(Method::POST, &format!("/v1/client/{what}"));
    herald.raw(request.bearer_auth(token).json(&body)).await
}

#[tokio::test]
async fn vapid_credentials_are_set_shown_and_removed_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let herald = start(dir.path());
    let app = herald.create_app("shop").await;
    let credentials = WebPushCredentials::generate(SUBJECT).unwrap();

    let (status, shown) =
        herald.signed(&app, Method::PUT, "/v1/vendors/webpush", Some(json!(credentials))).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["public_key"], credentials.public_key.as_str());
    assert_eq!(shown["subject"], SUBJECT);
    assert_eq!(shown["key_fingerprint"].as_str().map(str::len), Some(16));
    assert!(!shown.to_string().contains(&credentials.private_key), "never the private key");
    let (status, read) = herald.signed(&app, Method::GET, "/v1/vendors/webpush", None).await;
    assert_eq!((status, &read), (200, &shown));

    // A public key of another pair, a subject that is no contact: refused, naming the field.
    let other = WebPushCredentials::generate(SUBJECT).unwrap();
    let mismatched = json!({"private_key": credentials.private_key, "public_key": other.public_key,
        "subject": SUBJECT});
    let (status, err) =
        herald.signed(&app, Method::PUT, "/v1/vendors/webpush", Some(mismatched)).await;
    assert_eq!((status, code(&err)), (400, "invalid_request"), "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("public_key"), "{err}");
    let no_contact = json!({"private_key": credentials.private_key,
        "public_key": credentials.public_key, "subject": "ops@example.com"});
    let (status, err) =
        herald.signed(&app, Method::PUT, "/v1/vendors/webpush", Some(no_contact)).await;
    assert!(status == 400 && err.to_string().contains("subject"), "{err}");
    let (_, still) = herald.signed(&app, Method::GET, "/v1/vendors/webpush", None).await;
    assert_eq!(still, shown, "a refused change keeps the installed keys");

    // The CLI makes a key pair, or imports one, and shows the public key, never the private.
    let env = [
        ("HERALD_SERVER", herald.base.as_str()),
        ("HERALD_APP_KEY", app.key.as_str()),
        ("HERALD_APP_SECRET", app.secret.as_str()),
    ];
    let (ok, out, err) =
        common::cli(&["vendor", "set-webpush", "--generate", "--subject", SUBJECT], &env);
    assert!(ok && out.contains("public_key") && !out.contains("private_key"), "{out}{err}");
    assert!(!out.contains(&credentials.public_key), "a new pair: {out}");
    let import = [
        "vendor",
        "set-webpush",
        "--private-key",
        &credentials.private_key,
        "--public-key",
        &credentials.public_key,
        "--subject",
        SUBJECT,
    ];
    let (ok, out, err) = common::cli(&import, &env);
    assert!(ok && out.contains(&credentials.public_key), "{out}{err}");
    assert!(!out.contains(&credentials.private_key), "{out}");
    let (ok, out, _) = common::cli(&["vendor", "get", "webpush"], &env);
    assert!(ok && out.contains(&credentials.public_key), "{out}");
    let (ok, _, err) = common::cli(
        &["vendor", "set-webpush", "--generate", "--public-key", "x", "--subject", SUBJECT],
        &env,
    );
    assert!(!ok && err.contains("--public-key"), "--generate takes no key: {err}");
    let (ok, _, err) =
        common::cli(&["vendor", "set-webpush", "--generate", "--subject", "ops"], &env);
    assert!(!ok && err.contains("subject"), "{err}");

    // Sealed at rest: the key file of the data directory opens them after a restart.
    herald.stop();
    let herald = start(dir.path());
    let (status, read) = herald.signed(&app, Method::GET, "/v1/vendors/webpush", None).await;
    assert_eq!((status, &read), (200, &shown));
    let (status, _) = herald.signed(&app, Method::DELETE, "/v1/vendors/webpush", None).await;
    assert_eq!(status, 204);
    let (status, _) = herald.signed(&app, Method::GET, "/v1/vendors/webpush", None).await;
    assert_eq!(status, 404);
    herald.stop();
}

#[tokio::test]
async fn offline_browsers_get_the_push_encrypted_and_gone_subscriptions_are_pruned() {
    let service = WebPushTestServer::start().await.unwrap();
    let (hook_url, hooks) = webhook_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let herald = start(dir.path());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let credentials = WebPushCredentials::generate(SUBJECT).unwrap();
    let (status, shown) =
        herald.signed(&app, Method::PUT, "/v1/vendors/webpush", Some(json!(credentials))).await;
    assert_eq!(status, 200, "{shown}");
    let webhook = json!({"url": hook_url, "events": ["device.token_invalidated"]});
    let (status, out) = herald.signed(&app, Method::PUT, "/v1/webhook", Some(webhook)).await;
    assert_eq!(status, 200, "{out}");

    // Ann's tab: the welcome gives the key to subscribe with, the next hello the subscription.
    let mut tab = browser(&herald, &app, "ann", "ann-tab", String::new()).await;
    assert!(tab.is_err(), "an empty vendor token is refused");
    tab = browser(&herald, &app, "ann", "ann-tab", "{}".into()).await;
    // Refused (4006) with the reason in the error frame, nothing stored: the same check as a
    // registration through the API, whose message is asserted below.
    match tab {
        Err(ClientError::Closed { code: 4006, .. }) => {}
        other => panic!("a bad subscription must be refused at hello: {:?}", other.err()),
    }
    let ann: TestSubscriber = service.subscribe(&credentials.public_key);
    let mut tab = browser(&herald, &app, "ann", "ann-tab", ann.subscription_json()).await.unwrap();
    match tab.next_event().await {
        Some(Event::Connected { webpush_key, .. }) => {
            assert_eq!(webpush_key.as_deref(), Some(credentials.public_key.as_str()))
        }
        other => panic!("expected the connection first, got {other:?}"),
    }
    tab.close().await;

    // Bob's subscription was registered by the back end; the push service forgot it since.
    let bob = service.subscribe(&credentials.public_key);
    service.script(&bob.id, [Reply::Unregistered]);
    let bob_device = json!({"account": "bob", "platform": "web", "package": "shop.example",
        "vendor_token": {"kind": "webpush", "token": bob.subscription_json()}});
    let (status, out) =
        herald.signed(&app, Method::PUT, "/v1/devices/bob-tab", Some(bob_device)).await;
    assert_eq!(status, 200, "{out}");
    let bad_device = json!({"account": "cat", "platform": "web", "package": "shop.example",
        "vendor_token": {"kind": "webpush", "token": ann.subscription_json().replace("https://", "http://")}});
    let (status, err) =
        herald.signed(&app, Method::PUT, "/v1/devices/cat-tab", Some(bad_device)).await;
    assert_eq!((status, code(&err)), (400, "invalid_subscription"), "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("https"), "{err}");

    let notification = json!({"title": "Sale", "body": "50% off", "ios": {"collapse_id": "sale"}});
    let push = json!({"audience": {"all": true}, "message": 1, "notification": notification,
        "ttl_secs": 600});
    let (status, sent) = herald.signed(&app, Method::POST, "/v1/pushes", Some(push)).await;
    assert_eq!(status, 201, "{sent}");
    let push_id = sent["push_id"].as_str().unwrap().to_owned();

    until("both Web Push sends", || service.request_count() >= 2).await;
    let requests = service.requests();
    let to_ann = requests.iter().find(|r| r.subscriber == ann.id).expect("Ann's tab got it");
    assert_eq!(to_ann.status, 201, "{:?}", to_ann.reason);
    assert_eq!(
        to_ann.json(),
        Some(json!({"title": "Sale", "body": "50% off", "tag": "sale", "herald_push_id": push_id})),
        "the push service decrypted exactly the notification"
    );
    assert_eq!(to_ann.header("ttl"), Some("600"));
    assert_eq!(to_ann.header("urgency"), Some("normal"));
    assert_eq!(to_ann.header("topic"), Some("sale"));
    assert_eq!(to_ann.vapid_key.as_deref(), Some(credentials.public_key.as_str()));
    assert_eq!(to_ann.vapid_claims.as_ref().unwrap()["sub"], SUBJECT);
    let to_bob = requests.iter().find(|r| r.subscriber == bob.id).expect("Bob's was tried");
    assert_eq!(to_bob.status, 410);

    let report = report_when(&herald, &app, &push_id, |r| {
        r["platforms"]["web"]["vendor_failed"]["Gone"] == 1
    })
    .await;
    assert_eq!(report["platforms"]["web"]["vendor_sent"], 1, "{report}");
    assert_eq!(report["platforms"]["web"]["vendor_failed"], json!({"Gone": 1}), "{report}");
    let (_, gone) = herald.signed(&app, Method::GET, "/v1/devices/bob-tab", None).await;
    assert_eq!(gone["vendor_token"], Value::Null, "the gone subscription was removed");
    let (_, kept) = herald.signed(&app, Method::GET, "/v1/devices/ann-tab", None).await;
    let canonical = WebPushSubscription::parse(&ann.subscription_json()).unwrap().to_token();
    assert_eq!(kept["vendor_token"], json!({"kind": "webpush", "token": canonical}));
    until("the webhook event", || !hooks.lock().unwrap().is_empty()).await;
    let event = hooks.lock().unwrap()[0].clone();
    assert_eq!(event["event"], "device.token_invalidated");
    assert_eq!(
        event["data"],
        json!({"device_id": "bob-tab", "platform": "web", "vendor": "webpush", "reason": "Gone"})
    );
    herald.stop();
}

#[tokio::test]
async fn a_service_worker_reports_opens_with_the_client_token() {
    let dir = tempfile::tempdir().unwrap();
    let herald = start(dir.path());
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let other_app = herald.create_app("other").await;
    let body = json!({"account": "ann", "platform": "web", "package": "shop.example"});
    let (status, _) = herald.signed(&app, Method::PUT, "/v1/devices/ann-tab", Some(body)).await;
    assert_eq!(status, 200);
    let push = json!({"audience": {"all": true}, "message": 1, "notification": {"title": "Hi"},
        "ttl_secs": 600});
    let (status, sent) = herald.signed(&app, Method::POST, "/v1/pushes", Some(push)).await;
    assert_eq!(status, 201, "{sent}");
    let push_id = sent["push_id"].as_str().unwrap().to_owned();
    let token = client_token(&app, "ann");
    let report = json!({"push_id": push_id, "device_id": "ann-tab"});

    let (status, out) = device_report(&herald, &token, "delivered", report.clone()).await;
    assert_eq!(status, 204, "{out}");
    for _ in 0..2 {
        // Counted once per device, however often the worker reports.
        let (status, out) = device_report(&herald, &token, "opened", report.clone()).await;
        assert_eq!(status, 204, "{out}");
    }
    let (_, counted) =
        herald.signed(&app, Method::GET, &format!("/v1/pushes/{push_id}/report"), None).await;
    assert_eq!(counted["platforms"]["web"]["delivered"], 1, "{counted}");
    assert_eq!(counted["platforms"]["web"]["opened"], 1, "{counted}");

    let refusals = [
        ("garbage".to_owned(), report.clone(), 401, "bad_client_token"),
        // Another app's token: Ann's tab is not a device of that app.
        (client_token(&other_app, "ann"), report.clone(), 404, "not_found"),
        (token.clone(), json!({"push_id": push_id, "device_id": "bob-tab"}), 404, "not_found"),
        (
            token.clone(),
            json!({"push_id": "no-such-push", "device_id": "ann-tab"}),
            404,
            "not_found",
        ),
        (token.clone(), json!({"push_id": push_id}), 400, "invalid_json"),
    ];
    for (token, body, status, expected) in refusals {
        let (got, err) = device_report(&herald, &token, "opened", body.clone()).await;
        assert_eq!((got, code(&err)), (status, expected), "{body}: {err}");
    }
    let (status, err) =
        herald.raw(herald.request(Method::POST, "/v1/client/opened").json(&report)).await;
    assert_eq!((status, code(&err)), (401, "bad_client_token"), "no token at all");
    let (_, after) =
        herald.signed(&app, Method::GET, &format!("/v1/pushes/{push_id}/report"), None).await;
    assert_eq!(after["platforms"]["web"]["opened"], 1, "refusals count nothing: {after}");

    // Any origin may ask, with the bearer token and without cookies.
    let preflight = herald
        .request(Method::OPTIONS, "/v1/client/opened")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    assert!(headers.get("access-control-allow-credentials").is_none());
    let (_, spec) = herald.raw(herald.request(Method::GET, "/openapi.json")).await;
    for path in ["/v1/client/opened", "/v1/client/delivered"] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    herald.stop();
}
