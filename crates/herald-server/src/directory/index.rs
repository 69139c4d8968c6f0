//! Every app's audience index, rebuilt from the store at start-up and updated under the app's
//! write lock after each committed write, so the index never runs ahead of or behind the store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use herald_core::account::AccountId;
use herald_core::AppId;
use herald_index::{AppIndex, IndexBuilder};
use herald_store::{DynStore, IndexSink, StoreResult};

/// The directory state of one app held in memory.
pub struct AppDirectory {
    index: RwLock<AppIndex>,
    attribute_names: RwLock<Vec<Option<String>>>,
    /// Held across a store write and the matching index update: two writes of one app can then
    /// never reach the index in another order than they reached the store.
    pub(super) writes: tokio::sync::Mutex<()>,
}

impl AppDirectory {
    /// The index for reading; evaluations take milliseconds, so a std lock is cheapest.
    pub fn index(&self) -> RwLockReadGuard<'_, AppIndex> {
        self.index.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn index_mut(&self) -> RwLockWriteGuard<'_, AppIndex> {
        self.index.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Attribute name per slot.
    pub fn attribute_names(&self) -> Vec<Option<String>> {
        self.attribute_names.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub(super) fn set_attribute_names(&self, names: Vec<Option<String>>) {
        *self.attribute_names.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = names;
    }
}

/// The directories of all apps.
pub struct Directory {
    pub(super) store: DynStore,
    apps: RwLock<HashMap<AppId, Arc<AppDirectory>>>,
    /// Serialises lazy loads so an app's index is built once.
    loading: tokio::sync::Mutex<()>,
}

impl Directory {
    /// Rebuilds the index of every app from the store.
    pub async fn load(store: DynStore) -> StoreResult<Self> {
        let directory =
            Self { store, apps: RwLock::default(), loading: tokio::sync::Mutex::new(()) };
        for app in directory.store.apps().await? {
            directory.app(app.id).await?;
        }
        Ok(directory)
    }

    /// The directory of one app, built from the store on first use.
    pub async fn app(&self, app: AppId) -> StoreResult<Arc<AppDirectory>> {
        if let Some(found) = self.cached(app) {
            return Ok(found);
        }
        let _loading = self.loading.lock().await;
        if let Some(found) = self.cached(app) {
            return Ok(found);
        }
        let started = Instant::now();
        let mut sink = Sink(IndexBuilder::new());
        self.store.load_index(app, &mut sink).await?;
        let index = sink.0.finish();
        let attribute_names = self.store.attribute_names(app).await?;
        tracing::info!(
            app_id = app,
            accounts = index.eligible().len(),
            tags = index.tag_count(),
            memory_bytes = index.memory_bytes(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "audience index built"
        );
        let built = Arc::new(AppDirectory {
            index: RwLock::new(index),
            attribute_names: RwLock::new(attribute_names),
            writes: tokio::sync::Mutex::new(()),
        });
        self.apps.write().unwrap_or_else(|p| p.into_inner()).insert(app, built.clone());
        Ok(built)
    }

    /// The directory of an app if it is loaded already.
    pub fn cached(&self, app: AppId) -> Option<Arc<AppDirectory>> {
        self.apps.read().unwrap_or_else(|p| p.into_inner()).get(&app).cloned()
    }

    /// Drops a deleted app's index.
    pub fn forget(&self, app: AppId) {
        self.apps.write().unwrap_or_else(|p| p.into_inner()).remove(&app);
    }
}

struct Sink(IndexBuilder);

impl IndexSink for Sink {
    fn account(&mut self, id: AccountId, tags: &[&str], attributes: &[Option<&str>]) {
        self.0.account(id).tags(id, tags);
        for (slot, value) in attributes.iter().enumerate() {
            if let (Some(value), Ok(slot)) = (value, u8::try_from(slot)) {
                self.0.attribute(id, slot, value);
            }
        }
    }

    fn device(&mut self, account: AccountId, platform: &str, package: &str) {
        self.0.device(account, platform, package);
    }
}
