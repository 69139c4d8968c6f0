//! Every app's audience index, rebuilt from the store at start-up and updated under the app's
//! write lock after each committed write, so the index never runs ahead of or behind the store.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Instant;

use herald_core::account::AccountId;
use herald_core::AppId;
use herald_index::{AppIndex, AttributeKey, IndexBuilder, IndexChange, TagKey};
use herald_store::{DynStore, IndexSink, StoreResult};

use super::devices::QueuedRegistration;
use super::logins::{RecentLogins, RECENT_LOGINS};
use crate::tasks::Tasks;

/// The directory state of one app held in memory.
pub struct AppDirectory {
    index: RwLock<AppIndex>,
    attribute_names: RwLock<Vec<Option<String>>>,
    /// Held across a store write and the matching index update: two writes of one app can then
    /// never reach the index in another order than they reached the store.
    pub(super) writes: tokio::sync::Mutex<()>,
    /// Devices as the store holds them, for logins that change nothing.
    pub(super) logins: RecentLogins,
    /// Registrations waiting to be written together.
    registrations: Mutex<Vec<QueuedRegistration>>,
}

impl AppDirectory {
    /// The index for reading; evaluations take milliseconds, so a std lock is cheapest.
    pub fn index(&self) -> RwLockReadGuard<'_, AppIndex> {
        self.index.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies what a committed write changed to the index: the one place the index is
    /// written after it is built. Call it under [`AppDirectory::writes`], after the store write.
    pub(super) fn apply<'a>(&self, changes: impl IntoIterator<Item = IndexChange<'a>>) {
        self.index.write().unwrap_or_else(|poisoned| poisoned.into_inner()).apply_all(changes);
    }

    /// Merges a batch's bitmaps of new accounts, then applies the changes of the others, under
    /// one hold of the index; as [`AppDirectory::apply`] otherwise.
    pub(super) fn apply_batch<'a>(&self, created: AppIndex, changes: Vec<IndexChange<'a>>) {
        let mut index = self.index.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        index.merge(created);
        index.apply_all(changes);
    }

    /// Attribute name per slot.
    pub fn attribute_names(&self) -> Vec<Option<String>> {
        self.attribute_names.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub(super) fn queue_registration(&self, registration: QueuedRegistration) {
        self.registrations.lock().unwrap_or_else(|p| p.into_inner()).push(registration);
    }

    /// The oldest `at_most` queued registrations.
    pub(super) fn take_registrations(&self, at_most: usize) -> Vec<QueuedRegistration> {
        let mut queued = self.registrations.lock().unwrap_or_else(|p| p.into_inner());
        let taken = queued.len().min(at_most);
        queued.drain(..taken).collect()
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
    /// Where writes are announced to other nodes; unset on a single node.
    pub(super) feed: std::sync::OnceLock<Arc<dyn super::ChangeFeed>>,
    /// Where registration writers and announcements run, so shutdown waits for them.
    pub(super) tasks: Tasks,
}

impl Directory {
    /// Rebuilds the index of every app from the store.
    pub async fn load(store: DynStore) -> StoreResult<Self> {
        let directory = Self {
            store,
            apps: RwLock::default(),
            loading: tokio::sync::Mutex::new(()),
            feed: std::sync::OnceLock::new(),
            tasks: Tasks::default(),
        };
        for app in directory.store.apps().await? {
            directory.app(app.id).await?;
        }
        Ok(directory)
    }

    /// Runs the directory's background work in `tasks` from now on.
    pub fn set_tasks(&mut self, tasks: Tasks) {
        self.tasks = tasks;
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
        let mut sink = Sink::new();
        self.store.load_index(app, &mut sink).await?;
        let index = sink.finish();
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
            logins: RecentLogins::new(RECENT_LOGINS),
            registrations: Mutex::default(),
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

/// Receives the store's rows at start-up and builds the index from them.
struct Sink {
    builder: IndexBuilder,
    /// Tag name to the builder's key. A start-up reads tens of millions of tag rows naming a
    /// few thousand distinct tags; the builder looks each name up with SipHash, a cheap hash here
    /// makes the same lookup several times faster (`tags_by_key` against `tags` in BENCHMARKS.md
    /// "Audience index").
    tags: Interned<TagKey>,
    /// The same for the values of each attribute slot: ten per account.
    attributes: Vec<Interned<AttributeKey>>,
    /// Keys of the current account's tags.
    row: Vec<TagKey>,
}

type Interned<K> = HashMap<Box<str>, K, TagHashing>;

/// The key of `name` in `keys`, made by `make` the first time.
fn interned<K: Copy>(keys: &mut Interned<K>, name: &str, make: impl FnOnce() -> K) -> K {
    if let Some(&key) = keys.get(name) {
        return key;
    }
    let key = make();
    keys.insert(name.into(), key);
    key
}

impl Sink {
    fn new() -> Self {
        Self {
            builder: IndexBuilder::new(),
            tags: Interned::default(),
            attributes: Vec::new(),
            row: Vec::new(),
        }
    }

    fn finish(self) -> AppIndex {
        self.builder.finish()
    }
}

impl IndexSink for Sink {
    fn account(&mut self, id: AccountId, tags: &[&str], attributes: &[Option<&str>]) {
        let builder = &mut self.builder;
        self.row.clear();
        for &tag in tags {
            self.row.push(interned(&mut self.tags, tag, || builder.tag_key(tag)));
        }
        builder.account(id).tags_by_key(id, &self.row);
        if self.attributes.len() < attributes.len() {
            self.attributes.resize_with(attributes.len(), Interned::default);
        }
        for ((slot, value), keys) in attributes.iter().enumerate().zip(&mut self.attributes) {
            if let (Some(value), Ok(slot)) = (value, u8::try_from(slot)) {
                let key = interned(keys, value, || builder.attribute_key(slot, value));
                builder.attribute_by_key(id, key);
            }
        }
    }

    fn device(&mut self, account: AccountId, platform: &str, package: &str) {
        self.builder.device(account, platform, package);
    }
}

/// Builds [`TagHasher`]s from one random seed per process.
#[derive(Clone)]
struct TagHashing(u64);

impl Default for TagHashing {
    fn default() -> Self {
        Self(RandomState::new().hash_one(0_u64))
    }
}

impl BuildHasher for TagHashing {
    type Hasher = TagHasher;

    fn build_hasher(&self) -> TagHasher {
        TagHasher(self.0)
    }
}

/// A word-at-a-time multiply-rotate hash (as rustc's FxHash) with a murmur3 finaliser. Tags are
/// chosen by the app, so the seed is random and the finaliser spreads every bit of the state:
/// an app cannot pick tags that all land in one bucket of a server it does not know the seed of.
struct TagHasher(u64);

impl TagHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for TagHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0_u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}
