//! A Tencent server SDK as a test sees it: `/v4` calls with `sdkappid`, `identifier` and a
//! `usersig`, answered in the Tencent envelope; and usersigs made by the public Python package.
#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;
use std::sync::OnceLock;

use herald_server::compat::tencent::auth;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{AppCreds, Herald};

/// The admin account every test app names.
pub const ADMIN: &str = "administrator";

/// One app with the Tencent layer enabled.
pub struct Tencent<'a> {
    pub herald: &'a Herald,
    pub app: AppCreds,
    pub sdkappid: u64,
}

impl<'a> Tencent<'a> {
    /// Creates an app and enables the layer with `sdkappid` and the given layer limits.
    pub async fn enable(herald: &'a Herald, sdkappid: u64, limits: Value) -> Tencent<'a> {
        let app = herald.create_app(&format!("tencent-{sdkappid}")).await;
        let settings = json!({"sdkappid": sdkappid, "admin_identifier": ADMIN, "limits": limits});
        let path = format!("/admin/apps/{}/compat/tencent", app.id);
        let (status, body) = herald.admin(Method::PUT, &path, Some(settings)).await;
        assert_eq!(status, 200, "{body}");
        Tencent { herald, app, sdkappid }
    }

    /// Limits that never get in a test's way.
    pub fn open_limits() -> Value {
        json!({"min_interval_secs": 0, "per_hour": null, "per_day": 1000})
    }

    /// A fresh usersig of the admin, made with the app secret.
    pub fn usersig(&self) -> String {
        self.usersig_for(ADMIN)
    }

    pub fn usersig_for(&self, identifier: &str) -> String {
        auth::sign(
            &self.app.secret,
            self.sdkappid,
            identifier,
            chrono::Utc::now().timestamp(),
            86_400,
        )
    }

    /// The query string of the spec: `sdkappid`, `identifier`, `usersig`, `random`, `contenttype`.
    pub fn query(&self, identifier: &str, usersig: &str) -> String {
        format!(
            "sdkappid={}&identifier={identifier}&usersig={usersig}&random={}&contenttype=json",
            self.sdkappid,
            rand_u32()
        )
    }

    /// A correctly authenticated call; asserts HTTP 200 and returns the body.
    pub async fn call(&self, path: &str, body: Value) -> Value {
        let query = self.query(ADMIN, &self.usersig());
        self.call_raw(path, &query, body.to_string()).await
    }

    /// A call with any query and body text.
    pub async fn call_raw(&self, path: &str, query: &str, body: String) -> Value {
        let url = self.herald.url(&format!("{path}?{query}"));
        let res = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "every /v4 answer is HTTP 200");
        res.json().await.unwrap()
    }

    /// A call expected to succeed; returns the body.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let out = self.call(path, body).await;
        assert_eq!(out["ActionStatus"], "OK", "{path}: {out}");
        assert_eq!(out["ErrorCode"], 0);
        assert_eq!(out["ErrorInfo"], "");
        out
    }

    /// A call expected to fail; returns its `ErrorCode` after checking the envelope.
    pub async fn fail(&self, path: &str, body: Value) -> u64 {
        failure(&self.call(path, body).await)
    }
}

/// The `ErrorCode` of a `FAIL` answer, after checking its envelope has nothing else.
pub fn failure(out: &Value) -> u64 {
    assert_eq!(out["ActionStatus"], "FAIL", "{out}");
    assert!(out["ErrorInfo"].as_str().is_some_and(|info| !info.is_empty()), "{out}");
    assert_eq!(out.as_object().unwrap().len(), 3, "a failure carries no other field: {out}");
    out["ErrorCode"].as_u64().unwrap()
}

fn rand_u32() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Makes sure the public `tls-sig-api-v2` package can be imported, installing it the way
/// `.ci/run` does if needed; panics with the reason otherwise (never skips).
fn python_package() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let import = || {
            Command::new("python3")
                .args(["-c", "import TLSSigAPIv2"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if import() {
            return Ok(());
        }
        let install = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "tls-sig-api-v2"])
            .output()
            .map_err(|err| format!("cannot run python3: {err}"))?;
        if import() {
            Ok(())
        } else {
            Err(format!(
                "the tls-sig-api-v2 Python package is required (python3 -m pip install \
                 tls-sig-api-v2) and could not be installed: {}",
                String::from_utf8_lossy(&install.stderr)
            ))
        }
    });
    if let Err(reason) = ready {
        panic!("{reason}");
    }
}

/// A usersig made by the public Python package. `clock_offset` moves the package's clock
/// (negative: the signature was made in the past); `userbuf` uses `gen_sig_with_userbuf`.
pub fn python_usersig(
    sdkappid: u64,
    key: &str,
    identifier: &str,
    expire: i64,
    clock_offset: i64,
    userbuf: Option<&str>,
) -> String {
    python_package();
    let call = match userbuf {
        None => format!("api.gen_sig({identifier:?}, {expire})"),
        Some(buf) => {
            format!("api.gen_sig_with_userbuf({identifier:?}, {expire}, {buf:?}.encode())")
        }
    };
    let script = format!(
        "import time, TLSSigAPIv2\n\
         real = time.time\n\
         time.time = lambda: real() + ({clock_offset})\n\
         api = TLSSigAPIv2.TLSSigAPIv2({sdkappid}, {key:?})\n\
         print({call})\n"
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("run python3");
    assert!(out.status.success(), "python3 failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs SQL on herald's database, to put the server in states no API can reach: with
/// Python's standard `sqlite3` module, or on the server's PostgreSQL schema.
pub fn store_sql(herald: &Herald, sql: &str) {
    if let Some(store) = crate::common::test_store(&herald.data) {
        crate::common::postgres_sql(&store, sql);
        return;
    }
    let db = herald.data.join("herald.db");
    let script = format!(
        "import sqlite3\nc = sqlite3.connect({:?}, timeout=30)\nc.execute({sql:?})\nc.commit()\n",
        db.display().to_string()
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("run python3");
    assert!(out.status.success(), "sqlite3 failed: {}", String::from_utf8_lossy(&out.stderr));
}
