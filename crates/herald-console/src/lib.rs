//! The operator web console, served by the herald binary at `/console`: server-rendered pages
//! over herald-service, with vendored htmx and uPlot embedded in the binary. Every URL a page
//! contains is relative, so the console works behind a reverse proxy under a sub-path.
//!
//! Every page sits directly under `/console/` (no deeper paths), so that one relative link works
//! from any page.
//!
//! The console performs no operation of its own: signing in checks the same admin token and app
//! secrets as the API, and every page calls the service's functions the API calls.

mod apps;
mod assets;
mod audience;
mod compose;
mod devices;
mod error;
mod form;
mod frame;
mod overview;
mod pushes;
mod report;
mod security;
mod session;
mod settings;
mod signin;
mod throttle;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use herald_core::account::AccountId;
use herald_core::AppId;
use herald_service::Service;

pub use error::ConsoleError;
pub use session::{Scope, Sessions};
pub use throttle::SignInThrottle;

/// What the console keeps between requests: who is signed in and who failed to.
pub struct Console {
    admin_token: Arc<str>,
    sessions: Sessions,
    throttle: SignInThrottle,
}

impl Console {
    pub fn new(admin_token: Arc<str>) -> Self {
        Self { admin_token, sessions: Sessions::default(), throttle: SignInThrottle::default() }
    }
}

/// The state of the binary that serves the console: the service, the console's own memory,
/// and what only the gateway knows.
pub trait ConsoleHost: Clone + Send + Sync + 'static {
    fn service(&self) -> &Service;
    fn console(&self) -> &Console;
    /// Accounts of `app` connected to this node now.
    fn online_now(&self, app: AppId) -> u64;
    /// Whether `account` of `app` is connected to this node now.
    fn is_online(&self, app: AppId, account: AccountId) -> bool;
    /// How long the old secret of an app works after a rotation, unless the operator says.
    fn secret_grace_secs(&self) -> u64;
}

/// The console's routes, under `/console`.
pub fn router<S: ConsoleHost>() -> Router<S> {
    Router::new()
        .route("/console", get(frame::to_console_root))
        .route("/console/", get(overview::page::<S>))
        .route("/console/signin", get(signin::page::<S>).post(signin::submit::<S>))
        .route("/console/signout", post(signin::sign_out::<S>))
        .route("/console/pushes", get(pushes::page::<S>))
        .route("/console/push-action", post(pushes::act::<S>))
        .route("/console/report", get(report::page::<S>))
        .route("/console/report.csv", get(report::csv::<S>))
        .route("/console/compose", get(compose::page::<S>).post(compose::send::<S>))
        .route("/console/estimate", post(compose::estimate::<S>))
        .route("/console/test-send", post(compose::test_send::<S>))
        .route("/console/devices", get(devices::page::<S>))
        .route("/console/settings", get(settings::page::<S>))
        .route("/console/attribute-names", post(settings::attribute_names::<S>))
        .route("/console/compat", post(settings::compat::<S>))
        .route("/console/limits", post(settings::limits_change::<S>))
        .route("/console/vendor", post(settings::vendor::<S>))
        .route("/console/webhook", post(settings::webhook::<S>))
        .route("/console/app-create", post(apps::create::<S>))
        .route("/console/app-rotate", post(apps::rotate::<S>))
        .route("/console/app-delete", post(apps::delete::<S>))
        .route("/console/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn(security::headers))
}
