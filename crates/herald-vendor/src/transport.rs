//! HTTP/2 over TLS to one vendor origin: a fixed set of multiplexed connections per app and
//! vendor, opened on first use and reopened when the peer closes them.
//!
//! hyper's connection API is used directly: a send is one `SendRequest` clone and one stream,
//! with no per-request URL parsing, pool look-up or redirect layer, which is most of what a
//! general-purpose client would add to each of the many small vendor requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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
    Http(#[from] hyper::Error),
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

#[derive(Default)]
struct Slot {
    sender: Mutex<Option<SendRequest<Full<Bytes>>>>,
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
    pub(crate) async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Reply, TransportError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let exchange = async {
            let mut sender = self.sender(slot).await?;
            let response = sender.send_request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(Reply { status: parts.status, headers: parts.headers, body })
        };
        tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| TransportError::Timeout)?
    }

    fn current(slot: &Slot) -> Option<SendRequest<Full<Bytes>>> {
        let sender = slot.sender.lock().unwrap_or_else(|e| e.into_inner());
        sender.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    async fn sender(&self, slot: &Slot) -> Result<SendRequest<Full<Bytes>>, TransportError> {
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
        match tokio::time::timeout(self.connect_timeout, self.connect()).await {
            Ok(Ok(sender)) => {
                *last_failure = None;
                *slot.sender.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender.clone());
                Ok(sender)
            }
            Ok(Err(reason)) => {
                *last_failure = Some(Failure { at: Instant::now(), reason: reason.clone() });
                Err(self.connect_error(reason))
            }
            Err(_) => {
                let reason = "connect timeout".to_owned();
                *last_failure = Some(Failure { at: Instant::now(), reason: reason.clone() });
                Err(self.connect_error(reason))
            }
        }
    }

    fn connect_error(&self, reason: String) -> TransportError {
        TransportError::Connect { origin: format!("{}:{}", self.host, self.port), reason }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let tcp =
            TcpStream::connect((self.host.as_str(), self.port)).await.map_err(|e| e.to_string())?;
        // Small requests and responses: send each frame at once.
        let _ = tcp.set_nodelay(true);
        let tls =
            self.tls.connect(self.server_name.clone(), tcp).await.map_err(|e| e.to_string())?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err("the endpoint does not offer HTTP/2".into());
        }
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(60))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true)
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        // Drives the connection until the peer or an error closes it; senders then see
        // `is_closed` and the next send reconnects.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "vendor connection closed");
            }
        });
        Ok(sender)
    }
}
