//! herald-gateway: client connections. The wire protocol and client tokens (re-exported from
//! `herald-protocol`), the registry of live sessions with its online fan-out, and the WebSocket
//! session that syncs a device's offline inbox and then forwards live pushes.
//!
//! The gateway knows no HTTP route of the push API and no SQL: the server implements
//! [`Authenticator`] and [`Inbox`] over its store, builds a [`Gateway`], mounts [`connect`] at
//! `GET /v1/connect`, and hands pushes to [`Registry::deliver`].
//!
//! Metrics (the `metrics` crate; the server installs the exporter):
//! `herald_gateway_connections_total`, `herald_gateway_sessions` (gauge of identified
//! sessions), `herald_gateway_frames_queued_total`, `herald_gateway_frames_sent_total`,
//! `herald_gateway_disconnects_total{reason}` (close code labels, `client_closed`,
//! `connection_lost`), `herald_gateway_refused_total{limit}` (`max_connections`, `per_ip`,
//! `unidentified`),
//! `herald_gateway_acks_total`, `herald_gateway_opened_total`. Queue sizes are read with
//! [`Gateway::queued_frames`], [`Gateway::pending_acks`], [`Gateway::unidentified_count`].
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use herald_gateway::{Gateway, GatewaySettings, Authenticator, Inbox};
//! # async fn wire(auth: Arc<dyn Authenticator>, inbox: Arc<dyn Inbox>) {
//! let gateway = Gateway::new(GatewaySettings::default(), auth, inbox);
//! let app: axum::Router = axum::Router::new()
//!     .route("/v1/connect", axum::routing::get(herald_gateway::connect))
//!     .with_state(gateway.clone());
//! // … serve `app`; on shutdown:
//! gateway.shutdown();
//! gateway.closed().await;
//! # }
//! ```

mod acks;
mod admission;
pub mod auth;
pub mod inbox;
mod outbox;
pub mod protocol;
pub mod registry;
mod session;
pub mod settings;
mod socket;
#[cfg(feature = "test-support")]
pub mod test_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Notify};

use acks::AckQueue;
use admission::Admission;

pub use herald_protocol::token;

pub use auth::{AuthError, Authenticator, Identity};
pub use inbox::{AckRecord, DeviceInfo, Inbox, InboxError, Login};
pub use registry::{Delivery, PushFrames, Registry};
pub use session::connect;
pub use settings::GatewaySettings;
pub use socket::{ClientUpgrade, UpgradeRefusal};

/// Everything a session needs: settings, the two seams, the registry and the shutdown signal.
/// Cheap to clone; use it as (or derive it from) the axum state of [`connect`].
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Shared>,
}

struct Shared {
    settings: GatewaySettings,
    auth: Arc<dyn Authenticator>,
    inbox: Arc<dyn Inbox>,
    /// Acks on their way to the inbox, recorded by one writer.
    acks: Arc<AckQueue>,
    registry: Arc<Registry>,
    /// Connections per address and app, and those waiting for their hello, against limits.
    admission: Arc<Admission>,
    shutdown: watch::Sender<bool>,
    /// Open WebSocket connections, identified or not: [`Gateway::closed`] waits for zero.
    connections: AtomicUsize,
    drained: Notify,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("settings", &self.inner.settings)
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway with an empty registry. Settings should have passed
    /// [`GatewaySettings::validate`]; a zero queue capacity is raised to 1.
    pub fn new(
        settings: GatewaySettings,
        auth: Arc<dyn Authenticator>,
        inbox: Arc<dyn Inbox>,
    ) -> Self {
        let registry = Arc::new(Registry::new(settings.queue_capacity));
        // The server raised its soft limit to the hard one before this.
        let open_files =
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(u64::MAX, |(soft, _)| soft);
        let admission = Admission::new(&settings, settings.connection_limit(open_files));
        Self {
            inner: Arc::new(Shared {
                admission,
                settings,
                auth,
                acks: Arc::new(AckQueue::new(inbox.clone())),
                inbox,
                registry,
                shutdown: watch::Sender::new(false),
                connections: AtomicUsize::new(0),
                drained: Notify::new(),
            }),
        }
    }

    /// The live sessions, for fan-out and presence.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    pub fn settings(&self) -> &GatewaySettings {
        &self.inner.settings
    }

    /// Checks a client token as a hello's is checked; for device requests made without a
    /// connection (a browser's service worker reporting a notification shown or opened).
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        self.inner.auth.verify(token).await
    }

    /// Closes every connection with 1001 and refuses new ones (with 503).
    pub fn shutdown(&self) {
        // Connections still waiting for their hello watch this; identified sessions hear of
        // it from their outbox.
        self.inner.shutdown.send_replace(true);
        self.inner.registry.shut_down();
    }

    /// Whether [`Gateway::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Open WebSocket connections, including those still waiting for their hello.
    pub fn connection_count(&self) -> usize {
        self.inner.connections.load(Ordering::Acquire)
    }

    /// Open connections that have not sent their hello yet.
    pub fn unidentified_count(&self) -> usize {
        self.inner.admission.unidentified()
    }

    /// Frames waiting in the outgoing queues of all connections.
    pub fn queued_frames(&self) -> usize {
        outbox::queued_frames()
    }

    /// Devices whose acks wait to be recorded.
    pub fn pending_acks(&self) -> usize {
        self.inner.acks.pending()
    }

    /// Waits until no connection is open (after [`Gateway::shutdown`], until all have closed)
    /// and every ack they sent is recorded.
    pub async fn closed(&self) {
        loop {
            let drained = self.inner.drained.notified();
            if self.connection_count() == 0 {
                break;
            }
            drained.await;
        }
        self.inner.acks.idle().await;
    }

    fn track_connection(&self) -> ConnectionGuard {
        self.inner.connections.fetch_add(1, Ordering::AcqRel);
        metrics::counter!("herald_gateway_connections_total").increment(1);
        ConnectionGuard { gateway: self.clone() }
    }
}

/// Counts a connection while it lives.
struct ConnectionGuard {
    gateway: Gateway,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.gateway.inner.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.gateway.inner.drained.notify_waiters();
        }
    }
}
