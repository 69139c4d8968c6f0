//! Accounts, devices, tags and attributes: the people and installs an app pushes to, and the
//! rules their identifiers and labels follow.

use serde::{Deserialize, Serialize};

use crate::limits::{LimitBreach, Limits};

/// Dense per-app id of an account, the member type of audience bitmaps.
pub type AccountId = u32;

/// Longest account id and device id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest platform, package, token and device detail (version, locale, zone), in bytes.
pub const MAX_FIELD_BYTES: usize = 256;
/// Longest vendor token, in bytes (APNs tokens are 64 hex characters, FCM tokens ~160, Web Push
/// subscriptions ~600).
pub const MAX_TOKEN_BYTES: usize = 4_096;

/// A vendor channel a device can be reached through when it is offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Apns,
    Fcm,
    /// A browser's push subscription (RFC 8030): the token is its `PushSubscription` JSON.
    #[serde(rename = "webpush")]
    WebPush,
}

impl TokenKind {
    /// Every kind, for code that visits each vendor channel.
    pub const ALL: [TokenKind; 3] = [TokenKind::Apns, TokenKind::Fcm, TokenKind::WebPush];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Apns => "apns",
            TokenKind::Fcm => "fcm",
            TokenKind::WebPush => "webpush",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "apns" => Some(TokenKind::Apns),
            "fcm" => Some(TokenKind::Fcm),
            "webpush" => Some(TokenKind::WebPush),
            _ => None,
        }
    }
}

/// A device's vendor push token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VendorToken {
    pub kind: TokenKind,
    pub token: String,
}

/// One client install, bound to one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    pub device_id: String,
    pub platform: String,
    pub package: String,
    pub vendor_token: Option<VendorToken>,
    pub app_version: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
}

/// Why an identifier or label was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FieldError {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} has a control character at byte {at}")]
    ControlCharacter { field: &'static str, at: usize },
    #[error("{field} is {actual} bytes, at most {max}")]
    TooLong { field: &'static str, max: usize, actual: usize },
    #[error("{field} must be lower-case ASCII letters, digits, `_` or `-`")]
    NotLowerCase { field: &'static str },
    #[error(transparent)]
    Limit(#[from] LimitBreach),
}

/// A non-empty string of at most `max` bytes without control characters.
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::Empty { field });
    }
    if let Some(at) = value.char_indices().find(|(_, c)| c.is_control()).map(|(at, _)| at) {
        return Err(FieldError::ControlCharacter { field, at });
    }
    if value.len() > max {
        return Err(FieldError::TooLong { field, max, actual: value.len() });
    }
    Ok(())
}

/// An account id as apps name their users.
pub fn check_account(account: &str) -> Result<(), FieldError> {
    check_text("account", account, MAX_ID_BYTES)
}

/// A tag, within the app's `tag_bytes`.
pub fn check_tag(tag: &str, limits: &Limits) -> Result<(), FieldError> {
    check_text("tag", tag, usize::MAX)?;
    LimitBreach::check("tag_bytes", limits.tag_bytes, tag.len())?;
    Ok(())
}

/// An attribute value, within the app's `attribute_value_bytes`.
pub fn check_attribute_value(value: &str, limits: &Limits) -> Result<(), FieldError> {
    check_text("attribute value", value, usize::MAX)?;
    LimitBreach::check("attribute_value_bytes", limits.attribute_value_bytes, value.len())?;
    Ok(())
}

/// A platform name: `ios`, `android`, `web` or another lower-case name.
pub fn check_platform(platform: &str) -> Result<(), FieldError> {
    check_text("platform", platform, 32)?;
    if !platform.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')) {
        return Err(FieldError::NotLowerCase { field: "platform" });
    }
    Ok(())
}

impl Device {
    /// Checks every field of a device as a client or back end sent it.
    pub fn check(&self) -> Result<(), FieldError> {
        check_text("device_id", &self.device_id, MAX_ID_BYTES)?;
        check_platform(&self.platform)?;
        check_text("package", &self.package, MAX_FIELD_BYTES)?;
        if let Some(token) = &self.vendor_token {
            check_text("vendor_token.token", &token.token, MAX_TOKEN_BYTES)?;
        }
        for (field, value) in [
            ("app_version", &self.app_version),
            ("locale", &self.locale),
            ("time_zone", &self.time_zone),
        ] {
            if let Some(value) = value {
                check_text(field, value, MAX_FIELD_BYTES)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(check_account("user-1").is_ok());
        assert_eq!(check_account(""), Err(FieldError::Empty { field: "account" }));
        assert_eq!(
            check_account("a\u{7}b"),
            Err(FieldError::ControlCharacter { field: "account", at: 1 })
        );
        let long = "x".repeat(MAX_ID_BYTES + 1);
        assert!(matches!(check_account(&long), Err(FieldError::TooLong { .. })));
    }

    #[test]
    fn tag_limit_names_the_limit() {
        let limits = Limits { tag_bytes: 3, ..Limits::default() };
        assert!(check_tag("abc", &limits).is_ok());
        let err = check_tag("abcd", &limits).unwrap_err();
        assert_eq!(err, FieldError::Limit(LimitBreach { limit: "tag_bytes", value: 3, actual: 4 }));
        assert!(matches!(check_tag("a\nb", &limits), Err(FieldError::ControlCharacter { .. })));
    }

    #[test]
    fn token_kinds_read_back_from_their_names() {
        for kind in TokenKind::ALL {
            assert_eq!(TokenKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(TokenKind::parse("web_push"), None);
    }

    #[test]
    fn platforms_are_lower_case_names() {
        assert!(check_platform("ios").is_ok());
        assert!(check_platform("harmony_os-2").is_ok());
        assert!(check_platform("iOS").is_err());
        assert!(check_platform("").is_err());
    }
}
