//! Apps (tenants) as the operator manages them: create, rotate the secret, delete. The admin
//! API and the console both call these.

use chrono::{DateTime, Duration, Utc};
use herald_core::{App, AppId, Limits, LimitsPatch};
use herald_store::{AppUpdate, NewApp};

use crate::{token, Service, ServiceError};

/// Longest grace period of a rotated secret.
pub const MAX_GRACE_SECS: u64 = 30 * 86_400;

/// An app's name as given, trimmed; 1 to 100 characters without control characters.
pub fn checked_name(name: &str) -> Result<String, ServiceError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control)
    {
        return Err(ServiceError::InvalidRequest(
            "name must be 1 to 100 characters without control characters".into(),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Creates an app; returns it with its secret, shown this once.
pub async fn create(
    service: &Service,
    name: &str,
    limits: &LimitsPatch,
) -> Result<(App, String), ServiceError> {
    let name = checked_name(name)?;
    let limits = Limits::default().apply(limits)?;
    let secret = token::app_secret();
    let new = NewApp { name, key: token::app_key(), secret: secret.clone(), limits };
    let app = service.store.create_app(new).await?;
    tracing::info!(app_id = app.id, "app created");
    Ok((app, secret))
}

/// Gives the app a new secret; the old one is honoured for `grace_secs` more. Returns the new
/// secret and when the old one stops working.
pub async fn rotate_secret(
    service: &Service,
    id: AppId,
    grace_secs: u64,
) -> Result<(String, DateTime<Utc>), ServiceError> {
    if grace_secs > MAX_GRACE_SECS {
        return Err(ServiceError::InvalidRequest(format!(
            "grace_secs must be at most {MAX_GRACE_SECS}"
        )));
    }
    let until = Utc::now() + Duration::seconds(i64::try_from(grace_secs).unwrap_or(i64::MAX));
    let secret = token::app_secret();
    service.store.rotate_secret(id, secret.clone(), until).await?;
    service.app_changed(id).await?;
    tracing::info!(app_id = id, grace_secs, "app secret rotated");
    Ok((secret, until))
}

/// Deletes the app with everything it has, and forgets what this node (and the cluster) kept.
pub async fn delete(service: &Service, id: AppId) -> Result<(), ServiceError> {
    service.store.delete_app(id).await?;
    service.directory.forget(id);
    service.live.forget_app(id);
    service.app_changed(id).await?;
    tracing::info!(app_id = id, "app deleted");
    Ok(())
}

/// Renames the app and / or changes some of its limits; every node forgets what it cached.
pub async fn update(
    service: &Service,
    id: AppId,
    name: Option<&str>,
    limits: Option<&LimitsPatch>,
) -> Result<App, ServiceError> {
    let name = name.map(checked_name).transpose()?;
    let limits = match limits {
        Some(patch) => Some(service.store.app(id).await?.limits.apply(patch)?),
        None => None,
    };
    let app = service.store.update_app(id, AppUpdate { name, limits }).await?;
    service.app_changed(id).await?;
    Ok(app)
}
