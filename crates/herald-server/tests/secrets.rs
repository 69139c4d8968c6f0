//! Secrets stay secret: a full scenario runs with every log at `trace`, on PostgreSQL with a
//! password in its URL; then the logs, `/metrics` and every error body are searched for each
//! secret the scenario made or sent: the admin token, app secrets (current and previous),
//! client tokens, usersigs, vendor keys (APNs, FCM, Web Push), the key sealing them, the
//! database password, and the wrong credentials callers sent.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::vendors::VendorFakes;
use common::{code, next_push, postgres_test_store, AppCreds, Herald, Signer, Start, ADMIN_TOKEN};
use herald_server::compat::tencent::auth as usersig;
use herald_vendor::{ApnsEnvironment, WebPushCredentials};
use reqwest::Method;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

/// A secret and the name it is reported under.
struct Secrets(Vec<(&'static str, String)>);

impl Secrets {
    fn add(&mut self, name: &'static str, value: impl Into<String>) {
        let value = value.into();
        assert!(value.len() >= 12, "{name} is too short to search for: {value}");
        self.0.push((name, value));
    }

    /// A PEM's key material, as one line of its body: logs would carry it escaped or not.
    fn add_pem(&mut self, name: &'static str, pem: &str) {
        let body = pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>();
        self.add(name, &body[body.len() / 2..body.len() / 2 + 40]);
    }

    fn assert_absent(&self, place: &str, text: &str) {
        for (name, value) in &self.0 {
            assert!(!text.contains(value.as_str()), "{place} shows the {name}");
        }
    }
}

/// Collects what the scenario's error answers said.
#[derive(Default)]
struct Errors(Vec<String>);

impl Errors {
    fn refused(&mut self, what: &str, (status, body): (u16, Value)) {
        assert!((400..500).contains(&status), "{what}: {status} {body}");
        self.0.push(body.to_string());
    }
}

fn app_sig(app: &AppCreds, secret: &str) -> Signer {
    let mut signer = Signer::new(app);
    secret.clone_into(&mut signer.secret);
    signer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_metrics_or_error_bodies() {
    let fakes = VendorFakes::start().await;
    let webpush = WebPushCredentials::generate("mailto:ops@example.com").unwrap();
    let sealing_key = base64::engine::general_purpose::STANDARD.encode(rand_bytes());

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(&config, fakes.config("")).unwrap();
    let VendorFakes { apns, fcm, apns_key, fcm_account: account } = fakes;
    let data = dir.path().join("data");
    // The machine's PostgreSQL trusts local connections, so any password gets in: the one in
    // the URL is there to be searched for.
    let store = postgres_test_store(&data);
    let password = format!("pw-{}", hex::encode(rand_bytes()));
    let url = store.url.replacen("postgres@", &format!("postgres:{password}@"), 1);
    assert!(url.contains(&password), "{url}");
    let start = Start {
        args: vec!["--config".into(), config.display().to_string()],
        env: vec![
            ("HERALD_LOG_LEVEL".into(), "trace".into()),
            ("HERALD_STORE".into(), url.clone()),
            ("HERALD_POSTGRES_SCHEMA".into(), store.schema.clone()),
            ("HERALD_VENDOR_CREDENTIALS_KEY".into(), sealing_key.clone()),
        ],
        capture_stderr: true,
        ..Start::default()
    };
    let mut herald = Herald::start_with(&data, start);
    let mut secrets = Secrets(Vec::new());
    let mut errors = Errors::default();
    secrets.add("admin token", ADMIN_TOKEN);
    secrets.add("database password", &password);
    secrets.add("credentials sealing key", &sealing_key);
    secrets.add_pem("APNs key", &apns_key.key_p8);
    secrets.add_pem("FCM private key", &account.private_key_pem);
    secrets.add("Web Push private key", &webpush.private_key);

    // An app, its secret rotated: both secrets work for a while.
    let mut app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    secrets.add("first app secret", &app.secret);
    let rotate = format!("/admin/apps/{}/rotate-secret", app.id);
    let (status, rotated) = herald.admin(Method::POST, &rotate, Some(json!({}))).await;
    assert_eq!(status, 200, "{rotated}");
    let old_secret = std::mem::replace(&mut app.secret, rotated["secret"].as_str().unwrap().into());
    secrets.add("rotated app secret", &app.secret);

    // Vendors, a webhook (signed with the app secret), compat layers.
    let apns_credentials = apns_key.credentials("com.shop", ApnsEnvironment::Production);
    for (vendor, credentials) in [
        ("apns", json!(apns_credentials)),
        ("fcm", json!(account.credentials(&fcm.token_uri()))),
        ("webpush", json!(webpush)),
    ] {
        let path = format!("/v1/vendors/{vendor}");
        let (status, shown) = herald.signed(&app, Method::PUT, &path, Some(credentials)).await;
        assert_eq!(status, 200, "{vendor}: {shown}");
        secrets.assert_absent(&format!("the answer to PUT {path}"), &shown.to_string());
    }
    let hook = json!({"url": "http://127.0.0.1:9/hook"});
    assert_eq!(herald.signed(&app, Method::PUT, "/v1/webhook", Some(hook)).await.0, 200);
    let layer = json!({"sdkappid": 1_400_000_301_u64, "admin_identifier": "administrator",
        "limits": {"min_interval_secs": 0, "per_hour": null, "per_day": 1000}});
    let path = format!("/admin/apps/{}/compat/tencent", app.id);
    assert_eq!(herald.admin(Method::PUT, &path, Some(layer)).await.0, 200);
    let path = format!("/admin/apps/{}/compat/rongcloud", app.id);
    let layer = json!({"limits": {"min_interval_secs": 0, "per_hour": null, "per_day": 1000}});
    assert_eq!(herald.admin(Method::PUT, &path, Some(layer)).await.0, 200);

    // Devices: two offline with vendor tokens, one online with a minted client token.
    for (device, kind, token) in
        [("ios-1", "apns", "a1b2c3d4e5f6"), ("droid-1", "fcm", "fcm-tok-1")]
    {
        let body = json!({"account": "ann", "platform": if kind == "apns" { "ios" } else { "android" },
            "package": "com.shop", "vendor_token": {"kind": kind, "token": token}});
        let path = format!("/v1/devices/{device}");
        assert_eq!(herald.signed(&app, Method::PUT, &path, Some(body)).await.0, 200);
    }
    let body = json!({"account": "bob"});
    let (status, minted) = herald.signed(&app, Method::POST, "/v1/client-tokens", Some(body)).await;
    assert_eq!(status, 200, "{minted}");
    let client_token = minted["token"].as_str().unwrap().to_owned();
    secrets.add("client token", &client_token);
    let mut phone = herald.device(&app, "bob", "bob-phone", "ios").await;

    // A push to everyone: online, APNs and FCM sends; the device reports it over HTTP too.
    let push = json!({"audience": {"all": true}, "message": {"m": 1},
        "notification": {"title": "t", "body": "b"}});
    let (status, created) = herald.signed(&app, Method::POST, "/v1/pushes", Some(push)).await;
    assert_eq!(status, 201, "{created}");
    let push_id = created["push_id"].as_str().unwrap().to_owned();
    assert_eq!(next_push(&mut phone).await.push_id, push_id);
    let report = json!({"push_id": push_id, "device_id": "bob-phone"});
    let req = herald.request(Method::POST, "/v1/client/opened").bearer_auth(&client_token);
    assert_eq!(herald.raw(req.json(&report)).await.0, 204);
    common::until("the vendor sends", || apns.request_count() > 0).await;

    // Compat calls with their own credentials.
    let sig = usersig::sign(&app.secret, 1_400_000_301, "administrator", now(), 3600);
    secrets.add("usersig", &sig);
    let call = format!("/v4/im_open_login_svc/account_import?sdkappid=1400000301&identifier=administrator&usersig={sig}&random=1&contenttype=json");
    let (status, answer) =
        herald.raw(herald.request(Method::POST, &call).body(r#"{"UserID":"cat"}"#)).await;
    assert_eq!((status, answer["ErrorCode"].as_i64()), (200, Some(0)), "{answer}");
    let check_online = rong(&herald, &app.key, &app.secret, "userId=dan");
    assert_eq!(herald.raw(check_online).await.0, 200);

    // Wrong credentials: refused, and neither the wrong nor the right one is told or logged.
    let wrong_secret = format!("wrong-secret-{}", hex::encode(rand_bytes()));
    let wrong_admin = format!("wrong-admin-{}", hex::encode(rand_bytes()));
    secrets.add("wrong app secret", &wrong_secret);
    secrets.add("wrong admin token", &wrong_admin);
    let signer = app_sig(&app, &wrong_secret);
    let req = signer.sign(herald.request(Method::GET, "/v1/app"), "GET", "/v1/app", b"");
    errors.refused("a wrong signature", herald.raw(req).await);
    let req = herald.request(Method::GET, "/admin/apps").bearer_auth(&wrong_admin);
    errors.refused("a wrong admin token", herald.raw(req).await);
    let forged = herald_client::mint_token(&app.key, &wrong_secret, "bob", now() + 60);
    secrets.add("forged client token", &forged);
    let req = herald.request(Method::POST, "/v1/client/opened").bearer_auth(&forged);
    errors.refused("a forged client token", herald.raw(req.json(&report)).await);
    let forged_sig = usersig::sign(&wrong_secret, 1_400_000_301, "administrator", now(), 3600);
    secrets.add("forged usersig", &forged_sig);
    let call = call.replace(&sig, &forged_sig);
    let (_, answer) = herald.raw(herald.request(Method::POST, &call).body("{}")).await;
    assert_ne!(answer["ErrorCode"], 0, "{answer}");
    errors.0.push(answer.to_string());
    let (status, answer) = herald.raw(rong(&herald, &app.key, &wrong_secret, "userId=dan")).await;
    assert_eq!(status, 401, "{answer}");
    errors.0.push(answer.to_string());
    // The previous secret still signs during its grace period.
    let req = app_sig(&app, &old_secret).sign(
        herald.request(Method::GET, "/v1/app"),
        "GET",
        "/v1/app",
        b"",
    );
    assert_eq!(herald.raw(req).await.0, 200);
    let (status, err) = herald.signed(&app, Method::GET, "/v1/pushes/p_nope", None).await;
    assert_eq!((status, code(&err)), (404, "not_found"));
    errors.0.push(err.to_string());

    let (status, metrics) = herald.raw(herald.request(Method::GET, "/metrics")).await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(metrics.contains("herald_http_requests_total"), "{metrics}");

    let stderr = herald.stderr.take().unwrap();
    let stdout: Vec<String> = herald.stdout.try_iter().chain(herald.banner.clone()).collect();
    herald.stop();
    let logs: Vec<String> = stderr.iter().collect();
    assert!(logs.len() > 100, "trace logs were not captured: {} lines", logs.len());
    assert!(
        logs.iter().any(|l| l.contains("TRACE")) && logs.iter().any(|l| l.contains("DEBUG")),
        "the logs are not at trace level"
    );
    secrets.assert_absent("the logs", &logs.join("\n"));
    secrets.assert_absent("stdout", &stdout.join("\n"));
    secrets.assert_absent("/metrics", &metrics);
    secrets.assert_absent("an error answer", &errors.0.join("\n"));
}

#[tokio::test]
async fn a_store_that_cannot_be_reached_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let password = format!("pw-{}", hex::encode(rand_bytes()));
    for url in [
        format!("postgres://herald:{password}@127.0.0.1:1/herald"),
        format!("postgres://herald:{password}@127.0.0.1:1/herald?sslmode=disable"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path())
            .env("HERALD_STORE", &url)
            .env("HERALD_LOG_LEVEL", "trace")
            .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap();
        assert!(!out.status.success(), "herald started on a store that is not there");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("127.0.0.1:1"), "the store is not named: {text}");
        assert!(!text.contains(&password), "the password is shown: {text}");
    }
}

fn rong(herald: &Herald, key: &str, secret: &str, form: &str) -> reqwest::RequestBuilder {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nonce = (20_000 + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)).to_string();
    let timestamp = now().to_string();
    let signature = hex::encode(Sha1::digest(format!("{secret}{nonce}{timestamp}")));
    herald
        .request(Method::POST, "/user/checkOnline.json")
        .header("App-Key", key)
        .header("Nonce", nonce)
        .header("Timestamp", timestamp)
        .header("Signature", signature)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rand_bytes() -> [u8; 32] {
    rand::random()
}
