//! The wall clock of the running binary jumps (libfaketime reads the offset from a file the
//! test rewrites; the monotonic clock is left alone, as when NTP steps the clock): scheduled
//! pushes due after a jump forward go out once, and after a jump back nothing goes out early,
//! twice, or not at all.
//!
//! Needs libfaketime (Debian's `faketime` package; `.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use herald_client::{Client, ConnectOptions, Reconnect};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{next_push, AppCreds, Herald, Signer, Start};

/// Debian's libfaketime (thread-safe build); `HERALD_TEST_LIBFAKETIME` names another.
fn libfaketime() -> String {
    std::env::var("HERALD_TEST_LIBFAKETIME").unwrap_or_else(|_| {
        format!("/usr/lib/{}-linux-gnu/faketime/libfaketimeMT.so.1", std::env::consts::ARCH)
    })
}

/// The server's clock: real time plus an offset the test sets.
struct FakeClock {
    file: PathBuf,
    lib: String,
    offset_secs: i64,
}

impl FakeClock {
    fn new(dir: &Path) -> FakeClock {
        let lib = libfaketime();
        assert!(
            Path::new(&lib).exists(),
            "the clock-jump test needs libfaketime at {lib}: apt-get install faketime \
             (.ci/run does), or name it in HERALD_TEST_LIBFAKETIME"
        );
        let clock = FakeClock { file: dir.join("faketime"), lib, offset_secs: 0 };
        clock.write();
        clock
    }

    /// The environment that puts a process on this clock.
    fn env(&self) -> Vec<(String, String)> {
        [
            ("LD_PRELOAD", self.lib.as_str()),
            ("FAKETIME_TIMESTAMP_FILE", self.file.to_str().unwrap()),
            // Read the file at every clock reading: the jump is seen at once.
            ("FAKETIME_NO_CACHE", "1"),
            // Timers run on the monotonic clock, which a step of the wall clock leaves alone.
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn jump_to(&mut self, offset_secs: i64) {
        self.offset_secs = offset_secs;
        self.write();
    }

    fn write(&self) {
        // Written whole and renamed into place, so the server never reads half a line.
        let tmp = self.file.with_extension("new");
        std::fs::write(&tmp, format!("{:+}\n", self.offset_secs)).unwrap();
        std::fs::rename(&tmp, &self.file).unwrap();
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.offset_secs)
    }
}

/// A signed request with a timestamp on the server's clock.
async fn signed(
    herald: &Herald,
    clock: &FakeClock,
    app: &AppCreds,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut signer = Signer::new(app);
    signer.timestamp = clock.now().timestamp();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req =
        signer.sign(herald.request(method.clone(), path), method.as_str(), path, body.as_bytes());
    herald.raw(req.body(body)).await
}

async fn schedule(
    herald: &Herald,
    clock: &FakeClock,
    app: &AppCreds,
    name: &str,
    at: DateTime<Utc>,
) -> String {
    let body = json!({"audience": {"all": true}, "message": name, "push_at": at.to_rfc3339()});
    let (status, sent) = signed(herald, clock, app, Method::POST, "/v1/pushes", Some(body)).await;
    assert_eq!(status, 201, "{sent}");
    sent["push_id"].as_str().unwrap().to_owned()
}

/// The push's status once its dispatch has settled: `done` is written after the report
/// counts, so a device can hold the push a moment before its status says so.
async fn status(herald: &Herald, clock: &FakeClock, app: &AppCreds, push_id: &str) -> String {
    let path = format!("/v1/pushes/{push_id}");
    for _ in 0..200 {
        let (code, push) = signed(herald, clock, app, Method::GET, &path, None).await;
        assert_eq!(code, 200, "{push}");
        let status = push["status"].as_str().unwrap_or_default();
        if status != "dispatching" {
            return status.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{push_id} still dispatching after 20 s");
}

/// A device whose client token outlives every jump of the test.
async fn device(herald: &Herald, app: &AppCreds) -> Client {
    let expires = Utc::now().timestamp() + 30 * 86_400;
    let token = herald_client::mint_token(&app.key, &app.secret, "ann", expires);
    let mut options = ConnectOptions::new(token, "phone-1", "android", "com.shop");
    options.reconnect = Reconnect { enabled: false, ..Reconnect::default() };
    let url = format!("{}/v1/connect", herald.base.replace("http://", "ws://"));
    Client::connect(url, options).await.expect("connect")
}

/// Fails if a push arrives before `until`.
async fn nothing_until(client: &mut Client, until: Instant, why: &str) {
    let wait = until.saturating_duration_since(Instant::now());
    if let Ok(push) = tokio::time::timeout(wait, client.next_push()).await {
        panic!("{why}: {push:?}");
    }
}

#[tokio::test]
async fn scheduled_pushes_go_out_once_when_the_wall_clock_jumps_forward_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut clock = FakeClock::new(dir.path());
    let start = Start { env: clock.env(), ..Start::default() };
    let herald = Herald::start_with(&dir.path().join("data"), start);
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let mut phone = device(&herald, &app).await;

    let t0 = clock.now();
    let in_an_hour =
        schedule(&herald, &clock, &app, "in an hour", t0 + chrono::Duration::hours(1)).await;
    let in_two_hours =
        schedule(&herald, &clock, &app, "in two hours", t0 + chrono::Duration::hours(2)).await;

    // Forward 61 minutes: the push of the hour is due and goes out, once.
    clock.jump_to(61 * 60);
    let got = next_push(&mut phone).await;
    assert_eq!(got.push_id, in_an_hour, "{:?}", got.message);
    assert_eq!(status(&herald, &clock, &app, &in_an_hour).await, "done");
    assert_eq!(status(&herald, &clock, &app, &in_two_hours).await, "scheduled");

    // Five seconds ahead on the jumped clock, then the clock goes back to real time: this
    // push is then an hour away and must not go out in five seconds.
    let scheduled_at = Instant::now();
    let after_the_jump_back =
        schedule(&herald, &clock, &app, "five seconds", clock.now() + chrono::Duration::seconds(5))
            .await;
    clock.jump_to(0);
    let soon =
        schedule(&herald, &clock, &app, "soon", clock.now() + chrono::Duration::seconds(2)).await;
    let got = next_push(&mut phone).await;
    assert_eq!(got.push_id, soon, "only the push due on the new clock: {:?}", got.message);
    nothing_until(
        &mut phone,
        scheduled_at + Duration::from_secs(7),
        "a push went out early or twice after the clock went back",
    )
    .await;
    assert_eq!(status(&herald, &clock, &app, &after_the_jump_back).await, "scheduled");
    assert_eq!(status(&herald, &clock, &app, &in_two_hours).await, "scheduled");

    // Forward past both: each goes out once, in push-time order.
    clock.jump_to(2 * 3600 + 60);
    let first = next_push(&mut phone).await.push_id;
    let second = next_push(&mut phone).await.push_id;
    assert_eq!([first, second], [after_the_jump_back.clone(), in_two_hours.clone()]);
    nothing_until(&mut phone, Instant::now() + Duration::from_secs(2), "a push went out twice")
        .await;
    for push_id in [&in_an_hour, &after_the_jump_back, &soon, &in_two_hours] {
        assert_eq!(status(&herald, &clock, &app, push_id).await, "done", "{push_id}");
    }
    herald.stop();
}
