//! What every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use herald_gateway::Gateway;
use herald_store::DynStore;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::NonceCache;
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
    pub nonces: Arc<NonceCache>,
    pub metrics: PrometheusHandle,
    pub requests: Arc<RequestLimiter>,
    pub receipts: Receipts,
    pub webhooks: Webhooks,
    pub vendors: Vendors,
    /// This node's part of a cluster; `None` on a single node.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl FromRef<AppState> for Gateway {
    fn from_ref(state: &AppState) -> Gateway {
        state.gateway.clone()
    }
}
