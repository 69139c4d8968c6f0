//! Compatibility layers: the server APIs of Tencent Cloud IM push-to-all and RongCloud, so an
//! existing back end switches to herald by changing its base URL. Each layer translates its
//! requests into the same operations as the native API (directory, audiences, pushes, reports)
//! and its answers and error codes back; none of them implements a second version of those.

pub mod rongcloud;
pub mod tencent;

pub use herald_service::layers::{Layer, LayerLimits, RongCloudSettings, TencentSettings};
/// The per-app settings of each layer.
pub mod settings {
    pub use herald_service::layers::*;
}
