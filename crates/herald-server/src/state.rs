//! What every handler shares: the service, and what only the HTTP side needs.

use std::sync::Arc;

use axum::extract::FromRef;
use herald_console::{Console, ConsoleHost};
use herald_core::account::AccountId;
use herald_core::AppId;
use herald_gateway::Gateway;
use herald_service::Service;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::Nonces;
use crate::config::Settings;

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

/// What every handler shares. The service's parts are reached through it (`state.store`,
/// `state.dispatcher`): the handlers translate, the service does.
pub struct Shared {
    pub service: Service,
    pub gateway: Gateway,
    pub settings: Arc<Settings>,
    pub admin_token: Arc<str>,
    pub nonces: Arc<Nonces>,
    pub metrics: PrometheusHandle,
    /// The operator console's sessions and failed sign-ins.
    pub console: Console,
}

impl std::ops::Deref for Shared {
    type Target = Service;

    fn deref(&self) -> &Service {
        &self.service
    }
}

impl FromRef<AppState> for Gateway {
    fn from_ref(state: &AppState) -> Gateway {
        state.gateway.clone()
    }
}

impl ConsoleHost for AppState {
    fn service(&self) -> &Service {
        &self.service
    }

    fn console(&self) -> &Console {
        &self.console
    }

    fn online_now(&self, app: AppId) -> u64 {
        self.gateway.registry().online_accounts(app).len()
    }

    fn is_online(&self, app: AppId, account: AccountId) -> bool {
        self.gateway.registry().online_accounts(app).contains(account)
    }

    fn secret_grace_secs(&self) -> u64 {
        self.settings.secret_grace_secs
    }
}
