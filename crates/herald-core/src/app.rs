//! An app is a tenant: its credentials, its limits and its timestamps.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::limits::Limits;
use crate::redact::REDACTED;

/// Numeric id of an app, unique in one herald deployment.
pub type AppId = i64;

/// A tenant of herald, as the store keeps it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub id: AppId,
    pub name: String,
    /// Public identifier sent with every signed request.
    pub key: String,
    /// HMAC key of signed requests; never shown again after create / rotate.
    pub secret: String,
    /// The secret before the last rotation, honoured until `previous_secret_expires_at` so that
    /// back ends can roll the new secret out without downtime.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub limits: Limits,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for App {
    // The secrets sign requests: they stay out of logs and error output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("key", &self.key)
            .field("secret", &REDACTED)
            .field("previous_secret", &self.previous_secret.as_ref().map(|_| REDACTED))
            .field("previous_secret_expires_at", &self.previous_secret_expires_at)
            .field("limits", &self.limits)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl App {
    /// The secrets a signature may be made with at `now`: the current one, and the previous one
    /// while its grace period lasts.
    pub fn valid_secrets(&self, now: DateTime<Utc>) -> impl Iterator<Item = &str> {
        let previous = match (&self.previous_secret, self.previous_secret_expires_at) {
            (Some(secret), Some(until)) if now < until => Some(secret.as_str()),
            _ => None,
        };
        std::iter::once(self.secret.as_str()).chain(previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn app(previous_until: Option<DateTime<Utc>>) -> App {
        let now = Utc::now();
        App {
            id: 1,
            name: "demo".into(),
            key: "k".into(),
            secret: "new".into(),
            previous_secret: previous_until.map(|_| "old".into()),
            previous_secret_expires_at: previous_until,
            limits: Limits::default(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn previous_secret_is_valid_only_during_grace() {
        let now = Utc::now();
        let within = app(Some(now + Duration::seconds(10)));
        assert_eq!(within.valid_secrets(now).collect::<Vec<_>>(), ["new", "old"]);
        let after = app(Some(now - Duration::seconds(1)));
        assert_eq!(after.valid_secrets(now).collect::<Vec<_>>(), ["new"]);
        assert_eq!(app(None).valid_secrets(now).collect::<Vec<_>>(), ["new"]);
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let mut app = app(Some(Utc::now()));
        app.secret = "hs_current_secret_value".into();
        app.previous_secret = Some("hs_previous_secret_value".into());
        let shown = format!("{app:?}");
        assert!(shown.contains("demo") && shown.contains(REDACTED), "{shown}");
        assert!(!shown.contains("secret_value"), "{shown}");
    }
}
