//! Per-app settings of each compat layer, managed through the admin API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which compat layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Tencent,
    RongCloud,
}

impl Layer {
    /// The name used in routes, the store and push sources.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Tencent => "tencent",
            Layer::RongCloud => "rongcloud",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "tencent" => Some(Layer::Tencent),
            "rongcloud" => Some(Layer::RongCloud),
            _ => None,
        }
    }
}

/// Rate limits of broadcast pushes made through a layer; each layer counts its own pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayerLimits {
    /// Minimum seconds between two broadcast pushes.
    pub min_interval_secs: u32,
    /// Broadcast pushes per rolling hour; `None` for no hourly cap.
    pub per_hour: Option<u32>,
    /// Broadcast pushes per UTC day.
    pub per_day: u32,
}

/// Tencent Cloud IM push-to-all (`/v4/...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TencentSettings {
    /// The numeric SDKAppID back ends send as `sdkappid`; unique across apps.
    pub sdkappid: u64,
    /// The admin account back ends send as `identifier` (their usersig is made for it).
    pub admin_identifier: String,
    /// Default: pushes more than 1 s apart, 100 a day.
    pub limits: LayerLimits,
}

impl Default for TencentSettings {
    fn default() -> Self {
        Self {
            sdkappid: 0,
            admin_identifier: "administrator".into(),
            limits: LayerLimits { min_interval_secs: 1, per_hour: None, per_day: 100 },
        }
    }
}

/// RongCloud server API (`/push.json`, `/user/...`). Its `App-Key` and secret are the herald
/// app's key and secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RongCloudSettings {
    /// Default: 2 an hour, 3 a day.
    pub limits: LayerLimits,
}

impl Default for RongCloudSettings {
    fn default() -> Self {
        Self { limits: LayerLimits { min_interval_secs: 0, per_hour: Some(2), per_day: 3 } }
    }
}

/// Why a layer's settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Incomplete(&'static str),
}

/// A layer's settings as given, checked and completed with defaults; with the external id
/// that names the app through the layer (Tencent's SDKAppID), if the layer has one.
pub fn checked_settings(
    layer: Layer,
    given: serde_json::Value,
) -> Result<(Option<String>, serde_json::Value), SettingsError> {
    match layer {
        Layer::Tencent => {
            let settings: TencentSettings = serde_json::from_value(given)?;
            if settings.sdkappid == 0 || settings.admin_identifier.is_empty() {
                return Err(SettingsError::Incomplete(
                    "tencent needs sdkappid and admin_identifier",
                ));
            }
            let id = settings.sdkappid.to_string();
            Ok((Some(id), serde_json::to_value(settings)?))
        }
        Layer::RongCloud => {
            let settings: RongCloudSettings = serde_json::from_value(given)?;
            Ok((None, serde_json::to_value(settings)?))
        }
    }
}

/// Stores the checked settings of `layer` for `app`.
pub async fn configure(
    store: &herald_store::DynStore,
    app: herald_core::AppId,
    layer: Layer,
    external_id: Option<&str>,
    settings: &serde_json::Value,
) -> Result<(), crate::ServiceError> {
    Ok(store.set_compat_layer(app, layer.as_str(), external_id, &settings.to_string()).await?)
}
