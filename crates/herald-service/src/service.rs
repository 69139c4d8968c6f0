//! The service's parts, shared by every API.

use std::sync::Arc;

use herald_core::AppId;
use herald_store::DynStore;

use crate::cluster::Cluster;
use crate::directory::{ChangeFeed, Directory, DirectoryChange};
use crate::dispatch::{AppCache, Dispatcher, LiveInbox, Receipts};
use crate::limits::RequestLimiter;
use crate::recent_apps::RecentApps;
use crate::vendors::Vendors;
use crate::webhooks::Webhooks;
use crate::ServiceError;

/// Everything an operation needs; built once at start-up.
pub struct Service {
    pub store: DynStore,
    pub directory: Arc<Directory>,
    pub dispatcher: Dispatcher,
    pub receipts: Receipts,
    pub webhooks: Webhooks,
    pub vendors: Vendors,
    pub requests: Arc<RequestLimiter>,
    /// This node's part of a cluster; `None` on a single node.
    pub cluster: Option<Arc<Cluster>>,
    pub app_caches: AppCaches,
    /// The offline inbox in memory.
    pub live: Arc<LiveInbox>,
}

/// Every cache of apps this node keeps (hellos by key, logins and inbox reads by id).
#[derive(Clone)]
pub struct AppCaches {
    pub by_key: Arc<RecentApps<String>>,
    pub by_id: Arc<AppCache>,
}

impl AppCaches {
    pub fn forget(&self, app: AppId) {
        self.by_key.forget_app(app);
        self.by_id.forget(app);
    }
}

impl Service {
    /// Sets an app's credentials of one vendor; every node installs them before the answer.
    pub async fn set_vendor_credentials(
        &self,
        app: &herald_core::App,
        vendor: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ServiceError> {
        let shown = self.vendors.set(&self.store, app, vendor, body).await?;
        self.app_changed(app.id).await?;
        Ok(shown)
    }

    /// Deletes an app's credentials of one vendor, on every node.
    pub async fn delete_vendor_credentials(
        &self,
        app: &herald_core::App,
        vendor: &str,
    ) -> Result<(), ServiceError> {
        self.vendors.delete(&self.store, app, vendor).await?;
        self.app_changed(app.id).await
    }

    /// An app's secret, limits or existence changed: this node forgets what it cached of it
    /// at once, and in a cluster every other node does too, before the call is answered.
    pub async fn app_changed(&self, app: AppId) -> Result<(), ServiceError> {
        self.app_caches.forget(app);
        if let Some(cluster) = &self.cluster {
            cluster.announce(DirectoryChange::App { app }).await.map_err(|err| {
                ServiceError::Unavailable(format!(
                    "the change is stored, but the other nodes could not be told yet ({err}); retry"
                ))
            })?;
        }
        Ok(())
    }
}
