//! The Tencent Cloud IM push-to-all layer (`/v4/...`) through the real binary: usersigs from
//! the public package, golden requests as the spec shows them with their exact answers, every
//! error code, and pushes reaching devices connected through herald's gateway.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "compat_tencent/tencent.rs"]
mod tencent;

use std::time::Duration;

use common::{AppCreds, Herald};
use herald_client::{Client, ConnectOptions, Push, Reconnect};
use reqwest::Method;
use serde_json::{json, Value};
use tencent::{failure, python_usersig, Tencent, ADMIN};

const WAIT: Duration = Duration::from_secs(20);

const IMPORT: &str = "/v4/im_open_login_svc/account_import";
const MULTI_IMPORT: &str = "/v4/im_open_login_svc/multiaccount_import";
const PUSH: &str = "/v4/all_member_push/im_push";
const SET_ATTR_NAME: &str = "/v4/all_member_push/im_set_attr_name";
const GET_ATTR_NAME: &str = "/v4/all_member_push/im_get_attr_name";
const GET_ATTR: &str = "/v4/all_member_push/im_get_attr";
const SET_ATTR: &str = "/v4/all_member_push/im_set_attr";
const REMOVE_ATTR: &str = "/v4/all_member_push/im_remove_attr";
const GET_TAG: &str = "/v4/all_member_push/im_get_tag";
const ADD_TAG: &str = "/v4/all_member_push/im_add_tag";
const REMOVE_TAG: &str = "/v4/all_member_push/im_remove_tag";
const REMOVE_ALL_TAGS: &str = "/v4/all_member_push/im_remove_all_tags";
const PUSH_REPORT: &str = "/v4/openim/im_get_push_report";
const STATISTICS: &str = "/v4/timpush/all_member_push_statistics";

fn ok_envelope() -> Value {
    json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""})
}

/// The envelope plus `fields`.
fn ok_with(fields: Value) -> Value {
    let mut out = ok_envelope();
    out.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    out
}

fn text_body(text: &str) -> Value {
    json!([{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}])
}

async fn device(herald: &Herald, app: &AppCreds, account: &str, platform: &str) -> Client {
    let expires = chrono::Utc::now().timestamp() + 3600;
    let token = herald_client::mint_token(&app.key, &app.secret, account, expires);
    let mut options =
        ConnectOptions::new(token, format!("{account}-{platform}"), platform, "com.shop");
    options.reconnect = Reconnect { enabled: false, ..Reconnect::default() };
    let url = format!("{}/v1/connect", herald.base.replace("http://", "ws://"));
    Client::connect(url, options).await.expect("connect")
}

async fn next(client: &mut Client) -> Push {
    tokio::time::timeout(WAIT, client.next_push())
        .await
        .expect("a push in time")
        .expect("client running")
}

/// Pushes to everyone and returns the TaskId.
async fn push(tencent: &Tencent<'_>, body: Value) -> String {
    let out = tencent.ok(PUSH, body).await;
    out["TaskId"].as_str().unwrap().to_owned()
}

