//! A local server that behaves like APNs: `POST /3/device/{token}` over HTTP/2 with provider
//! tokens verified against registered keys, the documented header checks, and scripted errors.

use super::lock;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::jwt::DecodedJwt;
use super::keys::TestApnsKey;
use super::server::{json_response, reset_connection, Handler, Listener, Req, Resp};
use super::Reply;
use crate::clock::{unix_secs, Clock, SystemClock};

/// One request the server received, with the verdict it gave.
#[derive(Debug, Clone)]
pub struct ApnsRequest {
    pub token: String,
    /// Lower-case header names; `authorization` included.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    /// The provider token's `kid`, when it verified.
    pub key_id: Option<String>,
    /// The provider token's claims, when it verified.
    pub claims: Option<Value>,
    pub status: u16,
    /// The error `reason` answered, if any.
    pub reason: Option<String>,
}

impl ApnsRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

struct Key {
    team_id: String,
    public_key: Vec<u8>,
}

struct State {
    clock: Arc<dyn Clock>,
    keys: Mutex<HashMap<String, Key>>,
    /// Provider tokens already verified, with their `kid` and claims: a real APNs verifies a
    /// token once per connection, and the benchmark must not measure ECDSA verification.
    verified: Mutex<HashMap<String, (String, Value)>>,
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    default: Mutex<Reply>,
    requests: Mutex<Vec<ApnsRequest>>,
    recording: AtomicBool,
    count: AtomicU64,
}

/// The APNs look-alike. Stops when dropped.
pub struct ApnsTestServer {
    state: Arc<State>,
    listener: Listener,
}

impl ApnsTestServer {
    /// Starts a server whose token age checks follow the system clock.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// Starts a server judging provider-token age by `clock` (share the sender's).
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let state = Arc::new(State {
            clock,
            keys: Mutex::default(),
            verified: Mutex::default(),
            scripts: Mutex::default(),
            default: Mutex::new(Reply::Ok),
            requests: Mutex::default(),
            recording: AtomicBool::new(true),
            count: AtomicU64::new(0),
        });
        let handler_state = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let state = handler_state.clone();
            Box::pin(async move { handle(&state, req).await })
        });
        Ok(Self { state, listener: Listener::start(handler).await? })
    }

    /// Base URL, for `ApnsSettings::production_url` / `sandbox_url`.
    pub fn url(&self) -> String {
        self.listener.url()
    }

    /// Accepts provider tokens signed by `key` (its `kid` and team).
    pub fn add_key(&self, key: &TestApnsKey) {
        lock(&self.state.keys).insert(
            key.key_id.clone(),
            Key { team_id: key.team_id.clone(), public_key: key.public_key.clone() },
        );
    }

    /// Answers the next requests for `token` with `replies`, in order; then the default.
    pub fn script(&self, token: &str, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state.scripts).entry(token.into()).or_default().extend(replies);
    }

    /// The reply for requests without a script (initially [`Reply::Ok`]).
    pub fn set_default(&self, reply: Reply) {
        *lock(&self.state.default) = reply;
    }

    /// Whether requests are kept for [`ApnsTestServer::requests`]; off for benchmarks.
    pub fn set_recording(&self, on: bool) {
        self.state.recording.store(on, Ordering::Relaxed);
    }

    pub fn requests(&self) -> Vec<ApnsRequest> {
        lock(&self.state.requests).clone()
    }

    /// Requests answered so far, recorded or not.
    pub fn request_count(&self) -> u64 {
        self.state.count.load(Ordering::Relaxed)
    }
}

