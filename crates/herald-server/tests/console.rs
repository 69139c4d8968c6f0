//! The operator console at `/console`, through the real binary: pages, headers, sign-in,
//! CSRF, app scoping, and a push composed, reported and recalled.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::Browser;
use common::{Herald, ADMIN_TOKEN};
use herald_vendor::test_support::TestApnsKey;
use herald_vendor::ApnsEnvironment;
use reqwest::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::Method;

#[tokio::test]
async fn pages_carry_the_policy_and_need_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let mut browser = Browser::new(&herald);

    let bare = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let res = bare.get(herald.url("/console")).send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), &res.headers()[LOCATION]),
        (303, &"console/".parse().unwrap())
    );

    let (res, body) = browser.get("signin").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(!body.contains("<script>") && !body.contains("style="), "nothing inline");
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");

    // htmx requests (the live estimate, the report's refresh) are sent to sign in as a page.
    let req = browser.http.post(herald.url("/console/estimate")).header("hx-request", "true");
    let res = req.send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), &res.headers()["hx-redirect"]),
        (200, &"signin".parse().unwrap())
    );

    for page in ["", "pushes", "compose", "report?push=p_x"] {
        let (res, _) = browser.get(page).await;
        assert_eq!(res.status(), 303, "{page}");
        assert_eq!(res.headers()[LOCATION], "signin", "{page}");
    }

    let (res, _) = browser.get("assets/htmx-2.0.11.min.js").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CONTENT_TYPE], "text/javascript");
    assert!(res.headers()["cache-control"].to_str().unwrap().contains("max-age=31536000"));
    herald.stop();
}

#[tokio::test]
async fn wrong_credentials_are_told_and_slowed_down() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("shop").await;
    let mut browser = Browser::new(&herald);

    let (res, body) = browser.sign_in(&[("app_key", &app.key), ("app_secret", "wrong")]).await;
    assert_eq!(res.status(), 401);
    assert!(body.contains("Wrong credentials"), "{body}");
    for _ in 0..2 {
        let (res, _) = browser.sign_in(&[("admin_token", "not-the-token")]).await;
        assert_eq!(res.status(), 401);
    }
    let (res, body) = browser.sign_in(&[("admin_token", ADMIN_TOKEN)]).await;
    assert_eq!(res.status(), 429, "even right credentials wait after repeated failures");
    assert!(body.contains("Too many failed sign-ins"), "{body}");

    // A form not sent by the console (no token, or another one) is refused.
    let (res, _) = browser.post("signin", &[("csrf", "0123"), ("admin_token", ADMIN_TOKEN)]).await;
    assert_eq!(res.status(), 403);
    herald.stop();
}

#[tokio::test]
async fn an_app_sign_in_sees_its_app_only() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let shop = herald.create_app("shop").await;
    let news = herald.create_app("news").await;
    let mut browser = Browser::new(&herald);
    browser.sign_in_app(&shop).await;

    let (res, body) = browser.get("pushes").await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("shop") && !body.contains("news"));
    for page in [format!("pushes?app={}", news.id), format!("compose?app={}", news.id)] {
        let (res, _) = browser.get(&page).await;
        assert_eq!(res.status(), 404, "{page}");
    }
    let (res, _) = browser.get(&format!("report?app={}&push=p_x", news.id)).await;
    assert_eq!(res.status(), 404);

    // The admin sees every app and picks one.
    let mut admin = Browser::new(&herald);
    let (res, _) = admin.sign_in(&[("admin_token", ADMIN_TOKEN)]).await;
    assert_eq!(res.status(), 303);
    let (_, body) = admin.get("").await;
    assert!(body.contains("shop") && body.contains("news"), "{body}");
    let (res, _) = admin.get(&format!("pushes?app={}", news.id)).await;
    assert_eq!(res.status(), 200);

    // Signed out, the session is gone.
    let csrf = browser.csrf.clone();
    let (res, _) = browser.post("signout", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    let (res, _) = browser.get("pushes").await;
    assert_eq!(res.headers()[LOCATION], "signin");
    herald.stop();
}

