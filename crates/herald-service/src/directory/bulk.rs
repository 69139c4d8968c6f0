//! Bulk onboarding: accounts with their tags, attributes and devices, one per NDJSON line.
//!
//! A blocking thread parses and checks the lines a batch (the app's `accounts_per_batch`) at a
//! time and builds the batch's bitmaps, numbered by line, while the batch before it is
//! written: each batch is one store transaction, so a crash keeps whole batches only. Once a
//! batch is stored, its new accounts' bitmaps are renumbered with their ids and merged into the
//! app's index, one union per name. A bad line is reported with its number and the reason and
//! nothing of it is written; every other line applies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use herald_core::account::{check_account, check_attribute_value, check_tag, Device, VendorToken};
use herald_core::{App, LimitBreach, Limits};
use herald_index::{AppIndex, IndexBuilder, IndexChange};
use herald_store::{BulkAccount, BulkApplied, BulkImported};
use serde::{Deserialize, Serialize};

use super::attributes::named_slots;
use super::{AppDirectory, Directory, DirectoryChange};
use crate::ServiceError;

/// One line of an import.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkLine {
    pub account: String,
    /// Tags the account gains (tags it has already are kept).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Attribute values by name; the names must be the app's.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Devices bound to the account, as `PUT /v1/devices/{device_id}` binds them (a device
    /// bound to another account moves).
    #[serde(default)]
    pub devices: Vec<BulkDevice>,
}

/// A device of a line: the body of `PUT /v1/devices/{device_id}` with the id beside it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDevice {
    pub device_id: String,
    /// `ios`, `android`, `web` or another lower-case name.
    pub platform: String,
    pub package: String,
    pub vendor_token: Option<VendorToken>,
    pub app_version: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
}

impl From<BulkDevice> for Device {
    fn from(d: BulkDevice) -> Device {
        Device {
            device_id: d.device_id,
            platform: d.platform,
            package: d.package,
            vendor_token: d.vendor_token,
            app_version: d.app_version,
            locale: d.locale,
            time_zone: d.time_zone,
        }
    }
}

/// A line that was not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RejectedLine {
    /// 1-based, counted from the first line of the body (or the `first_line` the caller gave).
    pub line: usize,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct BulkOutcome {
    /// Lines read (blank lines are not counted).
    pub lines: usize,
    /// Accounts created, and accounts that existed (their tags and attributes were updated).
    pub created: usize,
    pub existing: usize,
    /// Devices bound.
    pub devices: usize,
    pub rejected: Vec<RejectedLine>,
}

/// Lines of one batch, parsed and checked, on their way to the store.
struct ParsedBatch {
    /// The file's line number of each account.
    lines: Vec<usize>,
    accounts: Vec<BulkAccount>,
    /// The batch's tags and attribute values, numbered by position in `accounts`.
    bitmaps: AppIndex,
    /// Non-blank lines read, and those refused while reading.
    read: usize,
    rejected: Vec<RejectedLine>,
}

/// Imports NDJSON `text` whose first line is the caller's line `first_line`.
pub async fn bulk_import(
    directory: &Directory,
    app: &App,
    text: Arc<str>,
    first_line: usize,
) -> Result<BulkOutcome, ServiceError> {
    let dir = directory.app(app.id).await?;
    let reader = LineChecker::new(app, &dir.attribute_names());
    let batch_size = usize::try_from(app.limits.accounts_per_batch).unwrap_or(1).max(1);
    // Two batches ahead at most: parsing runs beside the writes, not ahead of them.
    let (sender, mut batches) = tokio::sync::mpsc::channel(2);
    let parser = tokio::task::spawn_blocking(move || {
        reader.parse(&text, first_line, batch_size, |batch| sender.blocking_send(batch).is_ok())
    });
    let mut outcome = BulkOutcome::default();
    while let Some(batch) = batches.recv().await {
        if let Err(err) = apply_batch(directory, &dir, app, batch, &mut outcome).await {
            // Dropping the receiver stops the parser.
            drop(batches);
            let _ = parser.await;
            return Err(err);
        }
    }
    parser.await.map_err(|err| ServiceError::Internal(format!("the import's parser: {err}")))?;
    outcome.rejected.sort_by_key(|r| r.line);
    Ok(outcome)
}

/// Parses and checks lines: what a line needs to be written, found before anything is.
struct LineChecker {
    limits: Limits,
    /// Slot of each attribute name of the app.
    slots: HashMap<String, u8>,
}

impl LineChecker {
    fn new(app: &App, names: &[Option<String>]) -> Self {
        let slots = named_slots(names, app).into_iter().map(|(slot, name)| (name, slot)).collect();
        Self { limits: app.limits, slots }
    }

