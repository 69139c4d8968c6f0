//! What every signed-in page shows around its content: the app it is about, the navigation,
//! the CSRF token for its forms, sign-out.

use std::sync::OnceLock;

use axum::http::header::LOCATION;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_core::{App, AppId};

use crate::session::Session;
use crate::{ConsoleError, ConsoleHost};

/// The page frame's data, passed to every template as `frame`.
pub struct Frame {
    pub csrf: String,
    pub admin: bool,
    pub app: Option<AppRef>,
    /// The navigation entry to highlight.
    pub nav: &'static str,
    pub version: &'static str,
}

/// The app a page is about.
pub struct AppRef {
    pub id: AppId,
    pub name: String,
}

impl Frame {
    pub fn new(session: &Session, app: Option<&App>, nav: &'static str) -> Self {
        Self {
            csrf: session.csrf.clone(),
            admin: session.is_admin(),
            app: app.map(|app| AppRef { id: app.id, name: app.name.clone() }),
            nav,
            version: asset_version(),
        }
    }

    /// The id of the page's app (0 on pages about no app).
    pub fn app_id(&self) -> AppId {
        self.app.as_ref().map_or(0, |app| app.id)
    }
}

/// The version tag of the console's own assets, computed once.
pub fn asset_version() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(crate::assets::own_version_tag)
}

/// The app of a page: `asked` by the admin, or the signed-in app's own.
pub async fn page_app<S: ConsoleHost>(
    state: &S,
    session: &Session,
    asked: Option<AppId>,
) -> Result<App, ConsoleError> {
    let id = session.app_id(asked)?;
    Ok(state.service().store.app(id).await.map_err(herald_service::ServiceError::from)?)
}

/// A 303 to a relative location after a form is handled.
pub fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, location.to_owned())]).into_response()
}

/// `/console` without a slash: relative links need the slash, so go there.
pub async fn to_console_root() -> Response {
    see_other("console/")
}