#[tokio::test]
async fn a_push_is_composed_reported_and_recalled() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("shop").await;
    let mut device = herald.device(&app, "alice", "d-alice", "ios").await;
    let (status, _) = herald
        .signed(
            &app,
            Method::POST,
            "/v1/tags/add",
            Some(serde_json::json!({"accounts": ["alice"], "tags": ["vip"]})),
        )
        .await;
    assert_eq!(status, 200);
    let mut browser = Browser::new(&herald);
    browser.sign_in_app(&app).await;
    browser.get("compose").await;
    let csrf = browser.csrf.clone();

    // Without the token, nothing is sent.
    let (res, _) = browser.post("compose", &[("tags_all", "vip"), ("title", "Hi")]).await;
    assert_eq!(res.status(), 403);

    let (res, body) = browser.post("estimate", &[("csrf", &csrf), ("tags_all", "vip")]).await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("id=\"estimate-total\">1<"), "{body}");

    // A limit of the service shows beside its field.
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(20_000));
    let form = [("csrf", csrf.as_str()), ("tags_all", "vip"), ("message", &big)];
    let (res, body) = browser.post("compose", &form).await;
    assert_eq!(res.status(), 422);
    assert!(body.contains("id=\"message-error\""), "{body}");

    // Everyone needs the typed confirmation.
    let form = [("csrf", csrf.as_str()), ("audience", "everyone"), ("title", "Hi")];
    let (res, body) = browser.post("compose", &form).await;
    assert_eq!(res.status(), 422);
    assert!(body.contains("id=\"confirm-error\""), "{body}");

    let form = [("csrf", csrf.as_str()), ("test_account", "alice"), ("title", "Test")];
    let (res, body) = browser.post("test-send", &form).await;
    assert_eq!(res.status(), 200, "{body}");
    assert!(body.contains("Test push sent to alice"));
    assert_eq!(common::next_push(&mut device).await.notification.unwrap()["title"], "Test");

    let form = [("csrf", csrf.as_str()), ("tags_all", "vip"), ("title", "Sale"), ("body", "Today")];
    let (res, _) = browser.post("compose", &form).await;
    assert_eq!(res.status(), 303);
    let report = res.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(report.starts_with(&format!("report?app={}&push=p_", app.id)), "{report}");
    let push = common::next_push(&mut device).await;
    assert_eq!(push.notification.unwrap()["title"], "Sale");

    let (res, body) = browser.get(&report).await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("id=\"funnel\""));
    let push_id = report.rsplit('=').next().unwrap().to_owned();
    let (res, csv) = browser.get(&format!("report.csv?app={}&push={push_id}", app.id)).await;
    assert_eq!(res.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
    assert!(csv.starts_with("platform,targeted,"), "{csv}");
    let (_, list) = browser.get("pushes").await;
    assert!(list.contains(&push_id));

    // A push for later is scheduled, listed as such, and can be cancelled. (To pasted accounts:
    // not a broadcast, so the app's broadcast interval does not apply.)
    let later =
        (chrono::Utc::now() + chrono::Duration::hours(2)).format("%Y-%m-%dT%H:%M").to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("accounts", "alice\nbob"),
        ("title", "Later"),
        ("when", "at"),
        ("push_at", &later),
    ];
    let (res, _) = browser.post("compose", &form).await;
    assert_eq!(res.status(), 303);
    let scheduled =
        res.headers()[LOCATION].to_str().unwrap().rsplit('=').next().unwrap().to_owned();
    let (_, list) = browser.get("pushes?status=scheduled").await;
    assert!(list.contains(&scheduled) && !list.contains(&push_id), "{list}");
    let (_, list) = browser.get("pushes?q=later").await;
    assert!(list.contains(&scheduled) && !list.contains(&push_id), "text matches: {list}");
    let form = [("csrf", csrf.as_str()), ("push", &scheduled), ("action", "cancel")];
    let (res, _) = browser.post("push-action", &form).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION].to_str().unwrap(), format!("pushes?app={}", app.id));
    let (_, view) =
        herald.signed(&app, Method::GET, &format!("/v1/pushes/{scheduled}"), None).await;
    assert_eq!(view["status"], "cancelled");
    // Cancelling it again is refused with the service's reason.
    let (res, body) = browser.post("push-action", &form).await;
    assert_eq!(res.status(), 409, "{body}");

    let form =
        [("csrf", csrf.as_str()), ("push", &push_id), ("action", "recall"), ("back", "report")];
    let (res, _) = browser.post("push-action", &form).await;
    assert_eq!(res.status(), 303);
    let (status, view) =
        herald.signed(&app, Method::GET, &format!("/v1/pushes/{push_id}"), None).await;
    assert_eq!(status, 200);
    assert!(view["recalled_at"].is_string(), "{view}");
    herald.stop();
}

