//! Bulk onboarding: accounts with their tags and attributes, one per line, applied in batches
//! of the app's `accounts_per_batch` through the same operations as the single calls. A bad
//! line is reported with its number and the reason, and skipped; every other line applies.

use std::collections::{BTreeMap, HashMap, HashSet};

use herald_core::account::{check_account, check_attribute_value, check_tag};
use herald_core::{App, Limits};
use herald_store::TagOp;
use serde::{Deserialize, Serialize};

use super::attributes::{update_attributes, AttributeChange};
use super::{import_accounts, update_tags, Directory};
use crate::ServiceError;

/// One line of an import.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkAccount {
    pub account: String,
    /// Tags the account gains (tags it has already are kept).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Attribute values by name; the names must be the app's.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
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
    pub rejected: Vec<RejectedLine>,
}

/// Reads NDJSON: one [`BulkAccount`] per line, numbered from `first_line`.
pub fn parse_ndjson(
    text: &str,
    first_line: usize,
) -> (Vec<(usize, BulkAccount)>, Vec<RejectedLine>) {
    let (mut lines, mut rejected) = (Vec::new(), Vec::new());
    for (n, raw) in text.lines().enumerate() {
        let line = first_line + n;
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<BulkAccount>(raw) {
            Ok(account) => lines.push((line, account)),
            Err(err) => {
                rejected.push(RejectedLine { line, reason: format!("invalid JSON: {err}") })
            }
        }
    }
    (lines, rejected)
}

/// Applies the lines; see the module's description.
pub async fn bulk_import(
    directory: &Directory,
    app: &App,
    lines: Vec<(usize, BulkAccount)>,
) -> Result<BulkOutcome, ServiceError> {
    let names = directory.app(app.id).await?.attribute_names();
    let known: HashSet<&str> = names.iter().flatten().map(String::as_str).collect();
    let mut outcome = BulkOutcome { lines: lines.len(), ..BulkOutcome::default() };
    let mut valid = Vec::with_capacity(lines.len());
    let mut seen = HashSet::new();
    for (line, account) in lines {
        match check_line(&account, &app.limits, &known, &mut seen) {
            Ok(()) => valid.push((line, account)),
            Err(reason) => outcome.rejected.push(RejectedLine { line, reason }),
        }
    }
    let batch = usize::try_from(app.limits.accounts_per_batch).unwrap_or(1).max(1);
    for chunk in valid.chunks(batch) {
        apply_chunk(directory, app, chunk, &mut outcome).await?;
    }
    outcome.rejected.sort_by_key(|r| r.line);
    Ok(outcome)
}

/// Why a line cannot apply, found before anything is written.
fn check_line(
    line: &BulkAccount,
    limits: &Limits,
    known: &HashSet<&str>,
    seen: &mut HashSet<String>,
) -> Result<(), String> {
    check_account(&line.account).map_err(|err| format!("account: {err}"))?;
    if !seen.insert(line.account.clone()) {
        return Err(format!("account {} is on an earlier line of this batch", line.account));
    }
    let tags = usize::try_from(limits.tags_per_account).unwrap_or(usize::MAX);
    if line.tags.len() > tags {
        return Err(format!("{} tags, at most {tags} (tags_per_account)", line.tags.len()));
    }
    for tag in &line.tags {
        check_tag(tag, limits).map_err(|err| format!("tag {tag:?}: {err}"))?;
    }
    for (name, value) in &line.attributes {
        if !known.contains(name.as_str()) {
            return Err(format!("unknown attribute `{name}` (name it first: PUT /v1/attributes)"));
        }
        check_attribute_value(value, limits).map_err(|err| format!("attribute {name}: {err}"))?;
    }
    Ok(())
}

/// Creates the chunk's accounts, then adds their tags and sets their attributes; a line the
/// store refuses (an account's tag limit) is reported as rejected.
async fn apply_chunk(
    directory: &Directory,
    app: &App,
    chunk: &[(usize, BulkAccount)],
    outcome: &mut BulkOutcome,
) -> Result<(), ServiceError> {
    let line_of: HashMap<&str, usize> =
        chunk.iter().map(|(n, l)| (l.account.as_str(), *n)).collect();
    let names: Vec<String> = chunk.iter().map(|(_, l)| l.account.clone()).collect();
    let imported = import_accounts(directory, app, &names).await?;
    outcome.created += imported.created.len();
    outcome.existing += imported.existing.len();

    let tagged: HashMap<String, Vec<String>> = chunk
        .iter()
        .filter(|(_, l)| !l.tags.is_empty())
        .map(|(_, l)| (l.account.clone(), l.tags.clone()))
        .collect();
    let mut failed = Vec::new();
    if !tagged.is_empty() {
        let accounts = tagged.keys().cloned().collect();
        failed.extend(update_tags(directory, app, accounts, TagOp::AddEach(tagged)).await?.failed);
    }
    let valued: Vec<(String, Vec<AttributeChange>)> = chunk
        .iter()
        .filter(|(_, l)| !l.attributes.is_empty())
        .map(|(_, l)| (l.account.clone(), attribute_changes(&l.attributes)))
        .collect();
    if !valued.is_empty() {
        failed.extend(update_attributes(directory, app, valued).await?.failed);
    }
    for failure in failed {
        let line = line_of.get(failure.account.as_str()).copied().unwrap_or_default();
        outcome.rejected.push(RejectedLine { line, reason: failure.message });
    }
    Ok(())
}

fn attribute_changes(values: &BTreeMap<String, String>) -> Vec<AttributeChange> {
    values
        .iter()
        .map(|(name, value)| AttributeChange::Set { name: name.clone(), value: value.clone() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines_are_numbered_and_bad_ones_reported() {
        let text = "{\"account\":\"a\",\"tags\":[\"vip\"]}\n\n{\"account\":\n{\"account\":\"b\",\"age\":3}\n{\"account\":\"c\",\"attributes\":{\"city\":\"sz\"}}\n";
        let (lines, rejected) = parse_ndjson(text, 101);
        let numbers: Vec<usize> = lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [101, 105]);
        assert_eq!(lines[1].1.attributes["city"], "sz");
        let bad: Vec<usize> = rejected.iter().map(|r| r.line).collect();
        assert_eq!(bad, [103, 104], "{rejected:?}");
        assert!(rejected[1].reason.contains("unknown field `age`"), "{rejected:?}");
    }

    #[test]
    fn a_line_is_checked_before_anything_is_written() {
        let limits = Limits::default();
        let known: HashSet<&str> = ["city"].into_iter().collect();
        let mut seen = HashSet::new();
        let line = |account: &str, tags: &[&str], attrs: &[(&str, &str)]| BulkAccount {
            account: account.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            attributes: attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        assert_eq!(
            check_line(&line("u1", &["vip"], &[("city", "sz")]), &limits, &known, &mut seen),
            Ok(())
        );
        let again = check_line(&line("u1", &[], &[]), &limits, &known, &mut seen);
        assert!(again.is_err_and(|r| r.contains("earlier line")));
        let unknown = check_line(&line("u2", &[], &[("planet", "x")]), &limits, &known, &mut seen);
        assert!(unknown.is_err_and(|r| r.contains("unknown attribute `planet`")));
        let long = "t".repeat(1000);
        let too_long = check_line(&line("u3", &[&long], &[]), &limits, &known, &mut seen);
        assert!(too_long.is_err_and(|r| r.contains("tag")));
        assert!(check_line(&line("", &[], &[]), &limits, &known, &mut seen).is_err());
    }
}
