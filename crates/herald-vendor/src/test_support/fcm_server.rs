//! A local server that behaves like FCM HTTP v1 and Google's OAuth token endpoint:
//! `POST /token` (JWT bearer grant, RS256 assertion verified against registered service
//! accounts) and `POST /v1/projects/{project}/messages:send` (access token checked), with
//! Google's `google.rpc.Status` errors and scripted answers per registration token.

use super::lock;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::jwt::DecodedJwt;
use super::keys::TestServiceAccount;
use super::server::{json_response, reset_connection, Handler, Listener, Req, Resp};
use super::Reply;
use crate::clock::{unix_secs, Clock, SystemClock};
use crate::fcm::FCM_SCOPE;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// One `messages:send` request the server received, with the verdict it gave.
#[derive(Debug, Clone)]
pub struct FcmRequest {
    pub project_id: String,
    /// Lower-case header names; `authorization` included.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    /// The service account whose access token was used, when it was valid.
    pub client_email: Option<String>,
    pub status: u16,
    /// The `errorCode` (or status) answered, if any.
    pub error: Option<String>,
}

impl FcmRequest {
    /// `message.token` of the body.
    pub fn token(&self) -> Option<&str> {
        self.body["message"]["token"].as_str()
    }
}

struct Account {
    project_id: String,
    public_key: Vec<u8>,
}

struct Access {
    client_email: String,
    expires: SystemTime,
}

struct State {
    clock: Arc<dyn Clock>,
    token_url: OnceLock<String>,
    accounts: Mutex<HashMap<String, Account>>,
    access: Mutex<HashMap<String, Access>>,
    expires_in: AtomicU64,
    /// Claims of every accepted assertion, in order.
    assertions: Mutex<Vec<Value>>,
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    default: Mutex<Reply>,
    requests: Mutex<Vec<FcmRequest>>,
    recording: AtomicBool,
    count: AtomicU64,
}

/// The FCM look-alike. Stops when dropped.
pub struct FcmTestServer {
    state: Arc<State>,
    listener: Listener,
}

impl FcmTestServer {
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// Starts a server judging assertion and access-token lifetimes by `clock`.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let state = Arc::new(State {
            clock,
            token_url: OnceLock::new(),
            accounts: Mutex::default(),
            access: Mutex::default(),
            expires_in: AtomicU64::new(3599),
            assertions: Mutex::default(),
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
        let listener = Listener::start(handler).await?;
        let _ = state.token_url.set(format!("{}/token", listener.url()));
        Ok(Self { state, listener })
    }

    /// Base URL, for `FcmSettings::base_url`.
    pub fn url(&self) -> String {
        self.listener.url()
    }

    /// The OAuth token endpoint, for a service account's `token_uri`.
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.listener.url())
    }

    /// Accepts assertions signed by `account` and sends to its project.
    pub fn add_account(&self, account: &TestServiceAccount) {
        lock(&self.state.accounts).insert(
            account.client_email.clone(),
            Account {
                project_id: account.project_id.clone(),
                public_key: account.public_key.clone(),
            },
        );
    }

    /// The `expires_in` given with new access tokens (default 3599 s).
    pub fn set_token_lifetime(&self, secs: u64) {
        self.state.expires_in.store(secs, Ordering::Relaxed);
    }

    /// Answers the next sends to `token` with `replies`, in order; then the default.
    pub fn script(&self, token: &str, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state.scripts).entry(token.into()).or_default().extend(replies);
    }

    /// The reply for sends without a script (initially [`Reply::Ok`]).
    pub fn set_default(&self, reply: Reply) {
        *lock(&self.state.default) = reply;
    }

    /// Whether sends are kept for [`FcmTestServer::requests`]; off for benchmarks.
    pub fn set_recording(&self, on: bool) {
        self.state.recording.store(on, Ordering::Relaxed);
    }

    pub fn requests(&self) -> Vec<FcmRequest> {
        lock(&self.state.requests).clone()
    }

    /// `messages:send` requests answered so far, recorded or not.
    pub fn request_count(&self) -> u64 {
        self.state.count.load(Ordering::Relaxed)
    }

    /// Claims of every assertion exchanged for an access token.
    pub fn token_exchanges(&self) -> Vec<Value> {
        lock(&self.state.assertions).clone()
    }
}

