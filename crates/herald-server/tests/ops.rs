//! Operations endpoints, the API reference, and the CLI against a running server.

mod common;

use common::{cli, Herald, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn health_readiness_metrics_and_docs() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    assert_eq!(herald.raw(herald.request(Method::GET, "/healthz")).await.0, 200);
    let (status, ready) = herald.raw(herald.request(Method::GET, "/readyz")).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));

    let res = herald.request(Method::GET, "/healthz").send().await.unwrap();
    assert!(res.headers().contains_key("x-request-id"), "every response names its request id");

    let (_, metrics) = herald.raw(herald.request(Method::GET, "/metrics")).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(metrics.contains("herald_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/healthz\""), "{metrics}");

    let (status, spec) = herald.raw(herald.request(Method::GET, "/openapi.json")).await;
    assert_eq!(status, 200);
    for path in ["/admin/apps", "/admin/apps/{id}", "/admin/apps/{id}/rotate-secret", "/v1/app"] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    let page = herald.request(Method::GET, "/docs").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("openapi.json") && !page.contains("https://"), "self-contained page");
}

#[tokio::test]
async fn cli_manages_apps_and_signs_calls() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let server = [("HERALD_SERVER", herald.base.as_str())];
    let admin = [("HERALD_SERVER", herald.base.as_str()), ("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)];

    let (ok, _, err) = cli(&["app", "list"], &server);
    assert!(!ok && err.contains("HERALD_ADMIN_TOKEN"), "{err}");

    let (ok, out, err) = cli(&["app", "create", "--name", "from-cli", "--json"], &admin);
    assert!(ok, "{err}");
    let app: Value = serde_json::from_str(&out).unwrap();
    let (key, secret) = (app["key"].as_str().unwrap(), app["secret"].as_str().unwrap());

    let (ok, out, _) = cli(&["app", "create", "--name", "human"], &admin);
    assert!(ok && out.contains("secret") && out.contains("hs_"), "{out}");

    let (ok, out, _) = cli(&["app", "list"], &admin);
    assert!(ok && out.contains("from-cli") && out.contains("human"), "{out}");

    let id = app["id"].to_string();
    let (ok, out, err) =
        cli(&["app", "update", &id, "--limits", r#"{"tags_per_account":5}"#, "--json"], &admin);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["limits"]["tags_per_account"], 5);

    let signed = [
        ("HERALD_SERVER", herald.base.as_str()),
        ("HERALD_APP_KEY", key),
        ("HERALD_APP_SECRET", secret),
    ];
    let (ok, out, err) = cli(&["api", "GET", "/v1/app"], &signed);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["name"], "from-cli");

    let (ok, out, err) = cli(&["app", "compat", &id, "rongcloud", "--settings", "{}"], &admin);
    assert!(ok && out.contains("per_hour"), "{err}");
    let (ok, out, _) = cli(&["app", "compat", &id, "rongcloud"], &admin);
    assert!(ok && out.contains("per_day"), "{out}");

    let (ok, _, err) = cli(&["app", "get", "999999", "--json"], &admin);
    assert!(!ok && err.contains("not_found"), "{err}");
}
