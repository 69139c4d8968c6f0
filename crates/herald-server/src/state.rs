//! What every handler shares.

use std::sync::Arc;

use herald_store::DynStore;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::NonceCache;
use crate::config::Settings;
use crate::directory::Directory;

/// Shared state of the HTTP server; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub directory: Arc<Directory>,
    pub settings: Arc<Settings>,
    pub admin_token: Arc<str>,
    pub nonces: Arc<NonceCache>,
    pub metrics: PrometheusHandle,
}