    /// Hands `batch` lines at a time to `deliver` until the text ends or `deliver` says stop.
    fn parse(
        &self,
        text: &str,
        first_line: usize,
        batch: usize,
        mut deliver: impl FnMut(ParsedBatch) -> bool,
    ) {
        let mut seen = Seen::default();
        let mut current = ParsedBatch::new(batch);
        for (n, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let line = first_line.saturating_add(n);
            current.read += 1;
            let checked = serde_json::from_str::<BulkLine>(raw)
                .map_err(|err| format!("invalid JSON: {err}"))
                .and_then(|parsed| self.check(parsed, &mut seen));
            match checked {
                Ok(account) => current.push(line, account),
                Err(reason) => current.rejected.push(RejectedLine { line, reason }),
            }
            if current.read == batch {
                let full = std::mem::replace(&mut current, ParsedBatch::new(batch));
                if !deliver(full.with_bitmaps()) {
                    return;
                }
            }
        }
        if current.read > 0 {
            deliver(current.with_bitmaps());
        }
    }

    /// The line as the store writes it, or why it cannot be written.
    fn check(&self, line: BulkLine, seen: &mut Seen) -> Result<BulkAccount, String> {
        check_account(&line.account).map_err(|err| format!("account: {err}"))?;
        let mut tags = line.tags;
        tags.sort_unstable();
        tags.dedup();
        let most = usize::try_from(self.limits.tags_per_account).unwrap_or(usize::MAX);
        if tags.len() > most {
            return Err(format!("{} tags, at most {most} (tags_per_account)", tags.len()));
        }
        for tag in &tags {
            check_tag(tag, &self.limits).map_err(|err| format!("tag {tag:?}: {err}"))?;
        }
        let mut attributes = Vec::with_capacity(line.attributes.len());
        for (name, value) in line.attributes {
            let Some(&slot) = self.slots.get(&name) else {
                return Err(format!(
                    "unknown attribute `{name}` (name it first: PUT /v1/attributes)"
                ));
            };
            check_attribute_value(&value, &self.limits)
                .map_err(|err| format!("attribute {name}: {err}"))?;
            attributes.push((slot, value));
        }
        attributes.sort_unstable_by_key(|(slot, _)| *slot);
        let mut devices = Vec::with_capacity(line.devices.len());
        for (i, device) in line.devices.into_iter().enumerate() {
            let device = Device::from(device);
            device.check().map_err(|err| format!("devices[{i}]: {err}"))?;
            let device = crate::vendors::canonical_device(&device)
                .map_err(|err| format!("devices[{i}]: {err}"))?
                .into_owned();
            devices.push(device);
        }
        seen.claim(&line.account, &devices)?;
        Ok(BulkAccount { account: line.account, tags, attributes, devices })
    }
}

/// Accounts and devices of the lines accepted so far: a later line naming one again is refused,
/// so that one call never depends on the order its batches are written in.
#[derive(Default)]
struct Seen {
    accounts: HashSet<String>,
    devices: HashSet<String>,
}

impl Seen {
    fn claim(&mut self, account: &str, devices: &[Device]) -> Result<(), String> {
        if self.accounts.contains(account) {
            return Err(format!("account {account} is on an earlier line of this import"));
        }
        let mut ids = HashSet::with_capacity(devices.len());
        for device in devices {
            let id = device.device_id.as_str();
            if self.devices.contains(id) || !ids.insert(id) {
                return Err(format!("device {id} is on an earlier line of this import"));
            }
        }
        self.accounts.insert(account.to_owned());
        self.devices.extend(ids.into_iter().map(str::to_owned));
        Ok(())
    }
}

impl ParsedBatch {
    fn new(capacity: usize) -> Self {
        Self {
            lines: Vec::with_capacity(capacity),
            accounts: Vec::with_capacity(capacity),
            bitmaps: AppIndex::default(),
            read: 0,
            rejected: Vec::new(),
        }
    }

    fn push(&mut self, line: usize, account: BulkAccount) {
        self.lines.push(line);
        self.accounts.push(account);
    }

    /// The batch with its tags and attribute values as bitmaps numbered by position, built
    /// here rather than under the app's write lock.
    fn with_bitmaps(mut self) -> Self {
        let mut builder = IndexBuilder::new();
        for (position, account) in (0_u32..).zip(&self.accounts) {
            builder.account(position).tags(position, &account.tags);
            for (slot, value) in &account.attributes {
                builder.attribute(position, *slot, value);
            }
        }
        self.bitmaps = builder.finish();
        self
    }
}