/// Waits until a task reports status 2 (finished) and returns its report.
async fn finished(tencent: &Tencent<'_>, task: &str) -> Value {
    for _ in 0..400 {
        let out = tencent.ok(PUSH_REPORT, json!({"TaskIds": [task]})).await;
        if out["Reports"][0]["Status"] == 2 {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("task {task} did not finish");
}

#[tokio::test]
async fn python_usersigs_are_accepted_and_tampered_or_expired_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let tencent = Tencent::enable(&herald, 1_400_000_001, Tencent::open_limits()).await;
    let secret = tencent.app.secret.clone();
    let call = |sig: String| {
        let query = tencent.query(ADMIN, &sig);
        let tencent = &tencent;
        async move { tencent.call_raw(IMPORT, &query, json!({"UserID": "py"}).to_string()).await }
    };

    let sig = python_usersig(tencent.sdkappid, &secret, ADMIN, 86_400, 0, None);
    assert_eq!(call(sig.clone()).await, ok_envelope(), "the package's usersig is accepted");
    let with_userbuf = python_usersig(tencent.sdkappid, &secret, ADMIN, 86_400, 0, Some("abc"));
    assert_eq!(call(with_userbuf).await, ok_envelope(), "and so is one with a userbuf");

    // One character changed in the middle breaks the zlib stream or the JSON inside it.
    let mut tampered: Vec<char> = sig.chars().collect();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
    let code = failure(&call(tampered.into_iter().collect()).await);
    assert!(code == 70003 || code == 70009, "tampered usersig refused with {code}");

    let wrong_key = python_usersig(tencent.sdkappid, "not-the-secret", ADMIN, 86_400, 0, None);
    assert_eq!(failure(&call(wrong_key).await), 70009, "a usersig made with another key");

    let expired = python_usersig(tencent.sdkappid, &secret, ADMIN, 60, -3_600, None);
    assert_eq!(failure(&call(expired).await), 70001, "a usersig made an hour ago for 60 s");

    let other_app = python_usersig(1_400_000_999, &secret, ADMIN, 86_400, 0, None);
    assert_eq!(failure(&call(other_app).await), 70014, "a usersig of another sdkappid");
}

#[tokio::test]
async fn authentication_refusals_have_tencent_codes() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let tencent = Tencent::enable(&herald, 1_400_000_002, Tencent::open_limits()).await;
    let body = json!({"UserID": "u1"}).to_string();
    let sig = tencent.usersig();

    // The identifier must be the one the usersig was made for, and the app's admin.
    let query = tencent.query("bob", &sig);
    assert_eq!(failure(&tencent.call_raw(IMPORT, &query, body.clone()).await), 70013);
    let bob = tencent.usersig_for("bob");
    let query = tencent.query("bob", &bob);
    assert_eq!(failure(&tencent.call_raw(IMPORT, &query, body.clone()).await), 70403);
    let push_body = json!({"MsgRandom": 1, "MsgBody": text_body("x")}).to_string();
    assert_eq!(failure(&tencent.call_raw(PUSH, &query, push_body.clone()).await), 90009);
    assert_eq!(failure(&tencent.call_raw(GET_TAG, &query, body.clone()).await), 90009);

    // No app has the layer enabled with this sdkappid.
    let query = format!("sdkappid=1400999999&identifier={ADMIN}&usersig={sig}&random=1");
    assert_eq!(failure(&tencent.call_raw(IMPORT, &query, body.clone()).await), 90045);
    assert_eq!(failure(&tencent.call_raw(PUSH, &query, push_body).await), 90045);

    // Missing or garbled parameters.
    let appid = tencent.sdkappid;
    for query in [
        format!("identifier={ADMIN}&usersig={sig}"),
        format!("sdkappid=abc&identifier={ADMIN}&usersig={sig}"),
        format!("sdkappid={appid}&usersig={sig}"),
        format!("sdkappid={appid}&identifier={ADMIN}"),
        format!("sdkappid={appid}&identifier={ADMIN}&usersig="),
    ] {
        assert_eq!(
            failure(&tencent.call_raw(IMPORT, &query, body.clone()).await),
            70402,
            "{query}"
        );
    }
    let query = tencent.query(ADMIN, "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87");
    assert_eq!(failure(&tencent.call_raw(IMPORT, &query, body.clone()).await), 70003);

    // Unknown commands and methods are answered in the envelope too.
    let query = tencent.query(ADMIN, &sig);
    assert_eq!(failure(&tencent.call_raw("/v4/openim/sendmsg", &query, body.clone()).await), 60009);
    assert_eq!(failure(&tencent.call_raw("/v4/im_push", &query, body.clone()).await), 60009);
    let res = reqwest::get(herald.url(&format!("{IMPORT}?{query}"))).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(failure(&res.json().await.unwrap()), 60009);

    // After a rotation the previous secret keeps working during the grace period.
    let path = format!("/admin/apps/{}/rotate-secret", tencent.app.id);
    let (status, rotated) =
        herald.admin(Method::POST, &path, Some(json!({"grace_secs": 600}))).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(tencent.call_raw(IMPORT, &query, body.clone()).await, ok_envelope());
    let new_secret = rotated["secret"].as_str().unwrap();
    let fresh = herald_server::compat::tencent::auth::sign(
        new_secret,
        appid,
        ADMIN,
        chrono::Utc::now().timestamp(),
        60,
    );
    let query = tencent.query(ADMIN, &fresh);
    assert_eq!(tencent.call_raw(IMPORT, &query, body).await, ok_envelope());
}

