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
