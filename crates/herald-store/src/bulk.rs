//! Types of a bulk import ([`Store::bulk_import`](crate::Store::bulk_import)) and the plan both
//! backends write: which lines create an account, and what the others change.

use std::collections::{HashMap, HashSet};

use herald_core::account::{AccountId, Device};
use herald_core::LimitBreach;

use crate::{AccountFailure, AccountRecord, DeviceBinding, SlotChange, StoreError, StoreResult};

/// One account of a bulk import: created if it does not exist, then it gains `tags`, its
/// attribute slots take the values given and its devices are bound to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BulkAccount {
    pub account: String,
    /// Sorted, without duplicates.
    pub tags: Vec<String>,
    /// `(slot, value)`, slots ascending and distinct.
    pub attributes: Vec<(u8, String)>,
    /// Registered in order, as [`Store::register_devices`](crate::Store::register_devices) would.
    pub devices: Vec<Device>,
}

/// What one account of a bulk import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkApplied {
    /// The account is new; it has exactly the line's tags and attributes.
    Created(AccountId),
    /// The account existed: its tags and the attribute slots the line set, before and after.
    Updated { id: AccountId, tags: crate::TagChange, attributes: Vec<SlotChange> },
    /// Nothing of the line was written.
    Refused(AccountFailure),
}

/// What a bulk import did: per account in input order, and the bindings of the devices of the
/// accounts not refused, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BulkImported {
    pub accounts: Vec<BulkApplied>,
    pub devices: Vec<DeviceBinding>,
}

/// The rows an existing account gets: every attribute slot and the tags, as stored.
pub(crate) struct BulkUpdate {
    pub(crate) id: AccountId,
    pub(crate) tags: String,
    pub(crate) attributes: Vec<Option<String>>,
}

/// What a backend writes for a batch.
pub(crate) struct BulkPlan {
    /// Positions of the accounts to create, ascending.
    pub(crate) create: Vec<usize>,
    pub(crate) update: Vec<BulkUpdate>,
    /// Per position; the `Created` ids are filled in once the backend has them.
    pub(crate) outcome: Vec<BulkApplied>,
}

/// Refuses a batch that names an account twice: the caller reports duplicates per line.
pub(crate) fn check_distinct(accounts: &[BulkAccount]) -> StoreResult<()> {
    let mut seen = HashSet::with_capacity(accounts.len());
    match accounts.iter().find(|a| !seen.insert(a.account.as_str())) {
        Some(twice) => {
            Err(StoreError::Invalid(format!("account {} is twice in the batch", twice.account)))
        }
        None => Ok(()),
    }
}

/// Plans a batch over the rows of its accounts that exist (`found`, any order): the others are
/// created; an existing account whose tags would exceed `tags_per_account` is refused whole.
pub(crate) fn plan_bulk(
    accounts: &[BulkAccount],
    found: Vec<AccountRecord>,
    tags_per_account: u32,
) -> BulkPlan {
    let mut found: HashMap<String, AccountRecord> =
        found.into_iter().map(|r| (r.account.clone(), r)).collect();
    let mut plan = BulkPlan {
        create: Vec::with_capacity(accounts.len().saturating_sub(found.len())),
        update: Vec::with_capacity(found.len()),
        outcome: Vec::with_capacity(accounts.len()),
    };
    for (position, line) in accounts.iter().enumerate() {
        let Some(record) = found.remove(&line.account) else {
            plan.create.push(position);
            // The id is the backend's to give.
            plan.outcome.push(BulkApplied::Created(0));
            continue;
        };
        match plan_existing(line, record, tags_per_account) {
            Ok((applied, update)) => {
                plan.outcome.push(applied);
                plan.update.push(update);
            }
            Err(breach) => plan.outcome.push(BulkApplied::Refused(breach.into())),
        }
    }
    plan
}

fn plan_existing(
    line: &BulkAccount,
    record: AccountRecord,
    tags_per_account: u32,
) -> Result<(BulkApplied, BulkUpdate), LimitBreach> {
    let mut before = record.tags;
    before.sort_unstable();
    before.dedup();
    let mut after: Vec<String> = before.iter().chain(&line.tags).cloned().collect();
    after.sort_unstable();
    after.dedup();
    LimitBreach::check("tags_per_account", tags_per_account, after.len())?;
    let mut values = record.attributes;
    let mut changes = Vec::with_capacity(line.attributes.len());
    for (slot, value) in &line.attributes {
        let Some(current) = values.get_mut(usize::from(*slot)) else { continue };
        let before = current.replace(value.clone());
        changes.push(SlotChange { slot: *slot, before, after: Some(value.clone()) });
    }
    let update =
        BulkUpdate { id: record.id, tags: crate::rows::encode_tags(&after), attributes: values };
    let tags = crate::TagChange { before, after };
    Ok((BulkApplied::Updated { id: record.id, tags, attributes: changes }, update))
}

/// The attribute columns of a new account's row, one per slot.
pub(crate) fn slot_values(line: &BulkAccount) -> [Option<&str>; crate::ATTRIBUTE_SLOTS] {
    let mut values = [None; crate::ATTRIBUTE_SLOTS];
    for (slot, value) in &line.attributes {
        if let Some(cell) = values.get_mut(usize::from(*slot)) {
            *cell = Some(value.as_str());
        }
    }
    values
}

/// The devices of the accounts not refused, bound to their account, in input order.
pub(crate) fn devices_of(
    accounts: &[BulkAccount],
    outcome: &[BulkApplied],
) -> Vec<(String, Device)> {
    accounts
        .iter()
        .zip(outcome)
        .filter(|(_, applied)| !matches!(applied, BulkApplied::Refused(_)))
        .flat_map(|(line, _)| line.devices.iter().map(|d| (line.account.clone(), d.clone())))
        .collect()
}
