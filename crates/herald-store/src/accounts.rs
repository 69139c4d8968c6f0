//! Types of the account, tag, attribute and device part of the [`Store`](crate::Store).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::account::{AccountId, Device};
use herald_core::LimitBreach;

/// Attribute slots every app has room for; `Limits::attribute_slots` may allow fewer.
pub const ATTRIBUTE_SLOTS: usize = 10;

/// An account with what the store keeps about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: AccountId,
    pub account: String,
    /// Sorted.
    pub tags: Vec<String>,
    /// Value per slot.
    pub attributes: Vec<Option<String>>,
    pub devices: Vec<Device>,
    pub created_at: DateTime<Utc>,
}

/// An account in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub id: AccountId,
    pub account: String,
    pub created_at: DateTime<Utc>,
}

/// What to do with the tags of each account of a [`TagUpdate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagOp {
    Add(Vec<String>),
    Remove(Vec<String>),
    /// Replace all tags.
    Set(Vec<String>),
    Clear,
    /// Each named account gains its own tags (a bulk import: every line its tags); accounts
    /// not in the map are left as they are.
    AddEach(std::collections::HashMap<String, Vec<String>>),
}

impl TagOp {
    /// Every tag the operation names, of every account.
    pub fn tags(&self) -> Vec<&String> {
        match self {
            TagOp::Add(tags) | TagOp::Remove(tags) | TagOp::Set(tags) => tags.iter().collect(),
            TagOp::Clear => Vec::new(),
            TagOp::AddEach(each) => each.values().flatten().collect(),
        }
    }

    /// Whether the operation can give an account a tag it did not have.
    pub fn adds(&self) -> bool {
        matches!(self, TagOp::Add(_) | TagOp::Set(_) | TagOp::AddEach(_))
    }
}

/// One tag change applied to several accounts.
#[derive(Debug, Clone)]
pub struct TagUpdate {
    pub accounts: Vec<String>,
    pub op: TagOp,
    /// `Limits::tags_per_account` of the app.
    pub tags_per_account: u32,
}

/// The tags of one account before and after a [`TagUpdate`], each sorted and without
/// duplicates, so that an index can apply the difference without looking for the old tags.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagChange {
    pub before: Vec<String>,
    pub after: Vec<String>,
}

impl TagChange {
    /// Tags the account gained.
    pub fn added(&self) -> Vec<&str> {
        sorted_difference(&self.after, &self.before)
    }

    /// Tags the account lost.
    pub fn removed(&self) -> Vec<&str> {
        sorted_difference(&self.before, &self.after)
    }
}

/// Members of sorted `a` that are not in sorted `b`.
fn sorted_difference<'a>(a: &'a [String], b: &[String]) -> Vec<&'a str> {
    let mut b = b.iter().peekable();
    a.iter()
        .filter(|x| {
            while b.next_if(|y| y < x).is_some() {}
            b.peek() != Some(x)
        })
        .map(String::as_str)
        .collect()
}

/// Attribute changes of one account: slot → new value, `None` removes.
#[derive(Debug, Clone)]
pub struct AttributeUpdate {
    pub account: String,
    pub changes: Vec<(u8, Option<String>)>,
}

/// Why one account of a batch was not changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountFailure {
    #[error("account does not exist")]
    UnknownAccount,
    #[error(transparent)]
    Limit(#[from] LimitBreach),
}

/// Result of a batch: per changed account its id, name and new state; per refused account why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome<T> {
    pub applied: Vec<(AccountId, String, T)>,
    pub failed: Vec<(String, AccountFailure)>,
}

impl<T> Default for BatchOutcome<T> {
    fn default() -> Self {
        Self { applied: Vec::new(), failed: Vec::new() }
    }
}

/// The (platform, package) pairs of one account's devices, for the audience index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceSet {
    pub account_id: AccountId,
    pub devices: Vec<(String, String)>,
}

/// What registering a device changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceBinding {
    pub account_id: AccountId,
    /// The device's dense per-app key, its bit in report bitmaps.
    pub device_key: u32,
    /// The account was created by this registration.
    pub new_account: bool,
    /// The device sets of every account whose devices changed: the new owner, and the previous
    /// owner when the device moved.
    pub changed: Vec<DeviceSet>,
}

/// A device with its account, as a login needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundDevice {
    pub account: String,
    pub account_id: AccountId,
    pub device_key: u32,
    pub device: Device,
}

/// Registered devices of an app.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceCounts {
    pub total: u64,
    pub by_platform: BTreeMap<String, u64>,
}

/// Receives an app's accounts and devices when the audience index is rebuilt.
pub trait IndexSink {
    /// One account: `tags` are the stored tags, `attributes` the value per slot.
    fn account(&mut self, id: AccountId, tags: &[&str], attributes: &[Option<&str>]);
    /// One device of an account.
    fn device(&mut self, account: AccountId, platform: &str, package: &str);
}

/// Plans a [`TagUpdate`] over the accounts that exist: each account's change that fits
/// `tags_per_account`, and the accounts refused (over the limit, then unknown ones in input
/// order). Backends write `applied` and return the outcome.
pub(crate) fn plan_tag_update(
    update: &TagUpdate,
    found: Vec<AccountRecord>,
) -> BatchOutcome<TagChange> {
    let mut outcome = BatchOutcome::default();
    let mut known = std::collections::HashSet::with_capacity(found.len());
    for record in found {
        known.insert(record.account.clone());
        let after = crate::rows::apply_tag_op(&update.op, &record.account, &record.tags);
        let mut before = record.tags;
        before.sort_unstable();
        before.dedup();
        match LimitBreach::check("tags_per_account", update.tags_per_account, after.len()) {
            Ok(()) => {
                outcome.applied.push((record.id, record.account, TagChange { before, after }))
            }
            Err(breach) => outcome.failed.push((record.account, breach.into())),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for name in &update.accounts {
        if !known.contains(name) && seen.insert(name) {
            outcome.failed.push((name.clone(), AccountFailure::UnknownAccount));
        }
    }
    outcome
}
