//! Attribute names (the app's slots) and attribute values of accounts.

use std::collections::BTreeMap;

use herald_core::account::{check_attribute_value, check_text};
use herald_core::App;
use herald_index::IndexChange;
use herald_store::AttributeUpdate;

use super::tags::{unknown, BatchReport};
use super::{at, check_batch, Directory, DirectoryChange};
use crate::ServiceError;

/// Longest attribute name, in bytes.
const NAME_BYTES: usize = 50;

/// One change to an account's attributes, by attribute name.
#[derive(Debug, Clone)]
pub enum AttributeChange {
    Set { name: String, value: String },
    Remove { name: String },
}

/// Slot → name, for the slots the app may use.
pub async fn attribute_names(
    directory: &Directory,
    app: &App,
) -> Result<BTreeMap<u8, String>, ServiceError> {
    let dir = directory.app(app.id).await?;
    Ok(named_slots(&dir.attribute_names(), app))
}

pub(super) fn named_slots(names: &[Option<String>], app: &App) -> BTreeMap<u8, String> {
    names
        .iter()
        .enumerate()
        .take(usize::try_from(app.limits.attribute_slots).unwrap_or(usize::MAX))
        .filter_map(|(slot, name)| Some((u8::try_from(slot).ok()?, name.clone()?)))
        .collect()
}

/// Names (`Some`) or unnames (`None`) slots; a slot that changes name loses its values.
pub async fn set_attribute_names(
    directory: &Directory,
    app: &App,
    changes: Vec<(u8, Option<String>)>,
) -> Result<BTreeMap<u8, String>, ServiceError> {
    for (slot, name) in &changes {
        if u32::from(*slot) >= app.limits.attribute_slots {
            return Err(ServiceError::LimitExceeded(herald_core::LimitBreach {
                limit: "attribute_slots",
                value: u64::from(app.limits.attribute_slots),
                actual: u64::from(*slot) + 1,
            }));
        }
        if let Some(name) = name {
            check_text("attribute name", name, NAME_BYTES)
                .map_err(|err| at(format!("names.{slot}"), err))?;
        }
    }
    let dir = directory.app(app.id).await?;
    let _write = dir.writes.lock().await;
    let before = dir.attribute_names();
    let after = directory.store.set_attribute_names(app.id, &changes).await?;
    dir.apply(renamed_slots(&before, &after));
    dir.set_attribute_names(after.clone());
    directory.announce(DirectoryChange::App { app: app.id }).await?;
    Ok(named_slots(&after, app))
}

/// Clears the values of every slot whose name changed between `before` and `after`.
pub(super) fn renamed_slots<'a>(
    before: &'a [Option<String>],
    after: &'a [Option<String>],
) -> impl Iterator<Item = IndexChange<'static>> + 'a {
    before.iter().zip(after).enumerate().filter(|(_, (old, new))| old != new).map(|(slot, _)| {
        IndexChange::AttributeSlotCleared { slot: u8::try_from(slot).unwrap_or_default() }
    })
}

/// Sets or removes attribute values, per account; unknown names refuse the whole call.
pub async fn update_attributes(
    directory: &Directory,
    app: &App,
    updates: Vec<(String, Vec<AttributeChange>)>,
) -> Result<BatchReport, ServiceError> {
    let accounts: Vec<String> = updates.iter().map(|(a, _)| a.clone()).collect();
    check_batch(&accounts, &app.limits)?;
    let dir = directory.app(app.id).await?;
    let names = dir.attribute_names();
    let slot_of = |name: &str| -> Result<u8, ServiceError> {
        names
            .iter()
            .take(usize::try_from(app.limits.attribute_slots).unwrap_or(usize::MAX))
            .position(|n| n.as_deref() == Some(name))
            .and_then(|slot| u8::try_from(slot).ok())
            .ok_or_else(|| ServiceError::InvalidRequest(format!("unknown attribute `{name}`")))
    };
    let mut resolved = Vec::with_capacity(updates.len());
    for (i, (account, changes)) in updates.into_iter().enumerate() {
        let mut slots = Vec::with_capacity(changes.len());
        for change in changes {
            slots.push(match change {
                AttributeChange::Set { name, value } => {
                    check_attribute_value(&value, &app.limits)
                        .map_err(|err| at(format!("accounts[{i}].attributes.{name}"), err))?;
                    (slot_of(&name)?, Some(value))
                }
                AttributeChange::Remove { name } => (slot_of(&name)?, None),
            });
        }
        resolved.push(AttributeUpdate { account, changes: slots });
    }
    let _write = dir.writes.lock().await;
    let outcome = directory.store.update_attributes(app.id, resolved).await?;
    dir.apply(outcome.applied.iter().flat_map(|(account, _, changes)| {
        changes.iter().map(|change| IndexChange::AttributeChanged {
            account: *account,
            slot: change.slot,
            before: change.before.as_deref(),
            after: change.after.as_deref(),
        })
    }));
    let changed: Vec<_> = outcome.applied.iter().map(|(id, _, _)| *id).collect();
    if !changed.is_empty() {
        directory.announce(DirectoryChange::Accounts { app: app.id, accounts: changed }).await?;
    }
    Ok(BatchReport::from_outcome(&outcome))
}

/// Attributes by name of each named account that exists; the others are returned as unknown.
pub async fn get_attributes(
    directory: &Directory,
    app: &App,
    accounts: &[String],
) -> Result<(BTreeMap<String, BTreeMap<String, String>>, Vec<String>), ServiceError> {
    check_batch(accounts, &app.limits)?;
    let dir = directory.app(app.id).await?;
    let names = dir.attribute_names();
    let records = directory.store.accounts_by_name(app.id, accounts).await?;
    let found: BTreeMap<String, BTreeMap<String, String>> =
        records.into_iter().map(|r| (r.account, named_attributes(&names, &r.attributes))).collect();
    let unknown = unknown(accounts, |a| found.contains_key(a));
    Ok((found, unknown))
}

/// An account's values keyed by attribute name.
pub fn named_attributes(
    names: &[Option<String>],
    values: &[Option<String>],
) -> BTreeMap<String, String> {
    names
        .iter()
        .zip(values)
        .filter_map(|(name, value)| Some((name.clone()?, value.clone()?)))
        .collect()
}
