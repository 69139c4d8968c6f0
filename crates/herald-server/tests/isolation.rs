//! Isolation between apps, through the real binary: two apps, A and B, each with accounts,
//! devices, tags, attributes, pushes, a webhook and vendor credentials. Every route of the
//! signed `/v1` API, the client routes, the WebSocket login, every console page and form and
//! every compat call is tried with B's credentials on A's ids; each must answer as if A's data
//! did not exist (404 `not_found` where an id is looked up, never 403, which would tell that
//! it exists), no answer may carry A's data, and A's data must be as it was afterwards.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::browser::Browser;
use common::{code, next_push, AppCreds, Herald, Signer};
use herald_client::{Client, ConnectOptions, Reconnect};
use herald_server::compat::tencent::auth as usersig;
use herald_vendor::WebPushCredentials;
use reqwest::Method;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

/// A console form: its path, its fields, and the status another app's session must get.
type ConsoleForm<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);

/// Names of A's data start with this; B's with `bravo`.
const A: &str = "alpha";
const A_SDKAPPID: u64 = 1_400_000_101;
const B_SDKAPPID: u64 = 1_400_000_102;
const TENCENT_ADMIN: &str = "administrator";

/// One app's data, as created by [`seed`].
struct Tenant {
    creds: AppCreds,
    prefix: &'static str,
    /// A push scheduled an hour ahead (cancellable).
    scheduled: String,
    /// A push sent to everyone (recallable).
    sent: String,
    webpush: WebPushCredentials,
}

impl Tenant {
    fn account(&self) -> String {
        format!("{}-ann", self.prefix)
    }
    fn other_account(&self) -> String {
        format!("{}-bob", self.prefix)
    }
    fn device(&self) -> String {
        format!("{}-phone", self.prefix)
    }
    fn other_device(&self) -> String {
        format!("{}-tablet", self.prefix)
    }

    /// Every string of this app's data that another app must never be shown.
    fn markers(&self) -> Vec<String> {
        let p = self.prefix;
        vec![
            p.to_owned(),
            self.creds.key.clone(),
            self.creds.secret.clone(),
            self.scheduled.clone(),
            self.sent.clone(),
            self.webpush.public_key.clone(),
            self.webpush.private_key.clone(),
        ]
    }
}

