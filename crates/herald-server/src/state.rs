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
use crate::limits::{BroadcastGate, RequestLimiter};
use crate::vendors::Vendors;
use crate::webhooks::Webhooks;

/// Shared state of the HTTP server; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub directory: Arc<Directory>,
    pub dispatcher: Dispatcher,
    pub gateway: Gateway,
    pub settings: Arc<Settings>,
    pub admin_token: Arc<str>,
    pub nonces: Arc<NonceCache>,
    pub metrics: PrometheusHandle,
    pub requests: Arc<RequestLimiter>,
    pub broadcasts: Arc<BroadcastGate>,
    pub receipts: Receipts,
    pub webhooks: Webhooks,
    pub vendors: Vendors,
}

impl FromRef<AppState> for Gateway {
    fn from_ref(state: &AppState) -> Gateway {
        state.gateway.clone()
    }
}
