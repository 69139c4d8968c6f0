//! Types of the vendor part of the [`Store`](crate::Store).

use chrono::{DateTime, Utc};
use herald_core::account::{AccountId, TokenKind};
use herald_core::AppId;

/// An app's credentials for one vendor, sealed by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCredentials {
    pub app: AppId,
    /// `apns` or `fcm`.
    pub vendor: String,
    pub sealed: Vec<u8>,
    /// The credentials with secrets blanked, as JSON, for reading back.
    pub redacted: String,
    pub updated_at: DateTime<Utc>,
}

/// A device that can be reached through a vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceToken {
    /// Position for paging.
    pub cursor: i64,
    pub account_id: AccountId,
    pub device_id: String,
    pub device_key: u32,
    pub platform: String,
    pub kind: TokenKind,
    pub token: String,
}
