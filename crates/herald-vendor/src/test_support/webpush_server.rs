//! A local server that behaves like a Web Push service (RFC 8030): `POST /push/{id}` over
//! HTTP/2 with the VAPID token verified against the `k` it comes with and the key the
//! subscription was made for, the RFC 8030 headers checked, and the body decrypted with the
//! subscriber's private key so tests see the plaintext a browser would.

use super::lock;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::SecretKey;
use rand::RngCore;
use serde_json::{json, Value};

use super::jwt::DecodedJwt;
use super::server::{json_response, reset_connection, Handler, Listener, Req, Resp};
use super::Reply;
use crate::clock::{unix_secs, Clock, SystemClock};
use crate::webpush::ece::{self, EceError, AUTH_SECRET_BYTES};

/// Longest VAPID token lifetime a push service accepts (RFC 8292, section 2).
const MAX_VAPID_LIFETIME_SECS: u64 = 24 * 3600;

/// One request the server received, with the verdict it gave.
#[derive(Debug, Clone)]
pub struct WebPushRequest {
    /// The subscriber id of the path.
    pub subscriber: String,
    /// Lower-case header names; `authorization` included.
    pub headers: BTreeMap<String, String>,
    /// The VAPID token's claims, when its signature verified.
    pub vapid_claims: Option<Value>,
    /// The VAPID `k` parameter (base64url public key), when present.
    pub vapid_key: Option<String>,
    /// The decrypted message, when it decrypted.
    pub plaintext: Option<Vec<u8>>,
    pub status: u16,
    /// Why the server refused the request, if it did.
    pub reason: Option<String>,
}

impl WebPushRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The plaintext as JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(self.plaintext.as_ref()?).ok()
    }
}

/// A browser's side of a subscription: the keys it made and the endpoint it was given.
#[derive(Clone)]
pub struct TestSubscriber {
    pub id: String,
    pub endpoint: String,
    private_key: SecretKey,
    /// base64url of the uncompressed public point (`keys.p256dh`).
    pub p256dh: String,
    pub auth_secret: [u8; AUTH_SECRET_BYTES],
    /// The `applicationServerKey` the subscription was made with.
    pub application_server_key: String,
}

impl std::fmt::Debug for TestSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSubscriber")
            .field("id", &self.id)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl TestSubscriber {
    /// The `PushSubscription.toJSON()` a page would post: the device's vendor token.
    pub fn subscription_json(&self) -> String {
        json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {"p256dh": self.p256dh, "auth": URL_SAFE_NO_PAD.encode(self.auth_secret)},
        })
        .to_string()
    }

    /// Decrypts a message body as the browser would.
    pub fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, EceError> {
        ece::decrypt(body, &self.private_key, &self.auth_secret)
    }
}

struct State {
    clock: Arc<dyn Clock>,
    /// The listener's origin, set once it is bound: the VAPID `aud` expected.
    origin: OnceLock<String>,
    subscribers: Mutex<HashMap<String, TestSubscriber>>,
    /// VAPID tokens already verified, with their claims: the benchmark must not measure ECDSA
    /// verification, and a real push service caches them too.
    verified: Mutex<HashMap<String, Value>>,
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    default: Mutex<Reply>,
    requests: Mutex<Vec<WebPushRequest>>,
    recording: AtomicBool,
    count: AtomicU64,
    next_id: AtomicU64,
}

/// The push-service look-alike. Stops when dropped.
pub struct WebPushTestServer {
    state: Arc<State>,
    listener: Listener,
}

