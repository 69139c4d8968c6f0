//! Tags of accounts, one account or a batch at a time.

use std::collections::{BTreeMap, HashSet};

use herald_core::account::check_tag;
use herald_core::{App, LimitBreach};
use herald_index::IndexChange;
use herald_store::{AccountFailure, BatchOutcome, TagOp, TagUpdate};
use serde::Serialize;

use super::{at, check_batch, Directory, DirectoryChange};
use crate::ServiceError;

/// One account of a batch that was left unchanged, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailedAccount {
    pub account: String,
    /// `unknown_account` or `limit_exceeded`.
    pub code: &'static str,
    pub message: String,
    /// For `limit_exceeded`: the limit and its value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
}

/// What a batch changed: every account not listed in `failed` was updated.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchReport {
    pub updated: usize,
    pub failed: Vec<FailedAccount>,
}

impl BatchReport {
    pub(super) fn from_outcome<T>(outcome: &BatchOutcome<T>) -> Self {
        let failed = outcome
            .failed
            .iter()
            .map(|(account, failure)| {
                let (code, limit, value) = match failure {
                    AccountFailure::UnknownAccount => ("unknown_account", None, None),
                    AccountFailure::Limit(breach) => {
                        ("limit_exceeded", Some(breach.limit), Some(breach.value))
                    }
                };
                FailedAccount {
                    account: account.clone(),
                    code,
                    message: failure.to_string(),
                    limit,
                    value,
                }
            })
            .collect();
        Self { updated: outcome.applied.len(), failed }
    }
}

/// Applies `op` to the tags of each account; see [`BatchReport`] for partial results.
pub async fn update_tags(
    directory: &Directory,
    app: &App,
    accounts: Vec<String>,
    op: TagOp,
) -> Result<BatchReport, ServiceError> {
    check_batch(&accounts, &app.limits)?;
    let tags = op.tags();
    if tags.is_empty() && matches!(op, TagOp::Add(_) | TagOp::Remove(_)) {
        return Err(ServiceError::InvalidRequest("tags must not be empty".into()));
    }
    for (i, tag) in tags.iter().enumerate() {
        check_tag(tag, &app.limits).map_err(|err| at(format!("tags[{i}]"), err))?;
    }
    let dir = directory.app(app.id).await?;
    let _write = dir.writes.lock().await;
    if op.adds() {
        let index = dir.index();
        let fresh: HashSet<&str> =
            tags.iter().map(|t| t.as_str()).filter(|t| !index.has_tag(t)).collect();
        LimitBreach::check(
            "distinct_tags",
            app.limits.distinct_tags,
            index.tag_count() + fresh.len(),
        )?;
    }
    let update = TagUpdate { accounts, op, tags_per_account: app.limits.tags_per_account };
    let outcome = directory.store.update_tags(app.id, update).await?;
    // The difference, not `TagsReplaced`: that looks for the old tags among all of the app's.
    dir.apply(outcome.applied.iter().flat_map(|(account, _, change)| {
        [
            IndexChange::TagsRemoved { account: *account, tags: change.removed() },
            IndexChange::TagsAdded { account: *account, tags: change.added() },
        ]
    }));
    let changed: Vec<_> = outcome.applied.iter().map(|(id, _, _)| *id).collect();
    if !changed.is_empty() {
        directory.announce(DirectoryChange::Accounts { app: app.id, accounts: changed }).await?;
    }
    Ok(BatchReport::from_outcome(&outcome))
}

/// Tags of each named account that exists; the others are returned as unknown.
pub async fn get_tags(
    directory: &Directory,
    app: &App,
    accounts: &[String],
) -> Result<(BTreeMap<String, Vec<String>>, Vec<String>), ServiceError> {
    check_batch(accounts, &app.limits)?;
    let records = directory.store.accounts_by_name(app.id, accounts).await?;
    let found: BTreeMap<String, Vec<String>> =
        records.into_iter().map(|r| (r.account, r.tags)).collect();
    let unknown = unknown(accounts, |a| found.contains_key(a));
    Ok((found, unknown))
}

/// Names of `accounts` (distinct, in order) for which `known` is false.
pub(super) fn unknown(accounts: &[String], known: impl Fn(&str) -> bool) -> Vec<String> {
    let mut seen = HashSet::new();
    accounts.iter().filter(|a| !known(a) && seen.insert(a.as_str())).cloned().collect()
}
