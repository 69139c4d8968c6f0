//! What every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use herald_gateway::Gateway;
use herald_store::DynStore;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::Nonces;
use crate::config::Settings;
use crate::directory::Directory;
use crate::dispatch::{Dispatcher, Receipts};
use crate::limits::RequestLimiter;
use crate::vendors::Vendors;
use crate::webhooks::Webhooks;

/// Shared state of the HTTP server: one pointer, because axum clones it for every request
/// (about 1 % of the server's CPU time in a reconnect storm as a struct of a dozen `Arc`s).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every handler shares.
pub struct Shared {
    pub store: DynStore,
    pub directory: Arc<Directory>,
    pub dispatcher: Dispatcher,
    pub gateway: Gateway,
    pub settings: Arc<Settings>,
    pub admin_token: Arc<str>,
    pub nonces: Arc<Nonces>,
    pub metrics: PrometheusHandle,
    pub requests: Arc<RequestLimiter>,
    pub receipts: Receipts,
    pub webhooks: Webhooks,
    pub vendors: Vendors,
    /// This node's part of a cluster; `None` on a single node.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    pub app_caches: AppCaches,
    /// The offline inbox in memory.
    pub live: Arc<crate::dispatch::LiveInbox>,
}

/// Every cache of apps this node keeps (hellos by key, logins and inbox reads by id).
#[derive(Clone)]
pub struct AppCaches {
    pub by_key: Arc<crate::recent_apps::RecentApps<String>>,
    pub by_id: Arc<crate::dispatch::AppCache>,
}

impl AppCaches {
    pub fn forget(&self, app: herald_core::AppId) {
        self.by_key.forget_app(app);
        self.by_id.forget(app);
    }
}

impl Shared {
    /// An app's secret, limits or existence changed: this node forgets what it cached of it
    /// at once, and in a cluster every other node does too, before the call is answered.
    pub async fn app_changed(
        &self,
        app: herald_core::AppId,
    ) -> Result<(), crate::error::ApiErrorKind> {
        self.app_caches.forget(app);
        if let Some(cluster) = &self.cluster {
            use crate::directory::{ChangeFeed, DirectoryChange};
            cluster.announce(DirectoryChange::App { app }).await.map_err(|err| {
                crate::error::ApiErrorKind::Unavailable(format!(
                    "the change is stored, but the other nodes could not be told yet ({err}); retry"
                ))
            })?;
        }
        Ok(())
    }
}

impl FromRef<AppState> for Gateway {
    fn from_ref(state: &AppState) -> Gateway {
        state.gateway.clone()
    }
}