async fn handle(state: &State, req: Req) -> Resp {
    let path = req.uri().path().to_owned();
    if req.method() != hyper::Method::POST {
        return rpc_error(405, "METHOD_NOT_ALLOWED", "POST only", None, &[]);
    }
    if path == "/token" {
        return token(state, &req);
    }
    let project = path
        .strip_prefix("/v1/projects/")
        .and_then(|rest| rest.strip_suffix("/messages:send"))
        .map(str::to_owned);
    match project {
        Some(project) => send(state, req, project).await,
        None => rpc_error(404, "NOT_FOUND", "unknown path", None, &[]),
    }
}

/// `POST /token`: the JWT bearer grant.
fn token(state: &State, req: &Req) -> Resp {
    let invalid = |description: &str| {
        json_response(
            400,
            json!({"error": "invalid_grant", "error_description": description}).to_string(),
            &[],
        )
    };
    let form = parse_form(req.body());
    if form.get("grant_type").map(String::as_str) != Some(GRANT_TYPE) {
        return json_response(400, json!({"error": "unsupported_grant_type"}).to_string(), &[]);
    }
    let Some(jwt) = form.get("assertion").and_then(|a| DecodedJwt::decode(a)) else {
        return invalid("Invalid JWT");
    };
    let Some(iss) = jwt.claims["iss"].as_str() else { return invalid("No iss") };
    let verified = lock(&state.accounts).get(iss).is_some_and(|a| jwt.verify_rs256(&a.public_key));
    if !verified {
        return invalid("Invalid JWT Signature.");
    }
    let expected_aud = state.token_url.get().map(String::as_str).unwrap_or_default();
    if jwt.claims["aud"] != expected_aud || jwt.claims["scope"] != FCM_SCOPE {
        return invalid("Invalid aud or scope");
    }
    let (iat, exp) = (jwt.claim_u64("iat").unwrap_or(0), jwt.claim_u64("exp").unwrap_or(0));
    let now = unix_secs(state.clock.now());
    if exp <= iat || exp - iat > 3600 || exp <= now || iat > now + 60 {
        return invalid("Invalid JWT: Token must be a short-lived token (60 minutes)");
    }
    let n = lock(&state.assertions).len();
    lock(&state.assertions).push(jwt.claims.clone());
    let expires_in = state.expires_in.load(Ordering::Relaxed);
    let access_token = format!("ya29.herald-test-{n}");
    lock(&state.access).insert(
        access_token.clone(),
        Access {
            client_email: iss.to_owned(),
            expires: state.clock.now() + Duration::from_secs(expires_in),
        },
    );
    let body =
        json!({"access_token": access_token, "expires_in": expires_in, "token_type": "Bearer"});
    json_response(200, body.to_string(), &[])
}

async fn send(state: &State, req: Req, project_id: String) -> Resp {
    state.count.fetch_add(1, Ordering::Relaxed);
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
    let mut record =
        FcmRequest { project_id, headers, body, client_email: None, status: 200, error: None };
    let response = answer(state, &mut record).await;
    if state.recording.load(Ordering::Relaxed) {
        lock(&state.requests).push(record);
    }
    response
}

