//! What a console page can answer other than the page, mapped to responses in one place.

use askama::Template;
use axum::http::header::LOCATION;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use herald_service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("sign in first")]
    SignInRequired,
    #[error(
        "this form is out of date or was not sent by this console; reload the page and try again"
    )]
    Csrf,
    /// An app sign-in naming another app: told as "not found", as the API tells another app's
    /// ids, so that a sign-in cannot learn which app ids exist.
    #[error("app not found")]
    OtherApp,
    #[error("choose an app first")]
    ChooseApp,
    #[error("only the admin sign-in can do this")]
    AdminOnly,
    #[error("{0}")]
    BadForm(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("the page could not be drawn")]
    Render(#[from] askama::Error),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

impl ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            Self::SignInRequired | Self::ChooseApp => StatusCode::SEE_OTHER,
            Self::Csrf | Self::AdminOnly => StatusCode::FORBIDDEN,
            Self::OtherApp => StatusCode::NOT_FOUND,
            Self::BadForm(_) => StatusCode::BAD_REQUEST,
            Self::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Service(err) => service_status(err),
        }
    }
}

/// The status of a service error, as the API gives it.
pub fn service_status(err: &ServiceError) -> StatusCode {
    match err {
        ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
        ServiceError::Conflict(_) | ServiceError::PushState { .. } => StatusCode::CONFLICT,
        ServiceError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ServiceError::Unavailable(_) | ServiceError::StorageFull(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            // Relative: the sign-in page and the app list sit beside every page.
            Self::SignInRequired => (status, [(LOCATION, "signin")]).into_response(),
            Self::ChooseApp => (status, [(LOCATION, "./")]).into_response(),
            other => {
                if let ConsoleError::Service(ServiceError::Internal(detail)) = &other {
                    tracing::error!(%detail, "console page failed");
                }
                let message = other.to_string();
                let page = ErrorPage { status: status.as_u16(), message: &message };
                let body = page.render().unwrap_or(message);
                (status, Html(body)).into_response()
            }
        }
    }
}