#[tokio::test]
async fn golden_account_calls() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let tencent = Tencent::enable(&herald, 1_400_000_003, Tencent::open_limits()).await;

    assert_eq!(tencent.call(IMPORT, json!({"UserID": "u1"})).await, ok_envelope());
    assert_eq!(tencent.call(IMPORT, json!({"Identifier": "u2"})).await, ok_envelope());
    assert_eq!(
        tencent
            .call(IMPORT, json!({"UserID": "u3", "Nick": "Three", "FaceUrl": "https://x/3.png"}))
            .await,
        ok_envelope()
    );
    assert_eq!(tencent.call(IMPORT, json!({"UserID": "u1"})).await, ok_envelope(), "again: no-op");
    assert_eq!(
        tencent.call(MULTI_IMPORT, json!({"Accounts": ["u4", "u5"]})).await,
        ok_with(json!({"FailAccounts": []}))
    );
    let long = "x".repeat(33);
    assert_eq!(
        tencent.call(MULTI_IMPORT, json!({"Accounts": ["u6", long]})).await,
        ok_with(json!({"FailAccounts": [long]}))
    );
    let (status, accounts) = herald.signed(&tencent.app, Method::GET, "/v1/accounts", None).await;
    assert_eq!(status, 200, "{accounts}");
    let names: Vec<&str> = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["account"].as_str())
        .collect();
    assert_eq!(names, ["u1", "u2", "u3", "u4", "u5", "u6"]);
}

#[tokio::test]
async fn golden_attribute_calls() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let tencent = Tencent::enable(&herald, 1_400_000_004, Tencent::open_limits()).await;
    tencent.ok(MULTI_IMPORT, json!({"Accounts": ["u1", "u2"]})).await;

    assert_eq!(
        tencent.call(SET_ATTR_NAME, json!({"AttrNames": {"0": "sex", "1": "city"}})).await,
        ok_envelope()
    );
    assert_eq!(
        tencent.call(GET_ATTR_NAME, json!({})).await,
        ok_with(json!({"AttrNames": {"0": "sex", "1": "city"}}))
    );
    assert_eq!(
        tencent
            .call(SET_ATTR, json!({"UserAttrs": [{"To_Account": "u1", "Attrs": {"sex": "f"}}]}))
            .await,
        ok_envelope()
    );
    assert_eq!(
        tencent.call(GET_ATTR, json!({"To_Account": ["u1", "u2"]})).await,
        ok_with(json!({"UserAttrs": [
            {"To_Account": "u1", "Attrs": {"sex": "f"}},
            {"To_Account": "u2", "Attrs": {}}
        ]}))
    );
    assert_eq!(
        tencent
            .call(REMOVE_ATTR, json!({"UserAttrs": [{"To_Account": "u1", "Attrs": ["sex"]}]}))
            .await,
        ok_envelope()
    );
    assert_eq!(
        tencent.call(GET_ATTR, json!({"To_Account": ["u1"]})).await,
        ok_with(json!({"UserAttrs": [{"To_Account": "u1", "Attrs": {}}]}))
    );
    // An empty name unnames a slot; the others keep theirs.
    tencent.ok(SET_ATTR_NAME, json!({"AttrNames": {"0": ""}})).await;
    assert_eq!(
        tencent.call(GET_ATTR_NAME, json!({})).await,
        ok_with(json!({"AttrNames": {"1": "city"}}))
    );
}

#[tokio::test]
async fn golden_tag_calls() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let tencent = Tencent::enable(&herald, 1_400_000_005, Tencent::open_limits()).await;
    tencent.ok(MULTI_IMPORT, json!({"Accounts": ["u1", "u2"]})).await;

    assert_eq!(
        tencent
            .call(
                ADD_TAG,
                json!({"UserTags": [
                    {"To_Account": "u1", "Tags": ["a", "b"]},
                    {"To_Account": "u2", "Tags": ["b"]}
                ]})
            )
            .await,
        ok_envelope()
    );
    assert_eq!(
        tencent.call(GET_TAG, json!({"To_Account": ["u1", "u2"]})).await,
        ok_with(json!({"UserTags": [
            {"To_Account": "u1", "Tags": ["a", "b"]},
            {"To_Account": "u2", "Tags": ["b"]}
        ]}))
    );
    assert_eq!(
        tencent.call(REMOVE_TAG, json!({"UserTags": [{"To_Account": "u1", "Tags": ["a"]}]})).await,
        ok_envelope()
    );
    assert_eq!(
        tencent.call(GET_TAG, json!({"To_Account": ["u1"]})).await,
        ok_with(json!({"UserTags": [{"To_Account": "u1", "Tags": ["b"]}]}))
    );
    assert_eq!(
        tencent.call(REMOVE_ALL_TAGS, json!({"To_Account": ["u1", "u2"]})).await,
        ok_envelope()
    );
    assert_eq!(
        tencent.call(GET_TAG, json!({"To_Account": ["u1", "u2", "never-imported"]})).await,
        ok_with(json!({"UserTags": [
            {"To_Account": "u1", "Tags": []},
            {"To_Account": "u2", "Tags": []},
            {"To_Account": "never-imported", "Tags": []}
        ]}))
    );
}

