//! The RongCloud server API through the real binary: every call with the request bodies of
//! RongCloud's documents (spec/compat.md section 2, seeds/004), JSON and XML answers, every
//! error code, and pushes reaching devices logged in with a `getToken` token.
//!
//! Code 1000 (internal error) cannot be provoked from outside without breaking the data
//! directory under the server; its mapping is covered by the layer's unit tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{AppCreds, Herald};
use herald_client::{Client, ConnectOptions, Push, Reconnect};
use reqwest::Method;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

const WAIT: Duration = Duration::from_secs(20);

/// Limits loose enough for tests that push more than RongCloud's 2 an hour.
fn loose() -> Value {
    json!({"limits": {"min_interval_secs": 0, "per_hour": null, "per_day": 1000}})
}

/// Starts herald with an app whose RongCloud layer is enabled with `settings`.
async fn start(settings: Value) -> (tempfile::TempDir, Herald, AppCreds) {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("rong").await;
    enable(&herald, &app, settings).await;
    (dir, herald, app)
}

async fn enable(herald: &Herald, app: &AppCreds, settings: Value) {
    let path = format!("/admin/apps/{}/compat/rongcloud", app.id);
    let (status, body) = herald.admin(Method::PUT, &path, Some(settings)).await;
    assert_eq!(status, 200, "{body}");
}

/// RongCloud's signature headers, every part overridable to provoke refusals.
#[derive(Clone)]
struct Sig {
    key: String,
    secret: String,
    nonce: String,
    timestamp: String,
    /// Header names with the `RC-` prefix.
    prefixed: bool,
}

impl Sig {
    fn new(app: &AppCreds) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Short numeric nonces, as RongCloud's SDKs send.
        Sig {
            key: app.key.clone(),
            secret: app.secret.clone(),
            nonce: format!("{}", 10_000 + n),
            timestamp: chrono::Utc::now().timestamp().to_string(),
            prefixed: false,
        }
    }

    fn signature(&self) -> String {
        let mut sha = Sha1::new();
        sha.update(format!("{}{}{}", self.secret, self.nonce, self.timestamp));
        hex::encode(sha.finalize())
    }

    fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let p = if self.prefixed { "RC-" } else { "" };
        req.header(format!("{p}App-Key"), &self.key)
            .header(format!("{p}Nonce"), &self.nonce)
            .header(format!("{p}Timestamp"), &self.timestamp)
            .header(format!("{p}Signature"), self.signature())
    }
}

/// A request body as RongCloud's documents send it.
enum Body<'a> {
    Json(&'a str),
    Form(&'a str),
    Empty,
}

/// Status, raw body and the body parsed as JSON (`Null` for XML).
struct Answer {
    status: u16,
    text: String,
    json: Value,
    retry_after: Option<String>,
}

impl Answer {
    fn code(&self) -> i64 {
        self.json["code"].as_i64().unwrap_or(-1)
    }
}

async fn send_with(herald: &Herald, sig: &Sig, path: &str, body: Body<'_>) -> Answer {
    let req = sig.apply(herald.request(Method::POST, path));
    let req = match body {
        Body::Json(text) => req.header("Content-Type", "application/json").body(text.to_owned()),
        Body::Form(text) => {
            req.header("Content-Type", "application/x-www-form-urlencoded").body(text.to_owned())
        }
        Body::Empty => req,
    };
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, text, json, retry_after }
}

async fn send(herald: &Herald, app: &AppCreds, path: &str, body: Body<'_>) -> Answer {
    send_with(herald, &Sig::new(app), path, body).await
}

/// Asserts a refusal: HTTP status and RongCloud code.
fn refused(answer: &Answer, status: u16, code: i64) {
    assert_eq!((answer.status, answer.code()), (status, code), "{}", answer.text);
    assert!(answer.json["errorMessage"].as_str().is_some_and(|m| !m.is_empty()), "{}", answer.text);
}

async fn get_token(herald: &Herald, app: &AppCreds, user: &str) -> String {
    let answer =
        send(herald, app, "/user/getToken.json", Body::Form(&format!("userId={user}"))).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json["token"].as_str().unwrap().to_owned()
}

async fn device(herald: &Herald, token: String, id: &str, platform: &str, package: &str) -> Client {
    let mut options = ConnectOptions::new(token, id, platform, package);
    options.reconnect = Reconnect { enabled: false, ..Reconnect::default() };
    let url = format!("{}/v1/connect", herald.base.replace("http://", "ws://"));
    Client::connect(url, options).await.expect("connect")
}

async fn next(client: &mut Client) -> Push {
    tokio::time::timeout(WAIT, client.next_push()).await.expect("a push in time").expect("running")
}

async fn push(herald: &Herald, app: &AppCreds, body: &str) -> String {
    let answer = send(herald, app, "/push.json", Body::Json(body)).await;
    assert_eq!((answer.status, answer.code()), (200, 200), "{}", answer.text);
    answer.json["id"].as_str().unwrap().to_owned()
}