/// Creates an app with data of every kind, named after `prefix`.
async fn seed(herald: &Herald, prefix: &'static str, sdkappid: u64) -> Tenant {
    let creds = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let ok = |what: &str, (status, body): (u16, Value)| {
        assert!(status < 300, "{prefix} {what}: {status} {body}");
        body
    };
    let (ann, bob) = (format!("{prefix}-ann"), format!("{prefix}-bob"));
    for (device, account, platform) in
        [(format!("{prefix}-phone"), &ann, "ios"), (format!("{prefix}-tablet"), &bob, "android")]
    {
        let body = json!({"account": account, "platform": platform, "package": "com.shop"});
        let path = format!("/v1/devices/{device}");
        ok("device", herald.signed(&creds, Method::PUT, &path, Some(body)).await);
    }
    let tags = json!({"accounts": [&ann, &bob], "tags": [format!("{prefix}tag")]});
    ok("tags", herald.signed(&creds, Method::POST, "/v1/tags/add", Some(tags)).await);
    let names = json!({"names": {"0": format!("{prefix}city")}});
    ok("names", herald.signed(&creds, Method::PUT, "/v1/attributes/names", Some(names)).await);
    let values = json!({"accounts": [{"account": &ann,
        "attributes": {format!("{prefix}city"): format!("{prefix}-sz")}}]});
    ok("attributes", herald.signed(&creds, Method::POST, "/v1/attributes/set", Some(values)).await);
    let hook = json!({"url": format!("http://127.0.0.1:9/{prefix}-hook")});
    ok("webhook", herald.signed(&creds, Method::PUT, "/v1/webhook", Some(hook)).await);
    let webpush = WebPushCredentials::generate(format!("mailto:{prefix}@example.com")).unwrap();
    let vendor = serde_json::to_value(&webpush).unwrap();
    ok("vendor", herald.signed(&creds, Method::PUT, "/v1/vendors/webpush", Some(vendor)).await);
    let layer = json!({"sdkappid": sdkappid, "admin_identifier": TENCENT_ADMIN,
        "limits": {"min_interval_secs": 0, "per_hour": null, "per_day": 1000}});
    let path = format!("/admin/apps/{}/compat/tencent", creds.id);
    ok("tencent", herald.admin(Method::PUT, &path, Some(layer)).await);
    let path = format!("/admin/apps/{}/compat/rongcloud", creds.id);
    let layer = json!({"limits": {"min_interval_secs": 0, "per_hour": null, "per_day": 1000}});
    ok("rongcloud", herald.admin(Method::PUT, &path, Some(layer)).await);

    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let push = |extra: Value| {
        let mut body = json!({"audience": {"all": true},
            "message": {"text": format!("{prefix}-words")},
            "notification": {"title": format!("{prefix}-title"), "body": "b"}});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let scheduled = herald
        .signed(&creds, Method::POST, "/v1/pushes", Some(push(json!({"push_at": later}))))
        .await;
    let scheduled = ok("scheduled push", scheduled)["push_id"].as_str().unwrap().to_owned();
    let sent = herald.signed(&creds, Method::POST, "/v1/pushes", Some(push(json!({})))).await;
    let sent = ok("push", sent)["push_id"].as_str().unwrap().to_owned();
    Tenant { creds, prefix, scheduled, sent, webpush }
}

/// Waits until the push is no longer dispatching.
/// One server with the two apps seeded, A's sent push settled; `_dir` holds the data.
struct TwoApps {
    _dir: tempfile::TempDir,
    herald: Herald,
    a: Tenant,
    b: Tenant,
}

async fn two_apps() -> TwoApps {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let a = seed(&herald, A, A_SDKAPPID).await;
    let b = seed(&herald, "bravo", B_SDKAPPID).await;
    settled(&herald, &a.creds, &a.sent).await;
    TwoApps { _dir: dir, herald, a, b }
}

async fn settled(herald: &Herald, app: &AppCreds, push: &str) {
    for _ in 0..400 {
        let (_, view) = herald.signed(app, Method::GET, &format!("/v1/pushes/{push}"), None).await;
        if view["status"] == "done" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("push {push} did not finish");
}

/// Everything A can read about itself; compared before and after B's attempts.
async fn snapshot(herald: &Herald, a: &Tenant) -> Vec<(String, u16, Value)> {
    let mut paths = vec![
        "/v1/app".to_owned(),
        "/v1/accounts".to_owned(),
        format!("/v1/accounts/{}", a.account()),
        format!("/v1/accounts/{}", a.other_account()),
        format!("/v1/devices/{}", a.device()),
        format!("/v1/devices/{}", a.other_device()),
        "/v1/stats/devices".to_owned(),
        "/v1/attributes/names".to_owned(),
        "/v1/pushes".to_owned(),
        "/v1/webhook".to_owned(),
        "/v1/vendors/webpush".to_owned(),
    ];
    for push in [&a.scheduled, &a.sent] {
        paths.push(format!("/v1/pushes/{push}"));
        paths.push(format!("/v1/pushes/{push}/report"));
    }
    let mut out = Vec::new();
    for path in paths {
        let (status, mut body) = herald.signed(&a.creds, Method::GET, &path, None).await;
        // The request budget moves with every call; it is not A's data.
        if let Some(app) = body.as_object_mut() {
            app.remove("usage");
        }
        out.push((path, status, body));
    }
    out
}

/// Asserts that `answer` shows none of `markers` except those the request itself named.
fn assert_no_leak(what: &str, request: &str, answer: &str, markers: &[String]) {
    for marker in markers {
        if !request.contains(marker.as_str()) {
            assert!(!answer.contains(marker.as_str()), "{what} shows {marker:?} of A: {answer}");
        }
    }
}

/// What B's call on A's id must answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// `404 not_found`: the id is looked up in B and is not there.
    NotFound,
    /// Whatever B's own data gives, below 500; it must still show nothing of A.
    Own,
}

/// One signed `/v1` call: the documented route, the concrete path and body.
struct Case {
    method: Method,
    route: &'static str,
    path: String,
    body: Option<Value>,
    expect: Expect,
}

fn case(method: Method, route: &'static str, path: String, body: Option<Value>, e: Expect) -> Case {
    Case { method, route, path, body, expect: e }
}

/// B's calls on A's ids, one or more per documented route: reads and deletes first (while B
/// has none of A's names), then writes that name A's ids.
fn signed_cases(a: &Tenant) -> Vec<Case> {
    use Expect::{NotFound, Own};
    use Method as M;
    let (ann, bob, phone, tablet) = (a.account(), a.other_account(), a.device(), a.other_device());
    let (sched, sent) = (&a.scheduled, &a.sent);
    let tag = format!("{A}tag");
    let city = format!("{A}city");
    vec![
        case(M::GET, "/v1/app", "/v1/app".into(), None, Own),
        case(M::GET, "/v1/accounts", format!("/v1/accounts?after={A}"), None, Own),
        case(M::GET, "/v1/accounts/{account}", format!("/v1/accounts/{ann}"), None, NotFound),
        case(M::DELETE, "/v1/accounts/{account}", format!("/v1/accounts/{ann}"), None, NotFound),
        case(M::GET, "/v1/devices/{device_id}", format!("/v1/devices/{phone}"), None, NotFound),
        case(M::DELETE, "/v1/devices/{device_id}", format!("/v1/devices/{phone}"), None, NotFound),
        case(M::GET, "/v1/stats/devices", "/v1/stats/devices".into(), None, Own),
        case(
            M::POST,
            "/v1/tags/get",
            "/v1/tags/get".into(),
            Some(json!({"accounts": [&ann]})),
            Own,
        ),
        case(M::GET, "/v1/attributes/names", "/v1/attributes/names".into(), None, Own),
        case(
            M::POST,
            "/v1/attributes/get",
            "/v1/attributes/get".into(),
            Some(json!({"accounts": [&ann]})),
            Own,
        ),
        case(
            M::POST,
            "/v1/audience/estimate",
            "/v1/audience/estimate".into(),
            Some(json!({"audience": {"or": [{"accounts": [&ann, &bob]}, {"tag": &tag}]}})),
            Own,
        ),
        case(M::GET, "/v1/pushes", "/v1/pushes?limit=100".into(), None, Own),
        case(M::GET, "/v1/pushes/{push_id}", format!("/v1/pushes/{sent}"), None, NotFound),
        case(
            M::GET,
            "/v1/pushes/{push_id}/report",
            format!("/v1/pushes/{sent}/report"),
            None,
            NotFound,
        ),
        case(
            M::POST,
            "/v1/pushes/{push_id}/cancel",
            format!("/v1/pushes/{sched}/cancel"),
            None,
            NotFound,
        ),
        case(
            M::POST,
            "/v1/pushes/{push_id}/recall",
            format!("/v1/pushes/{sent}/recall"),
            None,
            NotFound,
        ),
        case(M::GET, "/v1/stats/days", "/v1/stats/days".into(), None, Own),
        // B's own settings, never A's.
        case(M::GET, "/v1/vendors/{vendor}", "/v1/vendors/webpush".into(), None, Own),
        case(M::GET, "/v1/webhook", "/v1/webhook".into(), None, Own),
        case(M::DELETE, "/v1/vendors/{vendor}", "/v1/vendors/webpush".into(), None, Own),
        case(M::DELETE, "/v1/webhook", "/v1/webhook".into(), None, Own),
        // Writes naming A's accounts, devices, tags and attributes: they act on B's own.
        case(
            M::POST,
            "/v1/tags/add",
            "/v1/tags/add".into(),
            Some(json!({"accounts": [&ann], "tags": ["bravo-x"]})),
            Own,
        ),
        case(
            M::POST,
            "/v1/tags/remove",
            "/v1/tags/remove".into(),
            Some(json!({"accounts": [&ann, &bob], "tags": [&tag]})),
            Own,
        ),
        case(
            M::POST,
            "/v1/tags/set",
            "/v1/tags/set".into(),
            Some(json!({"accounts": [&bob], "tags": ["bravo-y"]})),
            Own,
        ),
        case(
            M::POST,
            "/v1/tags/clear",
            "/v1/tags/clear".into(),
            Some(json!({"accounts": [&ann, &bob]})),
            Own,
        ),
        case(
            M::POST,
            "/v1/attributes/remove",
            "/v1/attributes/remove".into(),
            Some(json!({"accounts": [{"account": &ann, "names": [&city]}]})),
            Own,
        ),
        case(
            M::POST,
            "/v1/attributes/set",
            "/v1/attributes/set".into(),
            Some(json!({"accounts": [{"account": &ann, "attributes": {&city: "bravo-v"}}]})),
            Own,
        ),
        case(
            M::PUT,
            "/v1/attributes/names",
            "/v1/attributes/names".into(),
            Some(json!({"names": {"0": null, "1": &city}})),
            Own,
        ),
        case(
            M::PUT,
            "/v1/devices/{device_id}",
            format!("/v1/devices/{tablet}"),
            Some(json!({"account": "bravo-zed", "platform": "ios", "package": "com.shop"})),
            Own,
        ),
        case(
            M::POST,
            "/v1/accounts/import",
            "/v1/accounts/import".into(),
            Some(json!({"accounts": [&bob]})),
            Own,
        ),
        case(
            M::POST,
            "/v1/accounts/bulk",
            "/v1/accounts/bulk".into(),
            Some(json!({"account": &ann, "tags": [&tag]})),
            Own,
        ),
        case(
            M::POST,
            "/v1/pushes",
            "/v1/pushes".into(),
            Some(json!({"audience": {"accounts": [&ann, &bob]}, "message": {"text": "bravo"}})),
            Own,
        ),
        case(
            M::POST,
            "/v1/client-tokens",
            "/v1/client-tokens".into(),
            Some(json!({"account": &ann})),
            Own,
        ),
        case(
            M::PUT,
            "/v1/webhook",
            "/v1/webhook".into(),
            Some(json!({"url": "http://127.0.0.1:9/bravo-hook"})),
            Own,
        ),
        case(
            M::PUT,
            "/v1/vendors/{vendor}",
            "/v1/vendors/webpush".into(),
            Some(
                serde_json::to_value(WebPushCredentials::generate("mailto:b@example.com").unwrap())
                    .unwrap(),
            ),
            Own,
        ),
    ]
}

/// Sends a signed call; the bulk route takes NDJSON, the others JSON.
async fn send_signed(herald: &Herald, signer: &Signer, case: &Case) -> (u16, String) {
    let body = case.body.as_ref().map(Value::to_string).unwrap_or_default();
    let req = herald.request(case.method.clone(), &case.path);
    let req = signer.sign(req, case.method.as_str(), &case.path, body.as_bytes());
    let req = if case.route == "/v1/accounts/bulk" {
        req.header("content-type", "application/x-ndjson")
    } else {
        req.header("content-type", "application/json")
    };
    let res = req.body(body).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The signed operations of the OpenAPI document, as `METHOD path`.
async fn documented_signed_routes(herald: &Herald) -> BTreeSet<String> {
    let (status, doc) = herald.raw(herald.request(Method::GET, "/openapi.json")).await;
    assert_eq!(status, 200);
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let signed = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|req| req.get("signature").is_some()));
            if signed {
                routes.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signed_route_refuses_another_apps_ids_and_credentials() {
    let TwoApps { _dir, herald, a, b } = two_apps().await;
    settled(&herald, &b.creds, &b.sent).await;
    let before = snapshot(&herald, &a).await;
    let markers = a.markers();

    let cases = signed_cases(&a);
    let covered: BTreeSet<String> =
        cases.iter().map(|c| format!("{} {}", c.method, c.route)).collect();
    let documented = documented_signed_routes(&herald).await;
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(missing.is_empty(), "signed routes without an isolation case: {missing:?}");
    let unknown: Vec<_> = covered.difference(&documented).collect();
    assert!(unknown.is_empty(), "isolation cases of undocumented routes: {unknown:?}");

    // Before B writes anything naming A's tag.
    let (_, estimate) = herald
        .signed(
            &b.creds,
            Method::POST,
            "/v1/audience/estimate",
            Some(json!({"audience": {"tag": format!("{A}tag")}})),
        )
        .await;
    assert_eq!(estimate["total"], 0, "A's tag selects nobody in B: {estimate}");

    for case in &cases {
        let what = format!("B's {} {}", case.method, case.path);
        // A's key, B's secret: refused before anything is looked up.
        let mut forged = Signer::new(&a.creds);
        forged.secret = b.creds.secret.clone();
        let (status, answer) = send_signed(&herald, &forged, case).await;
        assert_eq!(status, 401, "{what} signed with B's secret for A's key: {answer}");
        assert!(answer.contains("bad_signature"), "{what}: {answer}");

        let (status, answer) = send_signed(&herald, &Signer::new(&b.creds), case).await;
        let request = format!("{} {}", case.path, case.body.clone().unwrap_or_default());
        assert_no_leak(&what, &request, &answer, &markers);
        match case.expect {
            Expect::NotFound => {
                let body: Value = serde_json::from_str(&answer).unwrap();
                assert_eq!((status, code(&body)), (404, "not_found"), "{what}: {answer}");
            }
            Expect::Own => assert!(status < 500, "{what}: {status} {answer}"),
        }
    }
    let (_, app) = herald.signed(&b.creds, Method::GET, "/v1/app", None).await;
    assert_eq!(app["id"], b.creds.id, "/v1/app answers the caller's app");

    assert_eq!(snapshot(&herald, &a).await, before, "B's calls changed A's data");
    herald.stop();
}

/// A device of `app` (no reconnects), its token made by `token`.
async fn connect(herald: &Herald, token: String, device: &str) -> Result<Client, String> {
    let mut options = ConnectOptions::new(token, device, "ios", "com.shop");
    options.reconnect = Reconnect { enabled: false, ..Reconnect::default() };
    let url = format!("{}/v1/connect", herald.base.replace("http://", "ws://"));
    Client::connect(url, options).await.map_err(|err| err.to_string())
}

fn token(key: &str, secret: &str, account: &str) -> String {
    herald_client::mint_token(key, secret, account, chrono::Utc::now().timestamp() + 3600)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tokens_reach_only_their_own_app() {
    let TwoApps { _dir, herald, a, b } = two_apps().await;

    // A's device online; it has A's sent push waiting.
    let (ak, asec) = (&a.creds.key, &a.creds.secret);
    let mut a_phone = connect(&herald, token(ak, asec, &a.account()), &a.device()).await.unwrap();
    assert_eq!(next_push(&mut a_phone).await.push_id, a.sent);

    // A token naming A's app key but signed with B's secret, and one of an unknown key.
    for forged in [token(ak, &b.creds.secret, &a.account()), token("nokey", asec, "x")] {
        let refused = connect(&herald, forged, "forged-device").await;
        assert!(refused.is_err(), "a forged token was accepted");
    }
    let bearer = |token: String| move |req: reqwest::RequestBuilder| req.bearer_auth(token);
    for route in ["/v1/client/opened", "/v1/client/delivered"] {
        let report = json!({"push_id": a.sent, "device_id": a.device()});
        let forged = bearer(token(ak, &b.creds.secret, &a.account()));
        let (status, body) =
            herald.raw(forged(herald.request(Method::POST, route)).json(&report)).await;
        assert_eq!((status, code(&body)), (401, "bad_client_token"), "{route}: {body}");
    }

    // B's own token for an account named like A's, on a device named like A's: B's session,
    // which gets B's pushes only and does not push A's device off.
    let b_token = token(&b.creds.key, &b.creds.secret, &a.account());
    let mut b_phone = connect(&herald, b_token.clone(), &a.device()).await.unwrap();
    let only_b =
        json!({"audience": {"accounts": [a.account()]}, "message": {"text": "bravo-only"}});
    let (status, pushed) = herald.signed(&b.creds, Method::POST, "/v1/pushes", Some(only_b)).await;
    assert_eq!(status, 201, "{pushed}");
    let first = next_push(&mut b_phone).await;
    assert_eq!(first.push_id, pushed["push_id"].as_str().unwrap(), "B's device got A's push");
    settled(&herald, &b.creds, first.push_id.as_str()).await;

    // B's token reporting A's push on the device bound in B: A's push is not found in B.
    let report_before =
        herald.signed(&a.creds, Method::GET, &format!("/v1/pushes/{}/report", a.sent), None).await;
    for route in ["/v1/client/opened", "/v1/client/delivered"] {
        let report = json!({"push_id": a.sent, "device_id": a.device()});
        let req = herald.request(Method::POST, route).bearer_auth(&b_token).json(&report);
        let (status, body) = herald.raw(req).await;
        assert_eq!((status, code(&body)), (404, "not_found"), "{route}: {body}");
        assert_no_leak(route, &report.to_string(), &body.to_string(), &a.markers());
    }
    b_phone.opened(a.sent.clone()).unwrap();

    // A's device is still A's: A's next push reaches it, and no push of B came before it.
    let last = json!({"audience": {"all": true}, "message": {"text": "alpha-last"}});
    let (_, last) = herald.signed(&a.creds, Method::POST, "/v1/pushes", Some(last)).await;
    let got = next_push(&mut a_phone).await;
    assert_eq!(got.push_id, last["push_id"].as_str().unwrap());
    settled(&herald, &a.creds, &got.push_id).await;
    let report_after =
        herald.signed(&a.creds, Method::GET, &format!("/v1/pushes/{}/report", a.sent), None).await;
    assert_eq!(report_after, report_before, "B's reports counted in A's push");
    herald.stop();
}

/// Console routes as `METHOD /console/...`, read from the console's router.
fn console_routes() -> BTreeSet<String> {
    let source = include_str!("../../herald-console/src/lib.rs");
    let mut routes = BTreeSet::new();
    for line in source.lines().map(str::trim).filter(|l| l.starts_with(".route(\"/console")) {
        let path = line.split('"').nth(1).unwrap();
        for method in ["get", "post"] {
            if line.contains(&format!("{method}(")) {
                routes.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_sign_in_of_one_app_reaches_nothing_of_another() {
    let TwoApps { _dir, herald, a, b } = two_apps().await;
    let before = snapshot(&herald, &a).await;
    let markers = a.markers();
    let mut browser = Browser::new(&herald);
    browser.sign_in_app(&b.creds).await;
    let (aid, bid) = (a.creds.id.to_string(), b.creds.id.to_string());
    let (sent, sched, ann, phone) = (&a.sent, &a.scheduled, a.account(), a.device());

    // Pages: A's app id is not found; B's app id with A's ids finds nothing of A.
    let pages = [
        ("GET /console/", format!("?app={aid}"), true),
        ("GET /console/pushes", format!("pushes?app={aid}"), true),
        ("GET /console/report", format!("report?app={aid}&push={sent}"), true),
        ("GET /console/report", format!("report?app={bid}&push={sent}"), true),
        ("GET /console/report.csv", format!("report.csv?app={aid}&push={sent}"), true),
        ("GET /console/report.csv", format!("report.csv?app={bid}&push={sent}"), true),
        ("GET /console/compose", format!("compose?app={aid}"), true),
        ("GET /console/devices", format!("devices?app={aid}&account={ann}"), true),
        ("GET /console/devices", format!("devices?app={bid}&account={ann}"), false),
        ("GET /console/devices", format!("devices?app={bid}&device={phone}"), false),
        ("GET /console/settings", format!("settings?app={aid}"), true),
        ("GET /console/pushes", format!("pushes?app={bid}&q={A}"), false),
    ];
    let mut covered = BTreeSet::new();
    for (route, page, not_found) in pages {
        covered.insert(route.to_owned());
        let (res, body) = browser.get(&page).await;
        let status = res.status();
        assert_no_leak(&page, &page, &body, &markers);
        if not_found {
            assert_eq!(status, 404, "{page}: {body}");
        } else {
            assert!(status < 500, "{page}: {status}");
        }
    }

    // Forms: every form naming A's app, or B's app with A's ids. B's session token in each.
    let app_a = ("app", aid.as_str());
    let forms: Vec<ConsoleForm> = vec![
        ("push-action", vec![app_a, ("push", sched), ("action", "cancel")], 404),
        ("push-action", vec![("app", &bid), ("push", sched), ("action", "cancel")], 404),
        ("push-action", vec![("app", &bid), ("push", sent), ("action", "recall")], 404),
        ("compose", vec![app_a, ("audience", "everyone"), ("title", "t"), ("body", "b")], 404),
        ("estimate", vec![app_a, ("audience", "everyone")], 404),
        ("test-send", vec![app_a, ("test_account", &ann), ("title", "t"), ("body", "b")], 404),
        ("attribute-names", vec![app_a, ("slot_0", "bravo")], 404),
        ("compat", vec![app_a, ("layer", "tencent"), ("settings", "{}")], 403),
        ("limits", vec![app_a, ("changes", r#"{"tags_per_account":1}"#)], 403),
        ("vendor", vec![app_a, ("vendor", "webpush"), ("action", "delete")], 404),
        ("webhook", vec![app_a, ("action", "delete")], 404),
        ("app-create", vec![("name", "bravo-2")], 403),
        ("app-rotate", vec![app_a], 403),
        ("app-delete", vec![app_a, ("confirm", "alpha-app")], 403),
        ("signout", vec![], 303),
    ];
    for (form, fields, expected) in &forms {
        covered.insert(format!("POST /console/{form}"));
        if *form == "signout" {
            continue;
        }
        let (res, body) = browser.submit(form, fields).await;
        let status = res.status();
        assert_no_leak(form, &format!("{fields:?}"), &body, &markers);
        assert_eq!(status, *expected, "{form} {fields:?}: {body}");
    }
    // Signing in with A's key and B's secret fails.
    let mut forged = Browser::new(&herald);
    forged.get("signin").await;
    let (res, body) = forged
        .submit("signin", &[("app_key", &a.creds.key), ("app_secret", &b.creds.secret)])
        .await;
    let status = res.status();
    assert_ne!(status, 303, "A's key with B's secret signed in: {body}");
    for route in
        ["GET /console", "GET /console/signin", "POST /console/signin", "POST /console/signout"]
    {
        covered.insert(route.to_owned());
    }
    covered.insert("GET /console/assets/{file}".to_owned());
    let missing: Vec<_> = console_routes().difference(&covered).cloned().collect();
    assert!(missing.is_empty(), "console routes without an isolation case: {missing:?}");

    assert_eq!(snapshot(&herald, &a).await, before, "B's console session changed A's data");
    herald.stop();
}

/// The Tencent calls `service/command`, read from the layer's command table.
fn tencent_commands() -> Vec<String> {
    let source = include_str!("../src/compat/tencent/mod.rs");
    source
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("(\"") && l.contains("=> Self::"))
        .map(|l| {
            let parts: Vec<&str> = l.split('"').collect();
            format!("{}/{}", parts[1], parts[3])
        })
        .collect()
}

/// The RongCloud calls, read from the layer's router.
fn rongcloud_calls() -> Vec<String> {
    let source = include_str!("../src/compat/rongcloud/mod.rs");
    source
        .lines()
        .filter(|l| l.contains("both(router, \""))
        .map(|l| l.split('"').nth(1).unwrap().to_owned())
        .collect()
}

fn rong_headers(req: reqwest::RequestBuilder, key: &str, secret: &str) -> reqwest::RequestBuilder {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nonce = (10_000 + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)).to_string();
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let signature = hex::encode(Sha1::digest(format!("{secret}{nonce}{timestamp}")));
    req.header("App-Key", key)
        .header("Nonce", nonce)
        .header("Timestamp", timestamp)
        .header("Signature", signature)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_calls_refuse_another_apps_credentials_and_ids() {
    let TwoApps { _dir, herald, a, b } = two_apps().await;
    let before = snapshot(&herald, &a).await;
    let markers = a.markers();
    let (ann, bob) = (a.account(), a.other_account());
    let now = chrono::Utc::now().timestamp();

    // Tencent: every call with B's usersig against A's sdkappid is refused; with B's own
    // sdkappid, A's accounts, tags and task ids are not found.
    let body_of = |command: &str| -> Value {
        match command {
            "im_open_login_svc/account_import" => json!({"UserID": ann}),
            "im_open_login_svc/multiaccount_import" => json!({"Accounts": [ann, bob]}),
            "all_member_push/im_push" => json!({"MsgRandom": 1, "To_Account": [ann],
                "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "bravo"}}]}),
            "all_member_push/im_set_attr_name" => json!({"AttrNames": {"0": "bravocity"}}),
            "all_member_push/im_get_attr_name" => json!({}),
            "all_member_push/im_get_attr" => json!({"To_Account": [ann]}),
            "all_member_push/im_set_attr" => json!({"UserAttrs": [{"To_Account": ann,
                "Attrs": {format!("{A}city"): "bravo"}}]}),
            "all_member_push/im_remove_attr" => json!({"UserAttrs": [{"To_Account": ann,
                "Attrs": {format!("{A}city"): ""}}]}),
            "all_member_push/im_get_tag" => json!({"To_Account": [ann]}),
            "all_member_push/im_add_tag" => json!({"UserTags": [{"To_Account": ann,
                "Tags": ["bravo"]}]}),
            "all_member_push/im_remove_tag" => json!({"UserTags": [{"To_Account": ann,
                "Tags": [format!("{A}tag")]}]}),
            "all_member_push/im_remove_all_tags" => json!({"To_Account": [ann, bob]}),
            "openim/im_get_push_report" => json!({"TaskIds": [a.sent, a.scheduled]}),
            "timpush/all_member_push_statistics" => json!({"TaskIds": [a.sent]}),
            other => panic!("no isolation case for the Tencent call {other}"),
        }
    };
    let commands = tencent_commands();
    assert!(commands.len() >= 14, "{commands:?}");
    for command in &commands {
        let body = body_of(command).to_string();
        let b_sig = usersig::sign(&b.creds.secret, A_SDKAPPID, TENCENT_ADMIN, now, 3600);
        let query = |appid: u64, sig: &str| {
            format!("/v4/{command}?sdkappid={appid}&identifier={TENCENT_ADMIN}&usersig={sig}&random=7&contenttype=json")
        };
        let (_, refused) = herald
            .raw(herald.request(Method::POST, &query(A_SDKAPPID, &b_sig)).body(body.clone()))
            .await;
        assert_ne!(refused["ErrorCode"], 0, "{command} with B's usersig on A: {refused}");
        assert_no_leak(command, &body, &refused.to_string(), &markers);

        let own = usersig::sign(&b.creds.secret, B_SDKAPPID, TENCENT_ADMIN, now, 3600);
        let (status, answer) = herald
            .raw(herald.request(Method::POST, &query(B_SDKAPPID, &own)).body(body.clone()))
            .await;
        assert!(status < 500, "{command}: {status} {answer}");
        assert_no_leak(command, &body, &answer.to_string(), &markers);
    }

    // RongCloud: A's key with B's signature is refused; B's calls on A's users see nothing.
    let calls = rongcloud_calls();
    assert!(calls.len() >= 7, "{calls:?}");
    for call in &calls {
        let body = match call.as_str() {
            "/user/getToken" => format!("userId={ann}"),
            "/user/checkOnline" => format!("userId={ann}"),
            "/user/tag/set" => format!(r#"{{"userId":"{ann}","tags":["bravo"]}}"#),
            "/user/tag/batch/set" => format!(r#"{{"userIds":["{ann}","{bob}"],"tags":[]}}"#),
            "/user/tags/get" => format!("userIds={ann}&userIds={bob}"),
            "/push" | "/message/broadcast" => {
                format!(
                    r#"{{"platform":["ios"],"audience":{{"userid":["{ann}"]}},"notification":{{"alert":"bravo"}}}}"#
                )
            }
            other => panic!("no isolation case for the RongCloud call {other}"),
        };
        let content_type = if body.starts_with('{') {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let path = format!("{call}.json");
        let request = || herald.request(Method::POST, &path).header("content-type", content_type);
        let forged = rong_headers(request(), &a.creds.key, &b.creds.secret).body(body.clone());
        let (status, refused) = herald.raw(forged).await;
        assert_eq!((status, refused["code"].as_i64()), (401, Some(1004)), "{call}: {refused}");
        let own = rong_headers(request(), &b.creds.key, &b.creds.secret).body(body.clone());
        let (status, answer) = herald.raw(own).await;
        assert!(status < 500, "{call}: {status} {answer}");
        assert_no_leak(call, &body, &answer.to_string(), &markers);
    }

    assert_eq!(snapshot(&herald, &a).await, before, "B's compat calls changed A's data");
    herald.stop();
}
