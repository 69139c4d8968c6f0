//! Pages of rows packed into one string, as both backends hand them to the start-up index
//! rebuild: a row per account or device costs far more to carry through sqlx than its
//! fields, so the database concatenates a page and this side splits it.

use herald_core::account::AccountId;

use crate::{IndexSink, StoreError, StoreResult, ATTRIBUTE_SLOTS};

/// Separates rows, and the fields of one row, in a packed page. The packed fields (tags,
/// attribute values, platforms, packages) never hold control characters (refused on write),
/// nor are they ever empty, so an empty field is a missing value.
pub(crate) const ROW_SEPARATOR: char = '\u{1e}';
pub(crate) const FIELD_SEPARATOR: char = '\u{1f}';

/// Feeds a page of accounts packed as `id, tags, attr0 .. attr9` to `sink`; an empty page
/// holds no row.
pub(crate) fn feed_accounts(page: &str, sink: &mut (dyn IndexSink + Send)) -> StoreResult<()> {
    if page.is_empty() {
        return Ok(());
    }
    let mut tags: Vec<&str> = Vec::new();
    let mut attrs: Vec<Option<&str>> = Vec::with_capacity(ATTRIBUTE_SLOTS);
    for account in page.split(ROW_SEPARATOR) {
        let corrupt = || StoreError::Corrupt(format!("packed account row {account:?}"));
        let mut fields = account.split(FIELD_SEPARATOR);
        let id: AccountId = fields.next().and_then(|id| id.parse().ok()).ok_or_else(corrupt)?;
        tags.clear();
        tags.extend(fields.next().ok_or_else(corrupt)?.split('\n').filter(|t| !t.is_empty()));
        attrs.clear();
        attrs.extend(fields.map(|value| Some(value).filter(|v| !v.is_empty())));
        if attrs.len() != ATTRIBUTE_SLOTS {
            return Err(corrupt());
        }
        sink.account(id, &tags, &attrs);
    }
    Ok(())
}

/// Feeds a page of devices packed as `account_id, platform, package` to `sink`; an empty
/// page holds no row.
pub(crate) fn feed_devices(page: &str, sink: &mut (dyn IndexSink + Send)) -> StoreResult<()> {
    if page.is_empty() {
        return Ok(());
    }
    for device in page.split(ROW_SEPARATOR) {
        let corrupt = || StoreError::Corrupt(format!("packed device row {device:?}"));
        let mut fields = device.split(FIELD_SEPARATOR);
        let (Some(account), Some(platform), Some(package), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(corrupt());
        };
        let account: AccountId = account.parse().map_err(|_| corrupt())?;
        sink.device(account, platform, package);
    }
    Ok(())
}
