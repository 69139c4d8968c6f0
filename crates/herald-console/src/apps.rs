//! The admin's list of apps, and managing them: create, rotate the secret with a grace
//! period, delete after typing the app's name.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use herald_core::{App, AppId, LimitsPatch};
use herald_service::{apps, ServiceError};
use serde::Deserialize;

use crate::error::service_status;
use crate::form::Checked;
use crate::frame::{see_other, Frame};
use crate::session::Session;
use crate::{ConsoleError, ConsoleHost};

/// What a change left to show once: the new credentials, or why it was refused.
pub enum Outcome {
    Created { name: String, key: String, secret: String },
    Rotated { name: String, secret: String, until: String },
    Refused(String),
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsPage {
    frame: Frame,
    apps: Vec<App>,
    outcome: Option<Outcome>,
    grace_secs: u64,
}

pub async fn page<S: ConsoleHost>(
    state: &S,
    session: &Session,
    outcome: Option<Outcome>,
    status: StatusCode,
) -> Result<Response, ConsoleError> {
    let apps = state.service().store.apps().await.map_err(ServiceError::from)?;
    let page = AppsPage {
        frame: Frame::new(session, None, "apps"),
        apps,
        outcome,
        grace_secs: state.secret_grace_secs(),
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// The admin's page after a refusal: the message above the list.
async fn refused<S: ConsoleHost>(
    state: &S,
    session: &Session,
    err: ServiceError,
) -> Result<Response, ConsoleError> {
    let status = service_status(&err);
    page(state, session, Some(Outcome::Refused(err.to_string())), status).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
}

pub async fn create<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<CreateForm>,
) -> Result<Response, ConsoleError> {
    session.require_admin()?;
    match apps::create(state.service(), &form.name, &LimitsPatch::default()).await {
        Ok((app, secret)) => {
            let outcome = Outcome::Created { name: app.name, key: app.key, secret };
            page(&state, &session, Some(outcome), StatusCode::OK).await
        }
        Err(err) => refused(&state, &session, err).await,
    }
}

#[derive(Deserialize)]
pub struct RotateForm {
    app: AppId,
    #[serde(default)]
    grace_secs: String,
}

pub async fn rotate<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<RotateForm>,
) -> Result<Response, ConsoleError> {
    session.require_admin()?;
    let grace = match form.grace_secs.trim() {
        "" => Ok(state.secret_grace_secs()),
        text => text.parse::<u64>().map_err(|_| {
            ServiceError::InvalidRequest("the grace period is a number of seconds".into())
        }),
    };
    let service = state.service();
    let rotated = match grace {
        Ok(grace) => apps::rotate_secret(service, form.app, grace).await,
        Err(err) => Err(err),
    };
    let name = service.store.app(form.app).await.map(|app| app.name).unwrap_or_default();
    match rotated {
        Ok((secret, until)) => {
            let until = until.format("%Y-%m-%d %H:%M UTC").to_string();
            let outcome = Outcome::Rotated { name, secret, until };
            page(&state, &session, Some(outcome), StatusCode::OK).await
        }
        Err(err) => refused(&state, &session, err).await,
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    app: AppId,
    #[serde(default)]
    confirm: String,
}

pub async fn delete<S: ConsoleHost>(
    State(state): State<S>,
    Checked { session, form }: Checked<DeleteForm>,
) -> Result<Response, ConsoleError> {
    session.require_admin()?;
    let service = state.service();
    let app = service.store.app(form.app).await.map_err(ServiceError::from)?;
    if form.confirm.trim() != app.name {
        let message = format!("type the app's name, {}, to delete it", app.name);
        return refused(&state, &session, ServiceError::InvalidRequest(message)).await;
    }
    match apps::delete(service, app.id).await {
        Ok(()) => Ok(see_other("./")),
        Err(err) => refused(&state, &session, err).await,
    }
}
