//! Directory writes as the other nodes of a cluster learn of them.
//!
//! A write is committed to the store and applied to this node's index under the app's write
//! lock, as on a single node; then it is announced, before the API answers. An announcement
//! names what changed (accounts, the app, a device), not how: every node, this one included,
//! reads those accounts back from the store into its index. Two nodes writing one account at
//! once may announce in either order, and each node still ends with what the store holds,
//! because the last read back of an account comes after its last commit.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use herald_core::account::AccountId;
use herald_core::AppId;
use herald_index::IndexChange;
use herald_store::{IndexSink, StoreError, StoreResult};

use super::{AppDirectory, Directory};
use crate::ServiceError;

/// What a directory write changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryChange {
    /// Tags, attributes, devices or existence of these accounts.
    Accounts { app: AppId, accounts: Vec<AccountId> },
    /// The app's attribute names (and with them every account's values of a renamed slot).
    App { app: AppId },
    /// A device was unbound: a login remembered for it no longer holds.
    Device { app: AppId, device_id: String },
}

/// Where directory changes are announced. One node alone announces to no one.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Returns once every node can learn of the change.
    async fn announce(&self, change: DirectoryChange) -> Result<(), String>;
}

impl Directory {
    /// Sends directory changes to `feed` from now on.
    pub fn set_feed(&self, feed: Arc<dyn ChangeFeed>) {
        if self.feed.set(feed).is_err() {
            tracing::warn!("the directory's change feed was set twice; the first stays");
        }
    }

    /// Announces a committed change; the write's answer waits for it, so that a push accepted
    /// after the answer, on any node, sees the change.
    pub(super) async fn announce(&self, change: DirectoryChange) -> Result<(), ServiceError> {
        let Some(feed) = self.feed.get() else { return Ok(()) };
        feed.announce(change).await.map_err(|err| {
            tracing::error!(%err, "a directory change is stored but could not be announced");
            ServiceError::Unavailable(
                "the change is stored, but the other nodes could not be told yet; retry".into(),
            )
        })
    }

    /// Reads accounts back from the store into the index (another node changed them).
    pub async fn reread_accounts(&self, app: AppId, accounts: &[AccountId]) -> StoreResult<()> {
        // Loaded (or waited for, if a load is under way) rather than skipped: a load that read
        // the store before this change was committed would otherwise miss it for good.
        let dir = match self.app(app).await {
            Ok(dir) => dir,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(err) => return Err(err),
        };
        let _write = dir.writes.lock().await;
        let mut read = ReadBack::default();
        self.store.load_index_of(app, accounts, &mut read).await?;
        read.apply(&dir, accounts);
        Ok(())
    }

    /// Reads the app's attribute names again; a slot whose name changed loses its values.
    pub async fn reread_app(&self, app: AppId) -> StoreResult<()> {
        let dir = match self.app(app).await {
            Ok(dir) => dir,
            Err(StoreError::NotFound { .. }) => {
                self.forget(app);
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        let _write = dir.writes.lock().await;
        let names = match self.store.attribute_names(app).await {
            Ok(names) => names,
            Err(StoreError::NotFound { .. }) => {
                self.forget(app);
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        let before = dir.attribute_names();
        dir.apply(super::attributes::renamed_slots(&before, &names));
        dir.set_attribute_names(names);
        Ok(())
    }
}

/// Accounts as the store holds them now.
#[derive(Default)]
struct ReadBack {
    accounts: Vec<(AccountId, Vec<String>, Vec<Option<String>>)>,
    devices: HashMap<AccountId, Vec<(String, String)>>,
}

impl IndexSink for ReadBack {
    fn account(&mut self, id: AccountId, tags: &[&str], attributes: &[Option<&str>]) {
        let tags = tags.iter().map(|t| (*t).to_owned()).collect();
        let attributes = attributes.iter().map(|a| a.map(str::to_owned)).collect();
        self.accounts.push((id, tags, attributes));
    }

    fn device(&mut self, account: AccountId, platform: &str, package: &str) {
        self.devices.entry(account).or_default().push((platform.to_owned(), package.to_owned()));
    }
}

impl ReadBack {
    /// Makes the index hold exactly what was read for `asked`; accounts not read are gone.
    fn apply(self, dir: &AppDirectory, asked: &[AccountId]) {
        let mut found = herald_index::RoaringBitmap::new();
        let mut changes = Vec::new();
        for (account, tags, attributes) in &self.accounts {
            let account = *account;
            found.insert(account);
            changes.push(IndexChange::AccountAdded { account });
            let tags = tags.iter().map(String::as_str).collect();
            changes.push(IndexChange::TagsReplaced { account, tags });
            for (slot, value) in attributes.iter().enumerate() {
                let slot = u8::try_from(slot).unwrap_or_default();
                changes.push(IndexChange::AttributeSet { account, slot, value: value.as_deref() });
            }
            let devices = self.devices.get(&account).map_or(&[][..], Vec::as_slice);
            changes.push(IndexChange::DevicesReplaced { account, devices });
        }
        let gone = asked.iter().filter(|id| !found.contains(**id));
        changes.extend(gone.map(|&account| IndexChange::AccountRemoved { account }));
        dir.apply(changes);
    }
}