impl WebPushTestServer {
    /// Starts a server judging VAPID expiry by the system clock.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// Starts a server judging VAPID expiry by `clock` (share the sender's).
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let state = Arc::new(State {
            clock,
            origin: OnceLock::new(),
            subscribers: Mutex::default(),
            verified: Mutex::default(),
            scripts: Mutex::default(),
            default: Mutex::new(Reply::Ok),
            requests: Mutex::default(),
            recording: AtomicBool::new(true),
            count: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        });
        let handler_state = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let state = handler_state.clone();
            Box::pin(async move { handle(&state, req).await })
        });
        let listener = Listener::start(handler).await?;
        let _ = state.origin.set(listener.url());
        Ok(Self { state, listener })
    }

    /// The server's origin, `https://127.0.0.1:{port}`: the VAPID `aud` it expects.
    pub fn url(&self) -> String {
        self.listener.url()
    }

    /// A new browser subscription for the app whose VAPID public key is
    /// `application_server_key`; only that key's tokens are accepted for it.
    pub fn subscribe(&self, application_server_key: &str) -> TestSubscriber {
        let n = self.state.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("sub-{n}");
        let private_key = SecretKey::random(&mut rand::rngs::OsRng);
        let mut auth_secret = [0; AUTH_SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut auth_secret);
        let subscriber = TestSubscriber {
            endpoint: format!("{}/push/{id}", self.url()),
            p256dh: URL_SAFE_NO_PAD.encode(ece::encoded_point(&private_key.public_key())),
            private_key,
            auth_secret,
            application_server_key: application_server_key.to_owned(),
            id: id.clone(),
        };
        lock(&self.state.subscribers).insert(id, subscriber.clone());
        subscriber
    }

    /// Forgets a subscription: later messages to it get 410 Gone, as after the user revoked
    /// the permission.
    pub fn unsubscribe(&self, id: &str) {
        lock(&self.state.subscribers).remove(id);
    }

    /// Answers the next messages to subscriber `id` with `replies`, in order; then the default.
    pub fn script(&self, id: &str, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state.scripts).entry(id.into()).or_default().extend(replies);
    }

    /// The reply for messages without a script (initially [`Reply::Ok`], a 201).
    pub fn set_default(&self, reply: Reply) {
        *lock(&self.state.default) = reply;
    }

    /// Whether requests are kept for [`WebPushTestServer::requests`]; off for benchmarks.
    pub fn set_recording(&self, on: bool) {
        self.state.recording.store(on, Ordering::Relaxed);
    }

    pub fn requests(&self) -> Vec<WebPushRequest> {
        lock(&self.state.requests).clone()
    }

    /// Requests answered so far, recorded or not.
    pub fn request_count(&self) -> u64 {
        self.state.count.load(Ordering::Relaxed)
    }
}

async fn handle(state: &State, req: Req) -> Resp {
    let n = state.count.fetch_add(1, Ordering::Relaxed) + 1;
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let subscriber = req.uri().path().strip_prefix("/push/").unwrap_or_default().to_owned();
    let mut record = WebPushRequest {
        subscriber: subscriber.clone(),
        headers,
        vapid_claims: None,
        vapid_key: None,
        plaintext: None,
        status: 201,
        reason: None,
    };
    if let Err((status, reason)) = judge(state, &req, &mut record) {
        return answer(state, record, status, Some(reason.into()), Vec::new());
    }
    let reply = {
        let scripted = lock(&state.scripts).get_mut(&subscriber).and_then(VecDeque::pop_front);
        scripted.unwrap_or_else(|| lock(&state.default).clone())
    };
    let retry = |after: Option<u64>| after.map(|s| vec![("retry-after", s.to_string())]);
    match reply {
        Reply::Ok => {
            let location = format!("{}/m/{n}", origin(state));
            answer(state, record, 201, None, vec![("location", location)])
        }
        Reply::Unregistered => answer(state, record, 410, Some("Gone".into()), Vec::new()),
        Reply::BadDeviceToken => answer(state, record, 404, Some("NotFound".into()), Vec::new()),
        Reply::TooManyRequests { retry_after } => {
            let extra = retry(retry_after).unwrap_or_default();
            answer(state, record, 429, Some("TooManyRequests".into()), extra)
        }
        Reply::InternalError => answer(state, record, 500, Some("Internal".into()), Vec::new()),
        Reply::Unavailable { retry_after } => {
            let extra = retry(retry_after).unwrap_or_default();
            answer(state, record, 503, Some("Unavailable".into()), extra)
        }
        Reply::AuthExpired => answer(state, record, 401, Some("ExpiredVapid".into()), Vec::new()),
        Reply::Hang => std::future::pending().await,
        Reply::Reset => reset_connection(),
        Reply::Raw { status, body } => {
            record.status = status;
            keep(state, record);
            json_response(status, body, &[])
        }
    }
}