/// Writes one batch and applies it to the index, under the app's write lock.
async fn apply_batch(
    directory: &Directory,
    dir: &AppDirectory,
    app: &App,
    mut batch: ParsedBatch,
    outcome: &mut BulkOutcome,
) -> Result<(), ServiceError> {
    outcome.lines += batch.read;
    outcome.rejected.append(&mut batch.rejected);
    if batch.accounts.is_empty() {
        return Ok(());
    }
    let _write = dir.writes.lock().await;
    let kept = within_distinct_tags(dir, app, &mut batch, outcome);
    let started = std::time::Instant::now();
    let imported =
        directory.store.bulk_import(app.id, &batch.accounts, app.limits.tags_per_account).await?;
    crate::dispatch::store_time("bulk_import", started);
    let changed = apply_to_index(dir, &batch, &kept, &imported, outcome);
    for account in &batch.accounts {
        for device in &account.devices {
            dir.logins.forget(&device.device_id);
        }
    }
    if !changed.is_empty() {
        directory.announce(DirectoryChange::Accounts { app: app.id, accounts: changed }).await?;
    }
    Ok(())
}

/// Refuses the lines whose new tags would take the app past `distinct_tags`; returns, for each
/// account left in the batch, its position in the batch's bitmaps.
fn within_distinct_tags(
    dir: &AppDirectory,
    app: &App,
    batch: &mut ParsedBatch,
    outcome: &mut BulkOutcome,
) -> Vec<u32> {
    let index = dir.index();
    let limit = usize::try_from(app.limits.distinct_tags).unwrap_or(usize::MAX);
    let fresh = batch.bitmaps.tag_names().filter(|tag| !index.has_tag(tag)).count();
    let all: Vec<u32> = (0..).take(batch.accounts.len()).collect();
    if index.tag_count() + fresh <= limit {
        return all;
    }
    // Line by line, in order: the lines that fit go in, the others are refused.
    let mut added: HashSet<String> = HashSet::new();
    let mut kept = Vec::with_capacity(batch.accounts.len());
    let mut accounts = Vec::with_capacity(batch.accounts.len());
    let mut lines = Vec::with_capacity(batch.accounts.len());
    let taken =
        std::mem::take(&mut batch.accounts).into_iter().zip(std::mem::take(&mut batch.lines));
    for ((account, line), position) in taken.zip(all) {
        let new: HashSet<&String> =
            account.tags.iter().filter(|t| !index.has_tag(t) && !added.contains(*t)).collect();
        let actual = index.tag_count() + added.len() + new.len();
        if let Err(breach) = LimitBreach::check("distinct_tags", app.limits.distinct_tags, actual) {
            outcome.rejected.push(RejectedLine { line, reason: breach.to_string() });
            continue;
        }
        added.extend(new.into_iter().cloned());
        kept.push(position);
        accounts.push(account);
        lines.push(line);
    }
    batch.accounts = accounts;
    batch.lines = lines;
    kept
}