/// A stored push as the native API shows it.
async fn stored(herald: &Herald, app: &AppCreds, id: &str) -> Value {
    let (status, view) = herald.signed(app, Method::GET, &format!("/v1/pushes/{id}"), None).await;
    assert_eq!(status, 200, "{view}");
    view
}

async fn tags_of(herald: &Herald, app: &AppCreds, user: &str) -> Value {
    let (status, view) =
        herald.signed(app, Method::GET, &format!("/v1/accounts/{user}"), None).await;
    assert_eq!(status, 200, "{view}");
    view["tags"].clone()
}

#[tokio::test]
async fn tag_calls_with_the_documents_requests() {
    let (_dir, herald, app) = start(json!({})).await;

    // seeds/004 §1, byte for byte.
    let set = send(
        &herald,
        &app,
        "/user/tag/set.json",
        Body::Json(r#"{"userId":"31232","tags":["bj","男"]}"#),
    )
    .await;
    assert_eq!((set.status, set.text.as_str()), (200, r#"{"code":200}"#));
    assert_eq!(set.json, json!({"code": 200}),);
    assert_eq!(tags_of(&herald, &app, "31232").await, json!(["bj", "男"]));

    // seeds/004 §2.
    let batch = send(
        &herald,
        &app,
        "/user/tag/batch/set.json",
        Body::Json(r#"{"userIds":["id1","id2"],"tags":["bj","男"]}"#),
    )
    .await;
    assert_eq!((batch.status, batch.text.as_str()), (200, r#"{"code":200}"#));
    assert_eq!(tags_of(&herald, &app, "id2").await, json!(["bj", "男"]));

    // A user named twice, a tag given twice: each counts once.
    let twice = r#"{"userIds":["id3","id3"],"tags":["bj","bj"]}"#;
    let batch = send(&herald, &app, "/user/tag/batch/set.json", Body::Json(twice)).await;
    assert_eq!(batch.code(), 200, "{}", batch.text);
    assert_eq!(tags_of(&herald, &app, "id3").await, json!(["bj"]));

    // Setting replaces every tag.
    let replace =
        send(&herald, &app, "/user/tag/set.json", Body::Json(r#"{"userId":"id1","tags":["sh"]}"#))
            .await;
    assert_eq!(replace.code(), 200);
    assert_eq!(tags_of(&herald, &app, "id1").await, json!(["sh"]));

    // Form-encoded, `userIds` repeated; unknown users answer [].
    let get = send(
        &herald,
        &app,
        "/user/tags/get.json",
        Body::Form("userIds=31232&userIds=id1&userIds=nobody"),
    )
    .await;
    assert_eq!(get.status, 200, "{}", get.text);
    assert_eq!(
        get.json,
        json!({"code": 200, "result": {"31232": ["bj", "男"], "id1": ["sh"], "nobody": []}})
    );

    // `[]` clears.
    let clear =
        send(&herald, &app, "/user/tag/set.json", Body::Json(r#"{"userId":"31232","tags":[]}"#))
            .await;
    assert_eq!(clear.code(), 200);
    let get = send(&herald, &app, "/user/tags/get.json", Body::Form("userIds=31232")).await;
    assert_eq!(get.text, r#"{"code":200,"result":{"31232":[]}}"#);
}

#[tokio::test]
async fn every_call_answers_xml_too() {
    let (_dir, herald, app) = start(loose()).await;
    let set = send(
        &herald,
        &app,
        "/user/tag/set.xml",
        Body::Json(r#"{"userId":"31232","tags":["bj","男"]}"#),
    )
    .await;
    assert_eq!((set.status, set.text.as_str()), (200, "<xml><code>200</code></xml>"));
    let batch = send(
        &herald,
        &app,
        "/user/tag/batch/set.xml",
        Body::Json(r#"{"userIds":["id1","id2"],"tags":["bj"]}"#),
    )
    .await;
    assert_eq!(batch.text, "<xml><code>200</code></xml>");
    let get =
        send(&herald, &app, "/user/tags/get.xml", Body::Form("userIds=31232&userIds=none")).await;
    assert_eq!(
        get.text,
        "<xml><code>200</code><result><entry key=\"31232\"><item>bj</item><item>男</item></entry>\
         <entry key=\"none\"></entry></result></xml>"
    );
    let token =
        send(&herald, &app, "/user/getToken.xml", Body::Form("userId=u1&name=Lei&portraitUri="))
            .await;
    assert!(
        token.text.starts_with("<xml><code>200</code><userId>u1</userId><token>"),
        "{}",
        token.text
    );
    assert!(token.text.ends_with("</token></xml>"));
    let online = send(&herald, &app, "/user/checkOnline.xml", Body::Form("userId=u1")).await;
    assert_eq!(online.text, "<xml><code>200</code><status>0</status></xml>");
    let pushed = send(
        &herald,
        &app,
        "/push.xml",
        Body::Json(r#"{"platform":["ios","android"],"audience":{"is_to_all":true},"notification":{"alert":"this is a push"}}"#),
    )
    .await;
    assert!(pushed.text.starts_with("<xml><code>200</code><id>p_"), "{}", pushed.text);
    let broadcast = send(
        &herald,
        &app,
        "/message/broadcast.xml",
        Body::Form("fromUserId=u1&objectName=RC:TxtMsg&content=%7B%22content%22%3A%22hi%22%7D"),
    )
    .await;
    assert!(broadcast.text.starts_with("<xml><code>200</code><id>p_"), "{}", broadcast.text);
    assert_eq!(broadcast.json, Value::Null, "XML, not JSON");
    let refused = send(&herald, &app, "/user/tag/set.xml", Body::Empty).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.text,
        "<xml><code>1003</code><errorMessage>no POST data</errorMessage></xml>"
    );
}

#[tokio::test]
async fn get_token_logs_a_client_in_and_check_online_sees_it() {
    let (_dir, herald, app) = start(json!({})).await;
    let answer = send(
        &herald,
        &app,
        "/user/getToken.json",
        Body::Form("userId=u1&name=Li%20Lei&portraitUri=http%3A%2F%2Fx%2Fp.png"),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["code"], 200);
    assert_eq!(answer.json["userId"], "u1");
    let token = answer.json["token"].as_str().unwrap().to_owned();
    assert!(answer.text.starts_with(r#"{"code":200,"userId":"u1","token":""#), "{}", answer.text);

    // The token lasts a year.
    let claims = herald_gateway::token::parse(&token).unwrap().claims;
    let year = chrono::Utc::now().timestamp() + 365 * 86_400;
    assert!((claims.expires_at - year).abs() < 60, "{claims:?}");
    assert_eq!(claims.account, "u1");

    // getToken imports the account.
    let (status, _) = herald.signed(&app, Method::GET, "/v1/accounts/u1", None).await;
    assert_eq!(status, 200);

    let offline = send(&herald, &app, "/user/checkOnline.json", Body::Form("userId=u1")).await;
    assert_eq!(offline.text, r#"{"code":200,"status":"0"}"#);
    let client = device(&herald, token, "u1-phone", "android", "com.shop").await;
    let online = send(&herald, &app, "/user/checkOnline.json", Body::Form("userId=u1")).await;
    assert_eq!(online.text, r#"{"code":200,"status":"1"}"#);
    let unknown =
        send(&herald, &app, "/user/checkOnline.json", Body::Form("userId=stranger")).await;
    assert_eq!(unknown.text, r#"{"code":200,"status":"0"}"#);

    client.close().await;
    let mut status = String::new();
    for _ in 0..100 {
        status = send(&herald, &app, "/user/checkOnline.json", Body::Form("userId=u1")).await.json
            ["status"]
            .as_str()
            .unwrap()
            .to_owned();
        if status == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "0", "offline after close");
}

/// Every `/push.json` example of seeds/004 (both sections, verbatim but for the non-breaking
/// spaces the web page put between JSON tokens), stored with the audience, platforms and
/// notification they translate to.
#[tokio::test]
async fn push_examples_of_the_documents_are_accepted_and_translated() {
    let (_dir, herald, app) = start(loose()).await;
    let examples: [(&str, Value, Value); 15] = [
        (
            r#"{"platform":["ios","android"],"fromuserid": "fromuseId1","audience":{"tag":["女","年轻"],"tag_or":["北京","上海"],"userid":["123","456"],"is_to_all":false},"message": {"content": "{\"content\":\"1111\",\"extra\":\"aa\"}","objectName": "RC:TxtMsg"},"notification":{"alert":"this is a push","ios": {"alert": "override alert","extras": {"id": "1","name": "2"}},"android": {"alert": "override alert","extras": {"id": "1","name": "2"}}}}"#,
            json!({"accounts": ["123", "456"]}),
            Value::Null,
        ),
        (
            r#"{"platform":["ios","android"],"fromuserid": "fromuseId1","audience":{"tag":["女","年轻","北京"]},"message": {"content": "{\"content\":\"1111\",\"extra\":\"aa\"}","objectName": "RC:TxtMsg"},"notification":{"alert":"this is a push"}}"#,
            json!({"and": [{"tag": "女"}, {"tag": "年轻"}, {"tag": "北京"}]}),
            json!(["ios", "android"]),
        ),
        (
            r#"{"platform":["ios","android"],"fromuserid": "fromuseId1","audience":{"userid":["123","456"]},"message": {"content": "{\"content\":\"1111\",\"extra\":\"aa\"}","objectName": "RC:TxtMsg"},"notification":{"alert":"this is a push"}}"#,
            json!({"accounts": ["123", "456"]}),
            Value::Null,
        ),
        (
            r#"{"platform":["ios","android"],"fromuserid": "fromuseId1","audience":{"is_to_all":true},"message": {"content": "{\"content\":\"1111\",\"extra\":\"aa\"}","objectName": "RC:TxtMsg"},"notification":{"alert":"this is a push"}}"#,
            json!({"all": true}),
            json!(["ios", "android"]),
        ),
        (
            r#"{"platform":["ios","android"],"fromuserid": "fromuseId1","audience":{"is_to_all":true},"message": {"content": "{\"content\":\"1111\",\"extra\":\"aa\"}","objectName": "RC:TxtMsg"},"notification":{"alert":"this is a push","ios": {"alert": "iOS 通知显示内容","extras": {"id": "1","name": "2"}},"android": {"alert": "Android 通知显示内容","extras": {"id": "1","name": "2"}}}}"#,
            json!({"all": true}),
            json!(["ios", "android"]),
        ),
        (
            r#"{"platform":["ios","android"],"fromuserid": "fromuseId1","audience":{"is_to_all":true},"message": {"content": "{\"content\":\"1111\",\"extra\":\"aa\"}","objectName": "RC:TxtMsg"},"notification":{"alert":"this is a push","ios": {"alert": "iOS 通知显示内容","contentAvailable":1},"android": {"alert": "Android 通知显示内容"}}}"#,
            json!({"all": true}),
            json!(["ios", "android"]),
        ),
        (
            r#"{"platform":["ios","android"],"audience":{"tag":["女","年轻"],"tag_or":["北京","上海"],"userid":["123","456"],"is_to_all":false},"notification":{"alert":"this is a push","ios": {"title": "标题","alert": "override alert","extras": {"id": "1","name": "2"}},"android": {"alert": "override alert","extras": {"id": "1","name": "2"}}}}"#,
            json!({"accounts": ["123", "456"]}),
            Value::Null,
        ),
        (
            r#"{"platform":["ios","android"],"audience":{"tag":["女","年轻","北京"]},"notification":{"alert":"this is a push"}}"#,
            json!({"and": [{"tag": "女"}, {"tag": "年轻"}, {"tag": "北京"}]}),
            json!(["ios", "android"]),
        ),
        (
            r#"{"platform":["ios","android"],"audience":{"userid":["123","456"]},"notification":{"alert":"this is a push"}}"#,
            json!({"accounts": ["123", "456"]}),
            Value::Null,
        ),
        (
            r#"{"platform":["ios","android"],"audience":{"packageName": "cn.xxxxxx.xxx"},"notification":{"alert":"this is a push"}}"#,
            json!({"package": "cn.xxxxxx.xxx"}),
            json!(["ios", "android"]),
        ),
        (
            r#"{"platform":["ios","android"],"audience":{"is_to_all":true},"notification":{"alert":"this is a push"}}"#,
            json!({"all": true}),
            json!(["ios", "android"]),
        ),
        (
            r#"{"platform":["ios","android"],"audience":{"is_to_all":true},"notification":{"alert":"this is a push","ios": {"alert": "iOS 平台显示内容","extras": {"id": "1","name": "2"}},"android": {"alert": "Android 平台显示内容","extras": {"id": "1","name": "2"}}}}"#,
            json!({"all": true}),
            json!(["ios", "android"]),
        ),
        (
            r#"{"platform":["ios","android"],"audience":{"is_to_all":true},"notification":{"alert":"this is a push","ios": {"alert": "iOS 平台显示内容","badge":2,"extras": {"id": "1","name": "2"}},"android": {"alert": "Android 平台显示内容","extras": {"id": "1","name": "2"}}}}"#,
            json!({"all": true}),
            json!(["ios", "android"]),
        ),
        (
            r#"{"platform":["ios","android"],"audience":{"is_to_all":true},"notification":{"alert":"this is a push","ios": {"title": "iOS 平台显示标题","alert": "iOS 平台显示内容","extras": {"id": "1","name": "2"}},"android": {"alert": "Android 平台显示内容","extras": {"id": "1","name": "2"}}}}"#,
            json!({"all": true}),
            json!(["ios", "android"]),
        ),
        (
            r#"{"platform":["ios","android"],"audience":{"is_to_all":true},"notification":{"alert":"this is a push","ios": {"title": "iOS 平台显示标题","alert": "iOS 平台显示内容","contentAvailable":1},"android": {"alert": "Android 平台显示内容"}}}"#,
            json!({"all": true}),
            json!(["ios", "android"]),
        ),
    ];
    let mut views = Vec::new();
    for (body, audience, platforms) in &examples {
        let id = push(&herald, &app, body).await;
        let view = stored(&herald, &app, &id).await;
        assert_eq!(&view["audience"], audience, "{body}");
        assert_eq!(&view["platforms"], platforms, "{body}");
        views.push(view);
    }
    // Message and sender of the first example.
    assert_eq!(
        views[0]["message"],
        json!({"objectName": "RC:TxtMsg", "content": "{\"content\":\"1111\",\"extra\":\"aa\"}"})
    );
    assert_eq!(views[0]["sender"], "fromuseId1");
    // Notification only: no message.
    assert_eq!(views[6]["message"], Value::Null);
    assert_eq!(
        views[6]["notification"],
        json!({"title": null, "body": "this is a push", "image": null,
            "ios": {"title": "标题", "subtitle": null, "body": "override alert", "badge": null,
                "sound": null, "content_available": null, "mutable_content": null, "category": null,
                "thread_id": null, "collapse_id": null, "extras": {"id": "1", "name": "2"}},
            "android": {"title": null, "body": "override alert", "channel_id": null, "sound": null,
                "extras": {"id": "1", "name": "2"}}})
    );
    assert_eq!(views[5]["notification"]["ios"]["content_available"], true);
    assert_eq!(views[12]["notification"]["ios"]["badge"], 2);
    assert_eq!(views[13]["notification"]["ios"]["title"], "iOS 平台显示标题");
    assert_eq!(views[14]["notification"]["ios"]["content_available"], true);
    assert_eq!(views[14]["notification"]["android"]["body"], "Android 平台显示内容");
    // Offline devices get it for the app's full offline TTL.
    assert_eq!(views[10]["ttl_secs"], 604_800);
}

#[tokio::test]
async fn pushes_reach_gateway_devices_with_their_platform_notification() {
    let (_dir, herald, app) = start(loose()).await;
    // ios: a (女, 年轻, 北京); android: b (女, 上海); web: c (年轻); another package: d (女, 北京).
    let mut a =
        device(&herald, get_token(&herald, &app, "a").await, "a-phone", "ios", "com.shop").await;
    let mut b =
        device(&herald, get_token(&herald, &app, "b").await, "b-phone", "android", "com.shop")
            .await;
    let mut c =
        device(&herald, get_token(&herald, &app, "c").await, "c-web", "web", "com.shop").await;
    let mut d =
        device(&herald, get_token(&herald, &app, "d").await, "d-phone", "android", "cn.other")
            .await;
    for (user, tags) in [
        ("a", r#"["女","年轻","北京"]"#),
        ("b", r#"["女","上海"]"#),
        ("c", r#"["年轻"]"#),
        ("d", r#"["女","北京"]"#),
    ] {
        let body = format!(r#"{{"userId":"{user}","tags":{tags}}}"#);
        assert_eq!(send(&herald, &app, "/user/tag/set.json", Body::Json(&body)).await.code(), 200);
    }

    // seeds/004: different content per platform, to everyone on iOS and Android.
    push(&herald, &app, r#"{"platform":["ios","android"],"audience":{"is_to_all":true},"notification":{"alert":"this is a push","ios": {"alert": "iOS 平台显示内容","badge":2,"extras": {"id": "1","name": "2"}},"android": {"alert": "Android 平台显示内容","extras": {"id": "1","name": "2"}}}}"#).await;
    // tag AND with tag_or: 女 and (北京 or 上海) → a, b, d.
    push(&herald, &app, r#"{"platform":["ios","android"],"audience":{"tag":["女"],"tag_or":["北京","上海"]},"message":{"objectName":"RC:TxtMsg","content":"{\"content\":\"tags\"}"},"notification":{"alert":"tags"}}"#).await;
    // packageName AND tag: 女 in com.shop → a, b.
    push(&herald, &app, r#"{"platform":["ios","android"],"audience":{"tag":["女"],"packageName":"com.shop"},"notification":{"alert":"package"}}"#).await;
    // userid wins over tags and platform: c (web) receives although platform is ios only.
    push(&herald, &app, r#"{"platform":["ios"],"audience":{"userid":["c"],"tag":["上海"]},"notification":{"alert":"userid"}}"#).await;
    // Sentinel to every device of every platform.
    let sentinel = r#"{"platform":["ios","android","web"],"audience":{"is_to_all":true},"notification":{"alert":"end"}}"#;
    push(&herald, &app, sentinel).await;

    let body = |p: &Push| p.notification.as_ref().unwrap()["body"].as_str().unwrap().to_owned();
    let first = next(&mut a).await;
    assert_eq!(body(&first), "iOS 平台显示内容");
    assert_eq!(first.notification.as_ref().unwrap()["badge"], 2);
    assert_eq!(first.notification.as_ref().unwrap()["extras"], json!({"id": "1", "name": "2"}));
    assert_eq!(first.message, Value::Null, "a notification only");
    let tagged = next(&mut a).await;
    assert_eq!(body(&tagged), "tags");
    assert_eq!(
        tagged.message,
        json!({"objectName": "RC:TxtMsg", "content": "{\"content\":\"tags\"}"})
    );
    assert_eq!(body(&next(&mut a).await), "package");
    assert_eq!(body(&next(&mut a).await), "end");

    let first = next(&mut b).await;
    assert_eq!(body(&first), "Android 平台显示内容");
    assert!(first.notification.as_ref().unwrap().get("badge").is_none());
    assert_eq!(body(&next(&mut b).await), "tags");
    assert_eq!(body(&next(&mut b).await), "package");
    assert_eq!(body(&next(&mut b).await), "end");

    // The web device is outside ["ios","android"], but userid ignores platform.
    assert_eq!(body(&next(&mut c).await), "userid");
    assert_eq!(body(&next(&mut c).await), "end");

    assert_eq!(body(&next(&mut d).await), "Android 平台显示内容");
    assert_eq!(body(&next(&mut d).await), "tags");
    assert_eq!(body(&next(&mut d).await), "end", "another package: not in the package push");
}

#[tokio::test]
async fn broadcast_message_waits_for_offline_users() {
    let (_dir, herald, app) = start(json!({})).await;
    let token = get_token(&herald, &app, "late").await;
    let answer = send(
        &herald,
        &app,
        "/message/broadcast.json",
        Body::Form(
            "fromUserId=admin&objectName=RC%3ATxtMsg&content=%7B%22content%22%3A%22hello%22%7D\
             &pushContent=hello&pushData=%7B%22k%22%3A%22v%22%7D",
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let id = answer.json["id"].as_str().unwrap();
    assert!(answer.text.starts_with(r#"{"code":200,"id":"p_"#), "{}", answer.text);

    // The user connects only after the broadcast.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut phone = device(&herald, token, "late-phone", "ios", "com.shop").await;
    let got = next(&mut phone).await;
    assert_eq!(got.push_id, id);
    assert_eq!(got.sender.as_deref(), Some("admin"));
    assert_eq!(
        got.message,
        json!({"objectName": "RC:TxtMsg", "content": "{\"content\":\"hello\"}"})
    );
    assert_eq!(
        Value::Object(got.notification.unwrap()),
        json!({"body": "hello", "extras": {"pushData": "{\"k\":\"v\"}"}})
    );
}

#[tokio::test]
async fn signature_refusals_are_1004() {
    let (_dir, herald, app) = start(json!({})).await;
    let path = "/user/checkOnline.json";
    let form = || Body::Form("userId=u1");

    // Accepted variants: RC- headers, millisecond timestamps, upper-case hex.
    let rc = Sig { prefixed: true, ..Sig::new(&app) };
    assert_eq!(send_with(&herald, &rc, path, form()).await.code(), 200);
    let millis =
        Sig { timestamp: chrono::Utc::now().timestamp_millis().to_string(), ..Sig::new(&app) };
    assert_eq!(send_with(&herald, &millis, path, form()).await.code(), 200);
    let upper = Sig::new(&app);
    let req = herald
        .request(Method::POST, path)
        .header("App-Key", &upper.key)
        .header("Nonce", &upper.nonce)
        .header("Timestamp", &upper.timestamp)
        .header("Signature", upper.signature().to_uppercase())
        .body("userId=u1");
    assert_eq!(req.send().await.unwrap().status(), 200);

    // Wrong secret, unknown key, missing header.
    let wrong = Sig { secret: "not-the-secret".into(), ..Sig::new(&app) };
    refused(&send_with(&herald, &wrong, path, form()).await, 401, 1004);
    let unknown = Sig { key: "no-such-key".into(), ..Sig::new(&app) };
    refused(&send_with(&herald, &unknown, path, form()).await, 401, 1004);
    let bare = herald.request(Method::POST, path).header("App-Key", &app.key).body("userId=u1");
    let res = bare.send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], 1004);

    // Stale timestamps, in seconds and in milliseconds; a malformed one.
    let old = chrono::Utc::now().timestamp() - 3600;
    let stale = Sig { timestamp: old.to_string(), ..Sig::new(&app) };
    refused(&send_with(&herald, &stale, path, form()).await, 401, 1004);
    let stale_ms = Sig { timestamp: (old * 1000).to_string(), ..Sig::new(&app) };
    refused(&send_with(&herald, &stale_ms, path, form()).await, 401, 1004);
    let seed = Sig { timestamp: "1408706337".into(), nonce: "14314".into(), ..Sig::new(&app) };
    refused(&send_with(&herald, &seed, path, form()).await, 401, 1004);
    let garbled = Sig { timestamp: "soon".into(), ..Sig::new(&app) };
    refused(&send_with(&herald, &garbled, path, form()).await, 401, 1004);

    // The same headers again: replayed.
    let once = Sig::new(&app);
    assert_eq!(send_with(&herald, &once, path, form()).await.code(), 200);
    refused(&send_with(&herald, &once, path, form()).await, 401, 1004);
    // The same nonce with another timestamp is a new signature, not a replay.
    let later = Sig { timestamp: (chrono::Utc::now().timestamp() + 1).to_string(), ..once.clone() };
    assert_eq!(send_with(&herald, &later, path, form()).await.code(), 200);
}

#[tokio::test]
async fn previous_secret_works_during_rotation_grace() {
    let (_dir, herald, app) = start(json!({})).await;
    let path = format!("/admin/apps/{}/rotate-secret", app.id);
    let (status, rotated) =
        herald.admin(Method::POST, &path, Some(json!({"grace_secs": 600}))).await;
    assert_eq!(status, 200, "{rotated}");
    let new = AppCreds { secret: rotated["secret"].as_str().unwrap().into(), ..app.clone() };
    let body = || Body::Form("userId=u1");
    assert_eq!(send(&herald, &new, "/user/checkOnline.json", body()).await.code(), 200);
    assert_eq!(send(&herald, &app, "/user/checkOnline.json", body()).await.code(), 200);
}

#[tokio::test]
async fn layer_not_enabled_is_1009_with_http_430() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("plain").await;
    let answer = send(&herald, &app, "/user/getToken.json", Body::Form("userId=u1")).await;
    refused(&answer, 430, 1009);
    let xml = send(&herald, &app, "/push.xml", Body::Json("{}")).await;
    assert_eq!(xml.status, 430);
    assert!(xml.text.starts_with("<xml><code>1009</code><errorMessage>"), "{}", xml.text);
    // Unsigned callers learn nothing about the app's layers.
    let wrong = Sig { secret: "x".into(), ..Sig::new(&app) };
    refused(
        &send_with(&herald, &wrong, "/user/getToken.json", Body::Form("userId=u1")).await,
        401,
        1004,
    );
    // Enabled, it answers.
    enable(&herald, &app, json!({})).await;
    let answer = send(&herald, &app, "/user/getToken.json", Body::Form("userId=u1")).await;
    assert_eq!(answer.code(), 200, "{}", answer.text);
}

#[tokio::test]
async fn empty_bodies_are_1003() {
    let (_dir, herald, app) = start(json!({})).await;
    for path in [
        "/user/getToken.json",
        "/user/checkOnline.json",
        "/user/tag/set.json",
        "/user/tag/batch/set.json",
        "/user/tags/get.json",
        "/push.json",
        "/message/broadcast.json",
    ] {
        refused(&send(&herald, &app, path, Body::Empty).await, 400, 1003);
    }
}

#[tokio::test]
async fn parameter_errors_are_1002() {
    let (_dir, herald, app) = start(loose()).await;
    let cases: [(&str, Body); 17] = [
        ("/user/getToken.json", Body::Form("name=Lei")),
        ("/user/checkOnline.json", Body::Form("user=u1")),
        ("/user/tag/set.json", Body::Json(r#"{"userId":"u1","tags":"bj"}"#)),
        ("/user/tag/set.json", Body::Json(r#"{"tags":["bj"]}"#)),
        ("/user/tag/set.json", Body::Json(r#"{"userId":"u1","tags":["b j"]}"#)),
        ("/user/tag/set.json", Body::Json(r#"{"userId":"u1","tags":["bj","a,b"]}"#)),
        ("/user/tag/batch/set.json", Body::Json(r#"{"userIds":[],"tags":["bj"]}"#)),
        ("/user/tag/batch/set.json", Body::Json(r#"{"userIds":["a"],"tags":[""]}"#)),
        ("/user/tags/get.json", Body::Form("userId=a")),
        (
            "/push.json",
            Body::Json(
                r#"{"platform":["ios"],"audience":{"is_to_all":true},"notification":{"alert":"x"}"#,
            ),
        ),
        (
            "/push.json",
            Body::Json(r#"{"audience":{"is_to_all":true},"notification":{"alert":"x"}}"#),
        ),
        ("/push.json", Body::Json(r#"{"platform":["ios"],"notification":{"alert":"x"}}"#)),
        (
            "/push.json",
            Body::Json(
                r#"{"platform":["ios"],"audience":{"is_to_all":false},"notification":{"alert":"x"}}"#,
            ),
        ),
        ("/push.json", Body::Json(r#"{"platform":["ios"],"audience":{"is_to_all":true}}"#)),
        (
            "/push.json",
            Body::Json(
                r#"{"platform":["ios"],"audience":{"is_to_all":true},"notification":{"alert":"x","ios":{"badge":10000}}}"#,
            ),
        ),
        (
            "/push.json",
            Body::Json(
                r#"{"platform":["ios"],"audience":{"is_to_all":true},"message":{"content":"c"},"notification":{"alert":"x"}}"#,
            ),
        ),
        ("/message/broadcast.json", Body::Form("fromUserId=a&objectName=RC%3ATxtMsg")),
    ];
    for (path, body) in cases {
        let answer = send(&herald, &app, path, body).await;
        assert_eq!((answer.status, answer.code()), (400, 1002), "{path}: {}", answer.text);
    }
    // The largest badge is fine.
    push(&herald, &app, r#"{"platform":["ios"],"audience":{"is_to_all":true},"notification":{"alert":"x","ios":{"badge":9999}}}"#).await;
}

#[tokio::test]
async fn limits_are_1005() {
    let (_dir, herald, app) = start(loose()).await;
    let many = |n: usize, prefix: &str| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    };
    let json_body = |v: Value| v.to_string();
    let cases: Vec<(&str, String, bool)> = vec![
        ("/user/tag/set.json", json_body(json!({"userId": "u1", "tags": many(21, "t")})), true),
        ("/user/tag/set.json", json_body(json!({"userId": "u1", "tags": ["x".repeat(41)]})), true),
        ("/user/tag/set.json", json_body(json!({"userId": "u1", "tags": ["男".repeat(14)]})), true),
        ("/user/tag/set.json", json_body(json!({"userId": "u".repeat(129), "tags": ["a"]})), true),
        (
            "/user/tag/batch/set.json",
            json_body(json!({"userIds": many(1001, "u"), "tags": ["a"]})),
            true,
        ),
        (
            "/user/tags/get.json",
            many(51, "u").iter().map(|u| format!("userIds={u}")).collect::<Vec<_>>().join("&"),
            false,
        ),
        (
            "/push.json",
            json_body(
                json!({"platform": ["ios"], "audience": {"tag": many(21, "t")}, "notification": {"alert": "x"}}),
            ),
            true,
        ),
        (
            "/push.json",
            json_body(
                json!({"platform": ["ios"], "audience": {"tag_or": many(21, "t")}, "notification": {"alert": "x"}}),
            ),
            true,
        ),
        (
            "/push.json",
            json_body(
                json!({"platform": ["ios"], "audience": {"userid": many(1001, "u")}, "notification": {"alert": "x"}}),
            ),
            true,
        ),
        (
            "/push.json",
            json_body(
                json!({"platform": ["ios"], "audience": {"is_to_all": true}, "message": {"objectName": "x".repeat(33), "content": "c"}}),
            ),
            true,
        ),
        // The app's message limit (10 KB by default).
        (
            "/push.json",
            json_body(
                json!({"platform": ["ios"], "audience": {"is_to_all": true}, "message": {"objectName": "RC:TxtMsg", "content": "x".repeat(11_000)}}),
            ),
            true,
        ),
        ("/message/broadcast.json", format!("objectName={}&content=c", "x".repeat(33)), false),
    ];
    for (path, body, is_json) in &cases {
        let body = if *is_json { Body::Json(body) } else { Body::Form(body) };
        let answer = send(&herald, &app, path, body).await;
        assert_eq!((answer.status, answer.code()), (400, 1005), "{path}: {}", answer.text);
    }
    // At the limits: accepted.
    let ok = json!({"userId": "u1", "tags": many(20, "t")}).to_string();
    assert_eq!(send(&herald, &app, "/user/tag/set.json", Body::Json(&ok)).await.code(), 200);
    let ok = json!({"userId": "u1", "tags": ["x".repeat(40)]}).to_string();
    assert_eq!(send(&herald, &app, "/user/tag/set.json", Body::Json(&ok)).await.code(), 200);
    let fifty = many(50, "u").iter().map(|u| format!("userIds={u}")).collect::<Vec<_>>().join("&");
    assert_eq!(send(&herald, &app, "/user/tags/get.json", Body::Form(&fifty)).await.code(), 200);
    let ok = json!({"platform": ["ios"], "audience": {"is_to_all": true},
        "message": {"objectName": "x".repeat(32), "content": "c"}})
    .to_string();
    push(&herald, &app, &ok).await;
    // A body over the server's max_body_bytes (1 MiB).
    let huge = json!({"userId": "u1", "tags": ["x".repeat(1_100_000)]}).to_string();
    let answer = send(&herald, &app, "/user/tag/set.json", Body::Json(&huge)).await;
    assert_eq!((answer.status, answer.code()), (400, 1005), "{}", answer.text);
}

#[tokio::test]
async fn default_rate_is_two_an_hour_shared_with_broadcast_and_answers_1008() {
    let (_dir, herald, app) = start(json!({})).await;
    let all = r#"{"platform":["ios","android"],"audience":{"is_to_all":true},"notification":{"alert":"this is a push"}}"#;
    push(&herald, &app, all).await;
    let broadcast = send(
        &herald,
        &app,
        "/message/broadcast.json",
        Body::Form("objectName=RC%3ATxtMsg&content=hi"),
    )
    .await;
    assert_eq!(broadcast.code(), 200, "{}", broadcast.text);
    let third = send(&herald, &app, "/push.json", Body::Json(all)).await;
    refused(&third, 429, 1008);
    assert!(third.retry_after.is_some(), "Retry-After tells when");
    let tagged = r#"{"platform":["ios"],"audience":{"tag":["女"]},"notification":{"alert":"x"}}"#;
    refused(&send(&herald, &app, "/push.json", Body::Json(tagged)).await, 429, 1008);
    let xml = send(
        &herald,
        &app,
        "/message/broadcast.xml",
        Body::Form("objectName=RC%3ATxtMsg&content=hi"),
    )
    .await;
    assert_eq!(xml.status, 429);
    assert!(xml.text.starts_with("<xml><code>1008</code>"), "{}", xml.text);
    // Pushes to named users are not broadcasts and go on.
    push(
        &herald,
        &app,
        r#"{"platform":["ios"],"audience":{"userid":["123"]},"notification":{"alert":"x"}}"#,
    )
    .await;
    // The native API keeps its own quota.
    let (status, out) = herald
        .signed(
            &app,
            Method::POST,
            "/v1/pushes",
            Some(json!({"audience": {"all": true}, "message": {"n": 1}})),
        )
        .await;
    assert_eq!(status, 201, "{out}");
}

#[tokio::test]
async fn unknown_format_and_method_are_not_routes() {
    let (_dir, herald, app) = start(json!({})).await;
    let answer = send(&herald, &app, "/push.yaml", Body::Json("{}")).await;
    assert_eq!(answer.status, 404);
    let get = herald.request(Method::GET, "/push.json").send().await.unwrap();
    assert_eq!(get.status(), 405);
}