fn answer(
    state: &State,
    mut record: WebPushRequest,
    status: u16,
    reason: Option<String>,
    headers: Vec<(&'static str, String)>,
) -> Resp {
    record.status = status;
    record.reason = reason.clone();
    keep(state, record);
    let body = reason.map(|r| json!({"code": status, "error": r}).to_string()).unwrap_or_default();
    json_response(status, body, &headers)
}

fn origin(state: &State) -> &str {
    state.origin.get().map_or("", String::as_str)
}

fn keep(state: &State, record: WebPushRequest) {
    if state.recording.load(Ordering::Relaxed) {
        lock(&state.requests).push(record);
    }
}

/// The checks a push service makes before accepting a message, with its status codes.
fn judge(state: &State, req: &Req, record: &mut WebPushRequest) -> Result<(), (u16, &'static str)> {
    if req.method() != hyper::Method::POST {
        return Err((405, "MethodNotAllowed"));
    }
    let subscriber = lock(&state.subscribers).get(&record.subscriber).cloned();
    let Some(subscriber) = subscriber else {
        return Err((410, "Gone"));
    };
    let header = |name: &str| record.headers.get(name).cloned();
    let (jwt, key) =
        header("authorization").as_deref().and_then(parse_vapid).ok_or((401, "MissingVapid"))?;
    record.vapid_key = Some(key.clone());
    let claims = verify_vapid(state, &jwt, &key).ok_or((401, "BadVapidSignature"))?;
    record.vapid_claims = Some(claims.clone());
    check_claims(state, &claims)?;
    if key != subscriber.application_server_key {
        return Err((403, "VapidKeyMismatch"));
    }
    if header("ttl").is_none_or(|ttl| ttl.parse::<u64>().is_err()) {
        return Err((400, "BadTtl"));
    }
    if header("content-encoding").as_deref() != Some("aes128gcm") {
        return Err((400, "BadContentEncoding"));
    }
    if header("urgency")
        .is_some_and(|u| !matches!(u.as_str(), "very-low" | "low" | "normal" | "high"))
    {
        return Err((400, "BadUrgency"));
    }
    let url_safe = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if header("topic").is_some_and(|t| t.len() > 32 || !t.bytes().all(url_safe)) {
        return Err((400, "BadTopic"));
    }
    if req.body().len() > ece::MAX_BODY_BYTES {
        return Err((413, "PayloadTooLarge"));
    }
    let plaintext = subscriber.decrypt(req.body()).map_err(|_| (400, "Undecryptable"))?;
    record.plaintext = Some(plaintext);
    Ok(())
}

/// `vapid t=<jwt>, k=<key>` into its two parameters.
fn parse_vapid(value: &str) -> Option<(String, String)> {
    let params = value.strip_prefix("vapid ")?;
    let (mut t, mut k) = (None, None);
    for param in params.split(',') {
        match param.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.to_owned()),
            Some(("k", v)) => k = Some(v.to_owned()),
            _ => {}
        }
    }
    Some((t?, k?))
}

fn verify_vapid(state: &State, jwt: &str, key: &str) -> Option<Value> {
    let cache_key = format!("{key} {jwt}");
    if let Some(claims) = lock(&state.verified).get(&cache_key) {
        return Some(claims.clone());
    }
    let decoded = DecodedJwt::decode(jwt)?;
    let public_key = URL_SAFE_NO_PAD.decode(key).ok()?;
    if !decoded.verify_es256(&public_key) {
        return None;
    }
    lock(&state.verified).insert(cache_key, decoded.claims.clone());
    Some(decoded.claims)
}

/// RFC 8292 section 2: `aud` is this origin, `exp` in the future and within 24 hours, `sub`
/// a contact.
fn check_claims(state: &State, claims: &Value) -> Result<(), (u16, &'static str)> {
    if claims["aud"] != origin(state) {
        return Err((401, "BadAudience"));
    }
    let now = unix_secs(state.clock.now());
    let exp = claims["exp"].as_u64().ok_or((401, "NoExpiry"))?;
    if exp <= now || exp > now + MAX_VAPID_LIFETIME_SECS {
        return Err((401, "BadExpiry"));
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !(sub.starts_with("mailto:") || sub.starts_with("https://")) {
        return Err((401, "BadSubject"));
    }
    Ok(())
}