fn reason(status: u16, reason: &str) -> (u16, Option<String>, Vec<(&'static str, String)>) {
    (status, Some(reason.into()), Vec::new())
}

async fn handle(state: &State, req: Req) -> Resp {
    state.count.fetch_add(1, Ordering::Relaxed);
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let token = req.uri().path().strip_prefix("/3/device/").unwrap_or_default().to_owned();
    let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
    let mut record = ApnsRequest {
        token: token.clone(),
        headers,
        body,
        key_id: None,
        claims: None,
        status: 200,
        reason: None,
    };
    let (status, why, extra) = judge(state, &req, &mut record);
    let reply = if status == 200 { next_reply(state, &token) } else { Reply::Ok };
    let (status, why, extra) = match (status, reply) {
        (200, Reply::Ok) => (200, None, Vec::new()),
        (200, Reply::Unregistered) => reason(410, "Unregistered"),
        (200, Reply::BadDeviceToken) => reason(400, "BadDeviceToken"),
        (200, Reply::TooManyRequests { retry_after }) => {
            (429, Some("TooManyRequests".into()), retry_header(retry_after))
        }
        (200, Reply::InternalError) => reason(500, "InternalServerError"),
        (200, Reply::Unavailable { retry_after }) => {
            (503, Some("ServiceUnavailable".into()), retry_header(retry_after))
        }
        (200, Reply::AuthExpired) => reason(403, "ExpiredProviderToken"),
        (200, Reply::Hang) => std::future::pending().await,
        (200, Reply::Reset) => return reset_connection(),
        (200, Reply::Raw { status, body }) => {
            record.status = status;
            keep(state, record);
            return json_response(status, body, &[]);
        }
        (status, _) => (status, why, extra),
    };
    record.status = status;
    record.reason = why.clone();
    keep(state, record);
    let n = state.count.load(Ordering::Relaxed);
    let mut headers = extra;
    headers.push(("apns-id", format!("00000000-0000-4000-8000-{n:012x}")));
    let body = match why {
        None => String::new(),
        Some(r) if status == 410 => {
            json!({"reason": r, "timestamp": unix_secs(state.clock.now()) * 1000}).to_string()
        }
        Some(r) => json!({"reason": r}).to_string(),
    };
    json_response(status, body, &headers)
}

fn retry_header(retry_after: Option<u64>) -> Vec<(&'static str, String)> {
    retry_after.map(|s| vec![("retry-after", s.to_string())]).unwrap_or_default()
}

fn next_reply(state: &State, token: &str) -> Reply {
    let scripted = lock(&state.scripts).get_mut(token).and_then(VecDeque::pop_front);
    scripted.unwrap_or_else(|| lock(&state.default).clone())
}

fn keep(state: &State, record: ApnsRequest) {
    if state.recording.load(Ordering::Relaxed) {
        lock(&state.requests).push(record);
    }
}

/// The checks APNs makes before looking at the device, in its order and with its reasons.
fn judge(
    state: &State,
    req: &Req,
    record: &mut ApnsRequest,
) -> (u16, Option<String>, Vec<(&'static str, String)>) {
    if req.method() != hyper::Method::POST {
        return reason(405, "MethodNotAllowed");
    }
    if !req.uri().path().starts_with("/3/device/") {
        return reason(404, "BadPath");
    }
    let Some(auth) = record.headers.get("authorization") else {
        return reason(403, "MissingProviderToken");
    };
    let Some(jwt) = auth.strip_prefix("bearer ") else {
        return reason(403, "InvalidProviderToken");
    };
    let cached = lock(&state.verified).get(jwt).cloned();
    let (kid, claims) = match cached {
        Some(found) => found,
        None => match verify(state, jwt) {
            Some(found) => {
                lock(&state.verified).insert(jwt.to_owned(), found.clone());
                found
            }
            None => return reason(403, "InvalidProviderToken"),
        },
    };
    record.key_id = Some(kid);
    let iat = claims["iat"].as_u64().unwrap_or(0);
    record.claims = Some(claims);
    let now = unix_secs(state.clock.now());
    if now.saturating_sub(iat) > Duration::from_secs(3600).as_secs() {
        return reason(403, "ExpiredProviderToken");
    }
    let header = |name: &str| record.headers.get(name).map(String::as_str);
    if header("apns-topic").is_none_or(str::is_empty) {
        return reason(400, "MissingTopic");
    }
    let push_type = header("apns-push-type");
    if !matches!(push_type, Some("alert" | "background" | "voip" | "location" | "complication")) {
        return reason(400, "InvalidPushType");
    }
    match (push_type, header("apns-priority")) {
        (Some("background"), Some("5")) | (Some("alert"), None | Some("5" | "10")) => {}
        _ => return reason(400, "BadPriority"),
    }
    if header("apns-expiration").is_some_and(|e| e.parse::<u64>().is_err()) {
        return reason(400, "BadExpirationDate");
    }
    if header("apns-collapse-id").is_some_and(|c| c.len() > 64) {
        return reason(400, "BadCollapseId");
    }
    if req.body().len() > 4096 {
        return reason(413, "PayloadTooLarge");
    }
    if !record.body.get("aps").is_some_and(Value::is_object) {
        return reason(400, "PayloadEmpty");
    }
    if record.token.is_empty() {
        return reason(400, "MissingDeviceToken");
    }
    if !record.token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return reason(400, "BadDeviceToken");
    }
    (200, None, Vec::new())
}

/// Verifies a provider token: ES256 by a registered `kid`, `iss` its team.
fn verify(state: &State, jwt: &str) -> Option<(String, Value)> {
    let decoded = DecodedJwt::decode(jwt)?;
    let kid = decoded.header["kid"].as_str()?.to_owned();
    let keys = lock(&state.keys);
    let key = keys.get(&kid)?;
    let ok = decoded.verify_es256(&key.public_key)
        && decoded.claims["iss"] == key.team_id.as_str()
        && decoded.claim_u64("iat").is_some();
    ok.then(|| (kid, decoded.claims.clone()))
}