#[tokio::test]
async fn the_admin_manages_apps() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let shop = herald.create_app("shop").await;
    let mut admin = Browser::new(&herald);
    admin.sign_in(&[("admin_token", ADMIN_TOKEN)]).await;
    admin.get("").await;
    let csrf = admin.csrf.clone();

    let (res, body) = admin.post("app-create", &[("csrf", &csrf), ("name", "news")]).await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("id=\"created\"") && body.contains("hs_"), "{body}");

    let id = shop.id.to_string();
    let (res, body) =
        admin.post("app-rotate", &[("csrf", &csrf), ("app", &id), ("grace_secs", "60")]).await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("id=\"rotated\""), "{body}");
    let form = [("csrf", csrf.as_str()), ("app", &id), ("changes", r#"{"message_bytes": 4096}"#)];
    let (res, body) = admin.post("limits", &form).await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("Limits saved"), "{body}");
    let (_, view) = herald.admin(Method::GET, &format!("/admin/apps/{id}"), None).await;
    assert_eq!(view["limits"]["message_bytes"], 4096);
    let form = [("csrf", csrf.as_str()), ("app", &id), ("changes", r#"{"message_bytes": 0}"#)];
    let (res, body) = admin.post("limits", &form).await;
    assert_eq!(res.status(), 422);
    assert!(body.contains("id=\"limits-error\""), "{body}");
    let form = [
        ("csrf", csrf.as_str()),
        ("app", &id),
        ("layer", "tencent"),
        ("settings", r#"{"sdkappid": 1400000001}"#),
    ];
    let (res, body) = admin.post("compat", &form).await;
    assert_eq!(res.status(), 200, "{body}");
    assert!(body.contains("tencent settings saved"), "{body}");
    let (_, layer) =
        herald.admin(Method::GET, &format!("/admin/apps/{id}/compat/tencent"), None).await;
    assert_eq!(layer["sdkappid"], 1400000001u64, "{layer}");
    let form = [
        ("csrf", csrf.as_str()),
        ("app", &id),
        ("layer", "tencent"),
        ("settings", r#"{"sdkapid": 1}"#),
    ];
    let (res, body) = admin.post("compat", &form).await;
    assert_eq!(res.status(), 422);
    assert!(body.contains("id=\"compat-error\""), "{body}");
    // The old secret still signs in during the grace period.
    Browser::new(&herald).sign_in_app(&shop).await;

    let (res, body) =
        admin.post("app-delete", &[("csrf", &csrf), ("app", &id), ("confirm", "shoe")]).await;
    assert_eq!(res.status(), 422);
    assert!(body.contains("id=\"apps-error\""), "{body}");
    let (res, _) =
        admin.post("app-delete", &[("csrf", &csrf), ("app", &id), ("confirm", "shop")]).await;
    assert_eq!(res.status(), 303);
    let (status, _) = herald.admin(Method::GET, &format!("/admin/apps/{id}"), None).await;
    assert_eq!(status, 404);

    // An app sign-in manages no apps.
    let news = herald.create_app("other").await;
    let mut app = Browser::new(&herald);
    app.sign_in_app(&news).await;
    app.get("pushes").await;
    let csrf = app.csrf.clone();
    let (res, _) = app.post("app-create", &[("csrf", &csrf), ("name", "mine")]).await;
    assert_eq!(res.status(), 403);
    herald.stop();
}

#[tokio::test]
async fn settings_and_lookups_show_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("shop").await;
    let _device = herald.device(&app, "alice", "d-alice", "android").await;
    let tags = serde_json::json!({"accounts": ["alice"], "tags": ["vip"]});
    herald.signed(&app, Method::POST, "/v1/tags/add", Some(tags)).await;
    let mut browser = Browser::new(&herald);
    browser.sign_in_app(&app).await;

    let (res, body) = browser.get("settings").await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("message_bytes") && !body.contains("Compat layers"), "{body}");
    let csrf = browser.csrf.clone();
    let form = [("csrf", csrf.as_str()), ("action", "set"), ("url", "ftp://x"), ("events", "")];
    let (res, body) = browser.post("webhook", &form).await;
    assert_eq!(res.status(), 422);
    assert!(body.contains("id=\"webhook-error\""), "{body}");
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "set"),
        ("url", "https://backend.test/h"),
        ("events", ""),
    ];
    let (res, body) = browser.post("webhook", &form).await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("value=\"https://backend.test/h\""), "{body}");

    let form = [("csrf", csrf.as_str()), ("changes", r#"{"message_bytes": 1}"#)];
    let (res, _) = browser.post("limits", &form).await;
    assert_eq!(res.status(), 403, "limits are the admin's");

    let (res, body) = browser.post("attribute-names", &[("csrf", &csrf), ("slot_0", "city")]).await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("Attribute names saved") && body.contains("value=\"city\""), "{body}");

    let form =
        [("csrf", csrf.as_str()), ("vendor", "apns"), ("action", "set"), ("credentials", "{")];
    let (res, body) = browser.post("vendor", &form).await;
    assert_eq!(res.status(), 422);
    assert!(body.contains("id=\"vendor-error\"") && body.contains("not valid JSON"), "{body}");

    let key = TestApnsKey::generate("KEYID12345", "TEAMID1234");
    let credentials =
        serde_json::to_string(&key.credentials("com.shop.app", ApnsEnvironment::Production))
            .unwrap();
    let form = [
        ("csrf", csrf.as_str()),
        ("vendor", "apns"),
        ("action", "set"),
        ("credentials", &credentials),
    ];
    let (res, body) = browser.post("vendor", &form).await;
    assert_eq!(res.status(), 200, "{body}");
    assert!(body.contains("KEYID12345") && !body.contains("PRIVATE KEY"), "redacted: {body}");
    let form = [("csrf", csrf.as_str()), ("vendor", "apns"), ("action", "delete")];
    let (res, body) = browser.post("vendor", &form).await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("apns credentials deleted") && !body.contains("KEYID12345"), "{body}");

    let (res, body) = browser.get("devices?account=alice").await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("id=\"online\">yes") && body.contains("id=\"tags\">vip"), "{body}");
    assert!(body.contains("d-alice") && body.contains("android"));
    let (_, body) = browser.get("devices?device=d-alice").await;
    assert!(body.contains("Account <code>alice</code>"), "{body}");
    let (_, body) = browser.get("devices?account=nobody").await;
    assert!(body.contains("id=\"lookup-error\""), "{body}");

    let (res, body) = browser.get("").await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("id=\"online-now\">1<") && body.contains("android: 1"), "{body}");
    herald.stop();
}
