//! HTTP/2 over TLS to one vendor origin: a fixed set of multiplexed connections per app and
//! vendor, opened on first use and reopened when the peer closes them.
//!
//! The `h2` crate is used directly: a send is one stream on a shared connection, driven by the
//! caller's own future. A general-purpose client adds per request a URL parse, a pool look-up,
//! a redirect layer and a spawned task with channels back to the caller, which is most of the
//! cost of the many small vendor requests.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Request, StatusCode, Uri};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::settings::{SettingsError, VendorSettings};

/// Why a request got no HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {origin}: {reason}")]
    Connect { origin: String, reason: String },
    #[error("no response within the request timeout")]
    Timeout,
    #[error("HTTP/2 error: {0}")]
    Http(#[from] h2::Error),
    #[error("invalid request: {0}")]
    Request(String),
}

impl TransportError {
    /// A short, stable reason for the report's counters.
    pub fn reason(&self) -> &'static str {
        match self {
            TransportError::Connect { .. } => "ConnectFailed",
            TransportError::Timeout => "Timeout",
            TransportError::Http(_) => "ConnectionError",
            TransportError::Request(_) => "BadRequest",
        }
    }
}

/// A response with its body read.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// What every connection of the process shares: TLS roots and timeouts.
#[derive(Clone)]
pub(crate) struct TransportFactory {
    tls: TlsConnector,
    connections: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl TransportFactory {
    /// Public roots (webpki-roots) plus `extra_root_pem`; ALPN offers only `h2`, which both
    /// vendors speak.
    pub(crate) fn new(settings: &VendorSettings) -> Result<Self, SettingsError> {
        let invalid = |reason: String| SettingsError::Invalid { name: "extra_root_pem", reason };
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &settings.extra_root_pem {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| invalid(e.to_string()))?;
            if certs.is_empty() {
                return Err(invalid("no certificate in the PEM text".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| invalid(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
            connections: settings.connections,
            connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
            request_timeout: Duration::from_millis(settings.request_timeout_ms),
        })
    }

    /// Connections to the origin of `base_url` (an `https://host[:port]` URL).
    pub(crate) fn origin(&self, base_url: &str) -> Result<Origin, String> {
        let uri: Uri = base_url.parse().map_err(|e| format!("{base_url}: {e}"))?;
        if uri.scheme() != Some(&Scheme::HTTPS) {
            return Err(format!("{base_url}: must be an https:// URL"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| format!("{base_url}: no host"))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let server_name =
            ServerName::try_from(host.clone()).map_err(|e| format!("{base_url}: {e}"))?;
        Ok(Origin {
            base_path: uri.path().trim_end_matches('/').to_owned(),
            port: authority.port_u16().unwrap_or(443),
            host,
            server_name,
            authority,
            tls: self.tls.clone(),
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            slots: (0..self.connections).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        })
    }
}

/// A connection: the handle that opens streams, and whether its driver has stopped.
struct Live {
    sender: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
}

#[derive(Default)]
struct Slot {
    live: Mutex<Option<Live>>,
    /// Held while connecting, so that the sends waiting for this slot share one attempt.
    connecting: tokio::sync::Mutex<Option<Failure>>,
}

#[derive(Clone)]
struct Failure {
    at: Instant,
    reason: String,
}

/// The connections of one app and vendor to one origin.
pub(crate) struct Origin {
    /// The path of the base URL, without a trailing `/`; request paths are appended to it.
    pub(crate) base_path: String,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    authority: Authority,
    tls: TlsConnector,
    connect_timeout: Duration,
    request_timeout: Duration,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

impl Origin {
    /// An absolute URI for `path` below the base URL.
    pub(crate) fn uri(&self, path: &str) -> Result<Uri, TransportError> {
        let path = PathAndQuery::try_from(format!("{}{path}", self.base_path))
            .map_err(|e| TransportError::Request(e.to_string()))?;
        Uri::builder()
            .scheme(Scheme::HTTPS)
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| TransportError::Request(e.to_string()))
    }

    /// Sends `request` on one of the connections and reads the whole response, within the
    /// request timeout.
    pub(crate) async fn send(&self, request: Request<Bytes>) -> Result<Reply, TransportError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let (head, body) = request.into_parts();
        let exchange = async {
            // `ready` waits while the connection is at the peer's stream limit.
            let mut sender = self.sender(slot).await?.ready().await?;
            let end_of_stream = body.is_empty();
            let (response, mut stream) =
                sender.send_request(Request::from_parts(head, ()), end_of_stream)?;
            if !end_of_stream {
                stream.send_data(body, true)?;
            }
            let (head, mut received) = response.await?.into_parts();
            let mut body = BytesMut::new();
            while let Some(chunk) = received.data().await {
                let chunk = chunk?;
                let _ = received.flow_control().release_capacity(chunk.len());
                body.extend_from_slice(&chunk);
            }
            Ok(Reply { status: head.status, headers: head.headers, body: body.freeze() })
        };
        tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| TransportError::Timeout)?
    }

    fn current(slot: &Slot) -> Option<SendRequest<Bytes>> {
        let live = slot.live.lock().unwrap_or_else(|e| e.into_inner());
        live.as_ref().filter(|l| !l.closed.load(Ordering::Acquire)).map(|l| l.sender.clone())
    }

    async fn sender(&self, slot: &Slot) -> Result<SendRequest<Bytes>, TransportError> {
        if let Some(sender) = Self::current(slot) {
            return Ok(sender);
        }
        let waiting_since = Instant::now();
        let mut last_failure = slot.connecting.lock().await;
        if let Some(sender) = Self::current(slot) {
            return Ok(sender);
        }
        // A connection attempt that failed while this send waited answers for it too: a
        // burst of sends to an endpoint that is down makes one attempt, not one each.
        if let Some(failure) = last_failure.as_ref().filter(|f| f.at >= waiting_since) {
            return Err(self.connect_error(failure.reason.clone()));
        }
        let attempt = tokio::time::timeout(self.connect_timeout, self.connect()).await;
        match attempt.unwrap_or_else(|_| Err("connect timeout".to_owned())) {
            Ok(live) => {
                *last_failure = None;
                let sender = live.sender.clone();
                *slot.live.lock().unwrap_or_else(|e| e.into_inner()) = Some(live);
                Ok(sender)
            }
            Err(reason) => {
                *last_failure = Some(Failure { at: Instant::now(), reason: reason.clone() });
                Err(self.connect_error(reason))
            }
        }
    }

    fn connect_error(&self, reason: String) -> TransportError {
        TransportError::Connect { origin: format!("{}:{}", self.host, self.port), reason }
    }

    async fn connect(&self) -> Result<Live, String> {
        let tcp =
            TcpStream::connect((self.host.as_str(), self.port)).await.map_err(|e| e.to_string())?;
        // Small requests and responses: send each frame at once.
        let _ = tcp.set_nodelay(true);
        let tls =
            self.tls.connect(self.server_name.clone(), tcp).await.map_err(|e| e.to_string())?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err("the endpoint does not offer HTTP/2".into());
        }
        let (sender, mut connection) =
            h2::client::Builder::new().handshake(tls).await.map_err(|e| e.to_string())?;
        let closed = Arc::new(AtomicBool::new(false));
        let ping_pong = connection.ping_pong();
        // Drives the connection until the peer or an error closes it; its senders then count
        // as closed and the next send reconnects.
        let driver = {
            let closed = closed.clone();
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "vendor connection closed");
                }
                closed.store(true, Ordering::Release);
            })
        };
        // Keep-alive: an idle connection that a middlebox dropped would otherwise swallow the
        // next request until its timeout. No pong in time ends the connection.
        if let Some(mut ping_pong) = ping_pong {
            let closed = closed.clone();
            let driver = driver.abort_handle();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(KEEPALIVE_INTERVAL).await;
                    if closed.load(Ordering::Acquire) {
                        break;
                    }
                    let pong =
                        tokio::time::timeout(KEEPALIVE_TIMEOUT, ping_pong.ping(h2::Ping::opaque()));
                    if !matches!(pong.await, Ok(Ok(_))) {
                        closed.store(true, Ordering::Release);
                        driver.abort();
                        break;
                    }
                }
            });
        }
        Ok(Live { sender, closed })
    }
}

/// How often an open connection is checked with a PING, and how long the PONG may take.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