async fn answer(state: &State, record: &mut FcmRequest) -> Resp {
    fn fail(
        record: &mut FcmRequest,
        status: u16,
        rpc: &str,
        code: Option<&str>,
        extra: &[(&str, String)],
    ) -> Resp {
        record.status = status;
        record.error = Some(code.unwrap_or(rpc).to_owned());
        rpc_error(status, rpc, "error", code, extra)
    }
    let bearer = record.headers.get("authorization").and_then(|a| a.strip_prefix("Bearer "));
    let access = bearer.and_then(|b| {
        lock(&state.access)
            .get(b)
            .filter(|a| state.clock.now() < a.expires)
            .map(|a| a.client_email.clone())
    });
    let Some(client_email) = access else {
        return fail(record, 401, "UNAUTHENTICATED", None, &[]);
    };
    let account_project = lock(&state.accounts).get(&client_email).map(|a| a.project_id.clone());
    record.client_email = Some(client_email);
    if account_project.as_deref() != Some(record.project_id.as_str()) {
        return fail(record, 403, "PERMISSION_DENIED", None, &[]);
    }
    if let Some(field) = malformed(&record.body) {
        record.status = 400;
        record.error = Some("INVALID_ARGUMENT".into());
        return bad_request(&field);
    }
    let token = record.token().unwrap_or_default().to_owned();
    let scripted = lock(&state.scripts).get_mut(&token).and_then(VecDeque::pop_front);
    let reply = scripted.unwrap_or_else(|| lock(&state.default).clone());
    let retry =
        |s: Option<u64>| s.map(|s| vec![("retry-after", s.to_string())]).unwrap_or_default();
    match reply {
        Reply::Ok => {
            let n = state.count.load(Ordering::Relaxed);
            let name = format!("projects/{}/messages/{n}", record.project_id);
            json_response(200, json!({ "name": name }).to_string(), &[])
        }
        Reply::Unregistered => fail(record, 404, "NOT_FOUND", Some("UNREGISTERED"), &[]),
        Reply::BadDeviceToken => {
            fail(record, 400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"), &[])
        }
        Reply::TooManyRequests { retry_after } => {
            fail(record, 429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"), &retry(retry_after))
        }
        Reply::InternalError => fail(record, 500, "INTERNAL", Some("INTERNAL"), &[]),
        Reply::Unavailable { retry_after } => {
            fail(record, 503, "UNAVAILABLE", Some("UNAVAILABLE"), &retry(retry_after))
        }
        Reply::AuthExpired => fail(record, 401, "UNAUTHENTICATED", None, &[]),
        Reply::Hang => std::future::pending().await,
        Reply::Reset => {
            record.status = 0;
            record.error = Some("connection reset".into());
            reset_connection()
        }
        Reply::Raw { status, body } => {
            record.status = status;
            json_response(status, body, &[])
        }
    }
}

/// The field FCM would refuse, if any: no token, or data values that are not strings.
fn malformed(body: &Value) -> Option<String> {
    let message = body.get("message")?;
    if !message["token"].is_string() {
        return Some("message.token".into());
    }
    if let Some(data) = message.get("data") {
        let object = data.as_object()?;
        if let Some((key, _)) = object.iter().find(|(_, v)| !v.is_string()) {
            return Some(format!("message.data[{key}].value"));
        }
    }
    let ttl = message["android"]["ttl"].as_str();
    if ttl.is_some_and(|t| t.strip_suffix('s').is_none_or(|n| n.parse::<u64>().is_err())) {
        return Some("message.android.ttl".into());
    }
    None
}

fn rpc_error(
    status: u16,
    rpc: &str,
    message: &str,
    code: Option<&str>,
    extra: &[(&str, String)],
) -> Resp {
    let details: Vec<Value> = code
        .map(|c| json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": c}))
        .into_iter()
        .collect();
    let body =
        json!({"error": {"code": status, "message": message, "status": rpc, "details": details}});
    json_response(status, body.to_string(), extra)
}

fn bad_request(field: &str) -> Resp {
    let body = json!({"error": {"code": 400, "message": format!("Invalid value at '{field}'"),
        "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": field, "description": "invalid"}]}]}});
    json_response(400, body.to_string(), &[])
}

/// Parses `application/x-www-form-urlencoded` (percent escapes and `+`).
fn parse_form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((percent_decode(k), percent_decode(v)))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
