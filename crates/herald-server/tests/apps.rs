//! Apps through the real binary: the admin API, the signed API and every refusal.

mod common;

use common::{code, AppCreds, Herald, Signer, Start, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn admin_manages_apps() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let (status, created) = herald
        .admin(
            Method::POST,
            "/admin/apps",
            Some(json!({"name": "shop", "limits": {"tags_per_account": 20}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("hs_"));
    assert_eq!(created["limits"]["tags_per_account"], 20);
    assert_eq!(created["limits"]["distinct_tags"], 10_000);

    let (status, list) = herald.admin(Method::GET, "/admin/apps", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["apps"][0]["name"], "shop");
    assert!(list["apps"][0].get("secret").is_none(), "secrets are never listed");

    let (status, updated) = herald
        .admin(
            Method::PATCH,
            &format!("/admin/apps/{id}"),
            Some(json!({"limits": {"message_bytes": 4096}})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["limits"]["message_bytes"], 4096);
    assert_eq!(updated["limits"]["tags_per_account"], 20, "other limits stay");

    let (status, err) = herald
        .admin(
            Method::PATCH,
            &format!("/admin/apps/{id}"),
            Some(json!({"limits": {"max_offline_ttl_secs": 604801}})),
        )
        .await;
    assert_eq!((status, code(&err)), (400, "invalid_limit"), "{err}");
    assert_eq!(err["error"]["limit"], "max_offline_ttl_secs");
    assert_eq!(err["error"]["max"], 604_800);

    let (status, _) = herald.admin(Method::DELETE, &format!("/admin/apps/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, err) = herald.admin(Method::GET, &format!("/admin/apps/{id}"), None).await;
    assert_eq!((status, code(&err)), (404, "not_found"));
    let (status, err) = herald.admin(Method::GET, "/admin/apps/not-a-number", None).await;
    assert_eq!((status, code(&err)), (404, "not_found"));
}

#[tokio::test]
async fn admin_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let (status, err) = herald.raw(herald.request(Method::GET, "/admin/apps")).await;
    assert_eq!((status, code(&err)), (401, "admin_required"));
    let (status, err) =
        herald.raw(herald.request(Method::GET, "/admin/apps").bearer_auth("wrong")).await;
    assert_eq!((status, code(&err)), (401, "admin_required"));

    let malformed =
        herald.request(Method::POST, "/admin/apps").bearer_auth(ADMIN_TOKEN).body("{\"name\":");
    let (status, err) = herald.raw(malformed).await;
    assert_eq!((status, code(&err)), (400, "invalid_json"), "{err}");

    let (status, err) =
        herald.admin(Method::POST, "/admin/apps", Some(json!({"name": "x", "limit": {}}))).await;
    assert_eq!((status, code(&err)), (400, "invalid_json"));
    assert!(err["error"]["message"].as_str().unwrap().contains("unknown field `limit`"), "{err}");

    let (status, err) = herald
        .admin(Method::POST, "/admin/apps", Some(json!({"name": "x", "limits": {"tag_byte": 3}})))
        .await;
    assert_eq!((status, code(&err)), (400, "invalid_json"));
    assert!(err["error"]["message"].as_str().unwrap().contains("tag_byte"), "{err}");

    let (status, err) = herald.admin(Method::POST, "/admin/apps", Some(json!({"name": " "}))).await;
    assert_eq!((status, code(&err)), (400, "invalid_request"));

    let (status, err) = herald.raw(herald.request(Method::GET, "/nowhere")).await;
    assert_eq!((status, code(&err)), (404, "no_route"));
}

#[tokio::test]
async fn signed_requests_and_their_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("signed").await;

    let (status, me) = herald.signed(&app, Method::GET, "/v1/app", None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!((me["id"].as_i64(), me["name"].as_str()), (Some(app.id), Some("signed")));

    let get = |signer: &Signer| {
        signer.sign(herald.request(Method::GET, "/v1/app"), "GET", "/v1/app", b"")
    };

    let (status, err) = herald.raw(herald.request(Method::GET, "/v1/app")).await;
    assert_eq!((status, code(&err)), (401, "missing_signature"));
    assert_eq!(err["error"]["header"], "x-herald-key");

    let unknown = Signer { key: "hk_nobody".into(), ..Signer::new(&app) };
    let (status, err) = herald.raw(get(&unknown)).await;
    assert_eq!((status, code(&err)), (401, "unknown_app"));

    let wrong = Signer { secret: "not-the-secret".into(), ..Signer::new(&app) };
    let (status, err) = herald.raw(get(&wrong)).await;
    assert_eq!((status, code(&err)), (401, "bad_signature"));

    let stale = Signer { timestamp: chrono::Utc::now().timestamp() - 301, ..Signer::new(&app) };
    let (status, err) = herald.raw(get(&stale)).await;
    assert_eq!((status, code(&err)), (401, "stale_timestamp"));
    let future = Signer { timestamp: chrono::Utc::now().timestamp() + 301, ..Signer::new(&app) };
    assert_eq!(code(&herald.raw(get(&future)).await.1), "stale_timestamp");

    let bad_nonce = Signer { nonce: "short".into(), ..Signer::new(&app) };
    assert_eq!(code(&herald.raw(get(&bad_nonce)).await.1), "bad_nonce");

    let once = Signer::new(&app);
    assert_eq!(herald.raw(get(&once)).await.0, 200);
    let (status, err) = herald.raw(get(&once)).await;
    assert_eq!((status, code(&err)), (401, "replayed_nonce"));

    // A body other than the one signed.
    let signer = Signer::new(&app);
    let tampered =
        signer.sign(herald.request(Method::GET, "/v1/app"), "GET", "/v1/app", b"{}").body("{ }");
    assert_eq!(code(&herald.raw(tampered).await.1), "bad_signature");

    // The query string is signed too.
    let signer = Signer::new(&app);
    let req = signer.sign(herald.request(Method::GET, "/v1/app?x=2"), "GET", "/v1/app?x=1", b"");
    assert_eq!(code(&herald.raw(req).await.1), "bad_signature");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let start =
        Start { env: vec![("HERALD_MAX_BODY_BYTES".into(), "1024".into())], ..Start::default() };
    let herald = Herald::start_with(dir.path(), start);
    let app = herald.create_app("big").await;
    let big = json!({ "name": "x".repeat(2000) });

    let (status, err) = herald.admin(Method::POST, "/admin/apps", Some(big.clone())).await;
    assert_eq!((status, code(&err)), (413, "body_too_large"), "{err}");
    assert_eq!(err["error"]["value"], 1024);

    let (status, err) = herald.signed(&app, Method::GET, "/v1/app", Some(big)).await;
    assert_eq!((status, code(&err)), (413, "body_too_large"), "{err}");
}

#[tokio::test]
async fn apps_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("durable").await;
    herald.stop();

    let herald = Herald::start(dir.path());
    let (status, me) = herald.signed(&app, Method::GET, "/v1/app", None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["name"], "durable");
}

#[tokio::test]
async fn rotated_secret_honours_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let old = herald.create_app("rotating").await;

    let path = format!("/admin/apps/{}/rotate-secret", old.id);
    let (status, rotated) = herald.admin(Method::POST, &path, Some(json!({"grace_secs": 2}))).await;
    assert_eq!(status, 200, "{rotated}");
    let new = AppCreds { secret: rotated["secret"].as_str().unwrap().into(), ..old.clone() };
    assert_ne!(new.secret, old.secret);

    assert_eq!(herald.signed(&new, Method::GET, "/v1/app", None).await.0, 200);
    assert_eq!(
        herald.signed(&old, Method::GET, "/v1/app", None).await.0,
        200,
        "old secret within grace"
    );

    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, err) = herald.signed(&old, Method::GET, "/v1/app", None).await;
    assert_eq!((status, code(&err)), (401, "bad_signature"), "old secret after grace");
    assert_eq!(herald.signed(&new, Method::GET, "/v1/app", None).await.0, 200);

    let (status, err) =
        herald.admin(Method::POST, &path, Some(json!({"grace_secs": 99_999_999}))).await;
    assert_eq!((status, code(&err)), (400, "invalid_request"));
}

#[tokio::test]
async fn generated_admin_token_is_printed_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start { generated_token: true, ..Start::default() };
    let herald = Herald::start_with(dir.path(), start.clone());
    let line =
        herald.banner.iter().find(|l| l.starts_with("admin token")).expect("token printed").clone();
    let token = line.rsplit(' ').next().unwrap().to_owned();
    let kept = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    assert_eq!(kept.trim(), token);
    let (status, _) =
        herald.raw(herald.request(Method::GET, "/admin/apps").bearer_auth(&token)).await;
    assert_eq!(status, 200);
    herald.stop();

    let herald = Herald::start_with(dir.path(), start);
    assert!(!herald.banner.iter().any(|l| l.starts_with("admin token")), "printed only once");
    let (status, _) =
        herald.raw(herald.request(Method::GET, "/admin/apps").bearer_auth(&token)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn compat_layers_are_configured_per_app() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let one = herald.create_app("one").await;
    let two = herald.create_app("two").await;
    let path = |id: i64, layer: &str| format!("/admin/apps/{id}/compat/{layer}");

    let (status, err) = herald.admin(Method::GET, &path(one.id, "tencent"), None).await;
    assert_eq!((status, code(&err)), (404, "not_found"));
    let (status, set) = herald
        .admin(Method::PUT, &path(one.id, "tencent"), Some(json!({"sdkappid": 1400000001})))
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["admin_identifier"], "administrator");
    assert_eq!(set["limits"], json!({"min_interval_secs": 1, "per_hour": null, "per_day": 100}));
    let (status, clash) = herald
        .admin(Method::PUT, &path(two.id, "tencent"), Some(json!({"sdkappid": 1400000001})))
        .await;
    assert_eq!((status, code(&clash)), (409, "conflict"), "an SDKAppID names one app");
    let (status, err) =
        herald.admin(Method::PUT, &path(two.id, "tencent"), Some(json!({"sdkapid": 1}))).await;
    assert_eq!((status, code(&err)), (400, "invalid_json"));

    let (status, rc) = herald.admin(Method::PUT, &path(two.id, "rongcloud"), Some(json!({}))).await;
    assert_eq!((status, &rc["limits"]["per_hour"]), (200, &json!(2)));
    let (status, got) = herald.admin(Method::GET, &path(two.id, "rongcloud"), None).await;
    assert_eq!((status, got), (200, rc));
    let (status, _) = herald.admin(Method::PUT, &path(two.id, "jpush"), Some(json!({}))).await;
    assert_eq!(status, 404);
}