/// Merges the new accounts' bitmaps, applies what changed for the existing ones and the
/// devices, and counts; returns the accounts changed.
fn apply_to_index(
    dir: &AppDirectory,
    batch: &ParsedBatch,
    kept: &[u32],
    imported: &BulkImported,
    outcome: &mut BulkOutcome,
) -> Vec<u32> {
    let mut ids: Vec<Option<u32>> =
        vec![None; usize::try_from(batch.bitmaps.eligible().len()).unwrap_or_default()];
    let mut changes = Vec::new();
    let mut changed = Vec::with_capacity(imported.accounts.len());
    for ((applied, &position), &line) in imported.accounts.iter().zip(kept).zip(&batch.lines) {
        match applied {
            BulkApplied::Created(id) => {
                outcome.created += 1;
                changed.push(*id);
                if let Some(slot) = ids.get_mut(position as usize) {
                    *slot = Some(*id);
                }
            }
            BulkApplied::Updated { id, tags, attributes } => {
                outcome.existing += 1;
                changed.push(*id);
                changes.push(IndexChange::TagsAdded { account: *id, tags: tags.added() });
                for slot in attributes {
                    changes.push(IndexChange::AttributeChanged {
                        account: *id,
                        slot: slot.slot,
                        before: slot.before.as_deref(),
                        after: slot.after.as_deref(),
                    });
                }
            }
            BulkApplied::Refused(failure) => {
                outcome.rejected.push(RejectedLine { line, reason: failure.to_string() })
            }
        }
    }
    outcome.devices += imported.devices.len();
    for binding in &imported.devices {
        for set in &binding.changed {
            let devices = &set.devices;
            changes.push(IndexChange::DevicesReplaced { account: set.account_id, devices });
            changed.push(set.account_id);
        }
    }
    // Ids are given in line order, so the renumbering is increasing: bitmaps are appended.
    let created = batch.bitmaps.remap(|position| ids.get(position as usize).copied().flatten());
    dir.apply_batch(created, changes);
    changed.sort_unstable();
    changed.dedup();
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker() -> LineChecker {
        let app = App {
            id: 1,
            name: "t".into(),
            key: "k".into(),
            secret: "s".into(),
            previous_secret: None,
            previous_secret_expires_at: None,
            limits: Limits::default(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        let mut names = vec![None; 10];
        names[3] = Some("city".to_owned());
        LineChecker::new(&app, &names)
    }

    fn parse_all(text: &str, first: usize, batch: usize) -> Vec<ParsedBatch> {
        let mut batches = Vec::new();
        checker().parse(text, first, batch, |b| {
            batches.push(b);
            true
        });
        batches
    }

    #[test]
    fn lines_are_numbered_batched_and_bad_ones_reported() {
        let text = "{\"account\":\"a\",\"tags\":[\"vip\",\"new\",\"vip\"]}\n\n{\"account\":\n\
                    {\"account\":\"b\",\"age\":3}\n{\"account\":\"c\",\"attributes\":{\"city\":\"sz\"}}\n\
                    {\"account\":\"a\"}\n";
        let batches = parse_all(text, 101, 2);
        let numbers: Vec<Vec<usize>> = batches.iter().map(|b| b.lines.clone()).collect();
        assert_eq!(numbers, [vec![101], vec![105], vec![]]);
        assert_eq!(batches.iter().map(|b| b.read).sum::<usize>(), 5, "blank lines do not count");
        assert_eq!(batches[0].accounts[0].tags, ["new", "vip"], "sorted, once each");
        assert_eq!(batches[1].accounts[0].attributes, [(3_u8, "sz".to_owned())]);
        let rejected: Vec<&RejectedLine> = batches.iter().flat_map(|b| &b.rejected).collect();
        let bad: Vec<usize> = rejected.iter().map(|r| r.line).collect();
        assert_eq!(bad, [103, 104, 106], "{rejected:?}");
        assert!(rejected[1].reason.contains("unknown field `age`"), "{rejected:?}");
        assert!(rejected[2].reason.contains("earlier line"), "{rejected:?}");
        let vip = batches[0].bitmaps.tag_members("vip").map(|b| b.iter().collect::<Vec<_>>());
        assert_eq!(vip, Some(vec![0]), "bitmaps are numbered by position in the batch");
    }

    #[test]
    fn a_line_is_checked_before_anything_is_written() {
        let checker = checker();
        let mut seen = Seen::default();
        let line = |text: &str| serde_json::from_str::<BulkLine>(text).unwrap();
        let mut check = |text: &str| checker.check(line(text), &mut seen);
        let device = r#"{"device_id":"d1","platform":"ios","package":"com.x",
            "vendor_token":{"kind":"apns","token":"ab12"}}"#;
        let ok = check(&format!(r#"{{"account":"u1","devices":[{device}]}}"#)).unwrap();
        assert_eq!((ok.devices.len(), ok.devices[0].platform.as_str()), (1, "ios"));
        let again = check(r#"{"account":"u1"}"#).unwrap_err();
        assert!(again.contains("account u1 is on an earlier line"), "{again}");
        let moved = check(&format!(r#"{{"account":"u2","devices":[{device}]}}"#)).unwrap_err();
        assert!(moved.contains("device d1 is on an earlier line"), "{moved}");
        let platform = check(
            r#"{"account":"u3","devices":[{"device_id":"d3","platform":"iOS","package":"p"}]}"#,
        )
        .unwrap_err();
        assert!(platform.starts_with("devices[0]: platform"), "{platform}");
        let twice = r#"{"device_id":"d4","platform":"ios","package":"p"}"#;
        let twice = check(&format!(r#"{{"account":"u4","devices":[{twice},{twice}]}}"#));
        assert!(twice.is_err_and(|r| r.contains("device d4")));
        let unknown = check(r#"{"account":"u5","attributes":{"planet":"x"}}"#).unwrap_err();
        assert!(unknown.contains("unknown attribute `planet`"));
        let long = format!(r#"{{"account":"u6","tags":["{}"]}}"#, "t".repeat(1000));
        assert!(check(&long).is_err_and(|r| r.starts_with("tag")));
        assert!(check(r#"{"account":""}"#).is_err());
        assert!(check(r#"{"account":"u5"}"#).is_ok(), "a refused line claims nothing");
    }
}