#[tokio::test]
async fn golden_push_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let tencent = Tencent::enable(&herald, 1_400_000_006, Tencent::open_limits()).await;
    tencent.ok(MULTI_IMPORT, json!({"Accounts": ["u1", "u2", "u3"]})).await;

    let out = tencent
        .call(PUSH, json!({
            "From_Account": ADMIN,
            "MsgRandom": 122,
            "MsgLifeTime": 120,
            "MsgBody": [
                {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi, beauty"}},
                {"MsgType": "TIMCustomElem", "MsgContent": {"Data": "message", "Desc": "notification",
                    "Ext": "url", "Sound": "dingdong.aiff"}}
            ],
            "OfflinePushInfo": {"PushFlag": 0, "Title": "Sale", "Desc": "50% off", "Ext": "{\"id\":1}",
                "AndroidInfo": {"Sound": "android.mp3"},
                "ApnsInfo": {"Sound": "apns.mp3", "BadgeMode": 1, "Title": "iOS sale",
                    "SubTitle": "today", "Image": "https://img/x.png", "MutableContent": 1}}
        }))
        .await;
    let task = out["TaskId"].as_str().unwrap().to_owned();
    assert_eq!(out, ok_with(json!({"TaskId": task})));

    let report = finished(&tencent, &task).await;
    let start = report["Reports"][0]["StartTime"].as_str().unwrap().to_owned();
    assert!(
        chrono::NaiveDateTime::parse_from_str(&start, "%Y-%m-%d %H:%M:%S").is_ok(),
        "StartTime {start}"
    );
    assert_eq!(
        report,
        ok_with(json!({"Reports": [
            {"TaskId": task, "Status": 2, "StartTime": start, "Finished": 3, "Total": 3}
        ]}))
    );

    let now = chrono::Utc::now().timestamp();
    let out = tencent
        .call(STATISTICS, json!({"StartTime": now - 3600, "EndTime": now + 60, "TaskID": [task]}))
        .await;
    assert_eq!(
        out,
        ok_with(json!({"Results": [{"TaskID": task, "TotalCount": 3, "SentCount": 0,
            "DeliveredCount": 0, "ClickCount": 0, "PlatformStatistics": []}]}))
    );
    // Without TaskID: the layer's pushes of the window, not the native ones.
    let native = json!({"audience": {"accounts": ["u1"]}, "message": {"native": true}});
    let (status, out) = herald.signed(&tencent.app, Method::POST, "/v1/pushes", Some(native)).await;
    assert_eq!(status, 201, "{out}");
    let out = tencent.ok(STATISTICS, json!({"StartTime": now - 3600, "EndTime": now + 60})).await;
    assert_eq!(out["Results"][0]["TaskID"], task.as_str());
    assert_eq!(out["Results"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn pushes_reach_gateway_devices_with_their_platform_notification() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let tencent = Tencent::enable(&herald, 1_400_000_007, Tencent::open_limits()).await;
    let app = tencent.app.clone();
    tencent.ok(MULTI_IMPORT, json!({"Accounts": ["alice", "bob", "carol"]})).await;
    let mut alice = device(&herald, &app, "alice", "ios").await;
    let mut bob = device(&herald, &app, "bob", "android").await;
    let mut carol = device(&herald, &app, "carol", "web").await;
    tencent
        .ok(
            ADD_TAG,
            json!({"UserTags": [
                {"To_Account": "alice", "Tags": ["stock-a"]},
                {"To_Account": "bob", "Tags": ["stock-b"]}
            ]}),
        )
        .await;
    tencent.ok(SET_ATTR_NAME, json!({"AttrNames": {"0": "tier", "1": "city"}})).await;
    tencent
        .ok(
            SET_ATTR,
            json!({"UserAttrs": [
                {"To_Account": "carol", "Attrs": {"tier": "platinum", "city": "Shenzhen"}},
                {"To_Account": "bob", "Attrs": {"tier": "platinum", "city": "Beijing"}}
            ]}),
        )
        .await;

    let stocks = push(
        &tencent,
        json!({
            "MsgRandom": 1, "MsgLifeTime": 3600, "MsgBody": text_body("stocks"),
            "Condition": {"TagsOr": ["stock-a", "stock-b"]},
            "OfflinePushInfo": {"Title": "Market", "Desc": "up 3%", "Ext": "e1",
                "ApnsInfo": {"SubTitle": "today", "Sound": "bell.caf"},
                "AndroidInfo": {"GoogleChannelID": "stocks"}}
        }),
    )
    .await;
    push(
        &tencent,
        json!({
            "MsgRandom": 2, "MsgLifeTime": 3600, "From_Account": "ops",
            "MsgBody": text_body("vip"),
            "Condition": {"AttrsAnd": {"tier": "platinum", "city": "Shenzhen"}}
        }),
    )
    .await;
    push(
        &tencent,
        json!({
            "MsgRandom": 3, "MsgLifeTime": 3600, "MsgBody": text_body("quiet"),
            "Condition": {"TagsAnd": ["stock-a"]},
            "OfflinePushInfo": {"PushFlag": 1, "Title": "no vendor push"}
        }),
    )
    .await;
    let again = push(
        &tencent,
        json!({
            "MsgRandom": 1, "MsgLifeTime": 3600, "MsgBody": text_body("stocks, sent twice")
        }),
    )
    .await;
    assert_eq!(again, stocks, "the same MsgRandom answers with the first TaskId");
    push(&tencent, json!({"MsgRandom": 4, "MsgLifeTime": 3600, "MsgBody": text_body("end")})).await;

    let a1 = next(&mut alice).await;
    assert_eq!(a1.push_id, stocks);
    assert_eq!(a1.message, json!({"MsgBody": text_body("stocks")}));
    assert_eq!(a1.sender.as_deref(), Some(ADMIN), "From_Account defaults to the admin");
    assert_eq!(
        Value::Object(a1.notification.clone().unwrap()),
        json!({"title": "Market", "body": "up 3%", "subtitle": "today", "sound": "bell.caf",
            "extras": {"ext": "e1"}}),
        "the iOS notification"
    );
    let a2 = next(&mut alice).await;
    assert_eq!(a2.message, json!({"MsgBody": text_body("quiet")}));
    assert_eq!(
        a2.notification.as_ref().and_then(|n| n.get("title")),
        Some(&serde_json::json!("no vendor push")),
        "PushFlag 1 turns only vendor pushes off"
    );
    assert_eq!(next(&mut alice).await.message, json!({"MsgBody": text_body("end")}));

    let b1 = next(&mut bob).await;
    assert_eq!(
        Value::Object(b1.notification.clone().unwrap()),
        json!({"title": "Market", "body": "up 3%", "channel_id": "stocks", "extras": {"ext": "e1"}}),
        "the Android notification"
    );
    assert_eq!(next(&mut bob).await.message, json!({"MsgBody": text_body("end")}));

    let c1 = next(&mut carol).await;
    assert_eq!(c1.message, json!({"MsgBody": text_body("vip")}));
    assert_eq!(c1.sender.as_deref(), Some("ops"));
    assert_eq!(
        Value::Object(c1.notification.clone().unwrap()),
        json!({"body": "vip"}),
        "without OfflinePushInfo the text element is the notification body"
    );
    assert_eq!(next(&mut carol).await.message, json!({"MsgBody": text_body("end")}));

    // Deliveries and opens show in the statistics.
    alice.ack(a1.seq).unwrap();
    alice.opened(a1.push_id.clone()).unwrap();
    bob.ack(b1.seq).unwrap();
    let mut stats = Value::Null;
    for _ in 0..200 {
        stats = tencent.ok(STATISTICS, json!({"TaskID": [stocks]})).await;
        if stats["Results"][0]["DeliveredCount"] == 2 && stats["Results"][0]["ClickCount"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        stats["Results"][0],
        json!({"TaskID": stocks, "TotalCount": 2, "SentCount": 2, "DeliveredCount": 2,
        "ClickCount": 1, "PlatformStatistics": [
            {"Platform": "android", "TotalCount": 1, "SentCount": 1, "DeliveredCount": 1, "ClickCount": 0},
            {"Platform": "ios", "TotalCount": 1, "SentCount": 1, "DeliveredCount": 1, "ClickCount": 1}
        ]})
    );
}

#[tokio::test]
async fn msg_life_time_zero_reaches_online_users_only() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let tencent = Tencent::enable(&herald, 1_400_000_008, Tencent::open_limits()).await;
    let app = tencent.app.clone();
    tencent.ok(MULTI_IMPORT, json!({"Accounts": ["dave", "erin"]})).await;
    let mut erin = device(&herald, &app, "erin", "android").await;

    let online =
        push(&tencent, json!({"MsgRandom": 10, "MsgLifeTime": 0, "MsgBody": text_body("now")}))
            .await;
    let stored = push(&tencent, json!({"MsgRandom": 11, "MsgBody": text_body("default")})).await;
    let kept =
        push(&tencent, json!({"MsgRandom": 12, "MsgLifeTime": 600, "MsgBody": text_body("kept")}))
            .await;
    assert_eq!(next(&mut erin).await.push_id, online, "online users get MsgLifeTime 0 pushes");
    assert_eq!(next(&mut erin).await.push_id, stored);
    assert_eq!(next(&mut erin).await.push_id, kept);
    finished(&tencent, &kept).await;

    // Dave connects afterwards: only the push stored for 600 s waits for him (absent
    // MsgLifeTime is 0, as with Tencent).
    let mut dave = device(&herald, &app, "dave", "ios").await;
    let got = next(&mut dave).await;
    assert_eq!(got.push_id, kept);
    assert!(got.expires_at.is_some());
    let end =
        push(&tencent, json!({"MsgRandom": 13, "MsgLifeTime": 0, "MsgBody": text_body("end")}))
            .await;
    assert_eq!(next(&mut dave).await.push_id, end, "nothing else was stored for dave");
}

/// One call per row: which code it must provoke.
struct Case {
    path: &'static str,
    body: String,
    code: u64,
}

fn case(path: &'static str, body: Value, code: u64) -> Case {
    Case { path, body: body.to_string(), code }
}

#[tokio::test]
async fn every_error_code_of_the_spec_is_provoked() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let tencent = Tencent::enable(&herald, 1_400_000_009, Tencent::open_limits()).await;
    tencent.ok(MULTI_IMPORT, json!({"Accounts": ["u1", "u2"]})).await;
    tencent.ok(SET_ATTR_NAME, json!({"AttrNames": {"0": "city"}})).await;
    let text = text_body("x");
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
    let long_tag = "t".repeat(51);
    let push = |extra: Value| {
        let mut body = json!({"MsgRandom": 7, "MsgBody": text_body("x")});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = vec![
        Case { path: PUSH, body: "{\"MsgRandom\": 1,".into(), code: 90001 },
        Case { path: ADD_TAG, body: "not json".into(), code: 90001 },
        case(
            PUSH,
            json!({"MsgRandom": 1, "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {}}]}),
            90002,
        ),
        case(PUSH, json!({"MsgRandom": 1}), 90002),
        case(PUSH, json!({"MsgRandom": 1, "MsgBody": {"MsgType": "TIMTextElem"}}), 90007),
        case(PUSH, json!({"MsgBody": text}), 90005),
        case(PUSH, json!({"MsgRandom": "1", "MsgBody": text}), 90005),
        case(PUSH, json!({"MsgRandom": 4_294_967_296_u64, "MsgBody": text}), 90005),
        case(PUSH, push(json!({"OfflinePushInfo": "x"})), 90010),
        case(PUSH, push(json!({"Condition": ["a"]})), 90010),
        case(PUSH, push(json!({"From_Account": 5})), 90010),
        case(GET_TAG, json!({"To_Account": many}), 90018),
        case(GET_ATTR, json!({"To_Account": many}), 90018),
        case(MULTI_IMPORT, json!({"Accounts": many}), 90018),
        case(ADD_TAG, json!({"UserTags": [{"To_Account": "u1", "Tags": [long_tag]}]}), 90020),
        case(PUSH, push(json!({"Condition": {"TagsOr": [long_tag]}})), 90020),
        case(PUSH, push(json!({"Condition": {"TagsAnd": ["a"], "TagsOr": ["a", "b"]}})), 90022),
        case(PUSH, push(json!({"MsgLifeTime": 604_801})), 90026),
        case(PUSH, push(json!({"MsgLifeTime": -1})), 90026),
        case(PUSH, push(json!({"Condition": {"TagsOr": eleven}})), 90032),
        case(PUSH, push(json!({"Condition": {"TagsAnd": eleven}})), 90032),
        case(ADD_TAG, json!({"UserTags": [{"To_Account": "u1", "Tags": eleven}]}), 90032),
        case(PUSH, push(json!({"Condition": {"AttrsAnd": {"sex": "f"}}})), 90033),
        case(SET_ATTR, json!({"UserAttrs": [{"To_Account": "u1", "Attrs": {"sex": "f"}}]}), 90033),
        case(
            SET_ATTR,
            json!({"UserAttrs": [{"To_Account": "u1", "Attrs": {"city": "x".repeat(51)}}]}),
            90033,
        ),
        case(SET_ATTR_NAME, json!({"AttrNames": {"10": "zone"}}), 90033),
        case(SET_ATTR_NAME, json!({"AttrNames": {"1": "city"}}), 90033),
        case(PUSH, push(json!({"Condition": {"TagsAnd": ["a"], "AttrsOr": {"city": "x"}}})), 90039),
        case(PUSH, push(json!({"Condition": {"TagsOr": [""]}})), 90040),
        case(ADD_TAG, json!({"UserTags": [{"To_Account": "u1", "Tags": [""]}]}), 90040),
        case(PUSH_REPORT, json!({"TaskIds": ["p_unknown"]}), 90049),
        case(STATISTICS, json!({"TaskID": ["p_unknown"]}), 90049),
        case(PUSH, push(json!({"MsgBody": text_body(&"x".repeat(11 * 1024))})), 90056),
        case(IMPORT, json!({"UserID": "x".repeat(33)}), 70402),
        case(IMPORT, json!({"Nick": "no id"}), 70402),
        case(ADD_TAG, json!({"UserTags": "u1"}), 70402),
        case(STATISTICS, json!({"TaskID": ["a", "b", "c", "d", "e", "f"]}), 70402),
        case(ADD_TAG, json!({"UserTags": [{"To_Account": "ghost", "Tags": ["a"]}]}), 70107),
        case(
            SET_ATTR,
            json!({"UserAttrs": [{"To_Account": "ghost", "Attrs": {"city": "x"}}]}),
            70107,
        ),
        case(REMOVE_ALL_TAGS, json!({"To_Account": ["u1", "ghost"]}), 70107),
    ];
    for Case { path, body, code } in cases {
        let query = tencent.query(ADMIN, &tencent.usersig());
        let out = tencent.call_raw(path, &query, body.clone()).await;
        assert_eq!(failure(&out), code, "{path} {body}: {out}");
    }
    // A refused batch changed nothing: u1 did not get the tag its batch was refused for.
    assert_eq!(
        tencent.call(GET_TAG, json!({"To_Account": ["u1"]})).await,
        ok_with(json!({"UserTags": [{"To_Account": "u1", "Tags": []}]}))
    );

    // 90024 and 90047: the layer's broadcast interval and daily quota.
    let slow = Tencent::enable(
        &herald,
        1_400_000_010,
        json!({"min_interval_secs": 3600, "per_hour": null, "per_day": 100}),
    )
    .await;
    slow.ok(PUSH, json!({"MsgRandom": 1, "MsgBody": text_body("first")})).await;
    assert_eq!(
        slow.fail(PUSH, json!({"MsgRandom": 2, "MsgBody": text_body("second")})).await,
        90024
    );
    slow.ok(PUSH, json!({"MsgRandom": 1, "MsgBody": text_body("a retry pushes nothing")})).await;
    let quota = Tencent::enable(
        &herald,
        1_400_000_011,
        json!({"min_interval_secs": 0, "per_hour": null, "per_day": 1}),
    )
    .await;
    quota.ok(PUSH, json!({"MsgRandom": 1, "MsgBody": text_body("first")})).await;
    assert_eq!(
        quota.fail(PUSH, json!({"MsgRandom": 2, "MsgBody": text_body("second")})).await,
        90047
    );

    // 91000: the server cannot read its own state (settings damaged behind its back).
    tencent::store_sql(
        &herald,
        &format!("UPDATE compat_layers SET settings = '{{' WHERE app_id = {}", tencent.app.id),
    );
    assert_eq!(tencent.fail(IMPORT, json!({"UserID": "u9"})).await, 91000);
}
