//! Batch writes over accounts (tags, attributes). Tencent answers such a call with one status
//! and no per-account list, so herald checks that every named account exists before changing
//! anything: a `FAIL` then means nothing was written, and a retry after importing is safe.

use crate::directory::BatchReport;

use super::error::TencentError;
use super::request;
use super::Caller;

/// Refuses with 70107 when any of `accounts` was never imported (or logged in).
pub async fn require_existing(caller: &Caller, accounts: &[String]) -> Result<(), TencentError> {
    let names = request::distinct(accounts);
    let found = caller
        .state
        .store
        .account_ids(caller.app.id, &names)
        .await
        .map_err(|err| TencentError::Api(err.into()))?;
    let missing: Vec<String> = names.into_iter().filter(|n| !found.contains_key(n)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(TencentError::UnknownAccounts(missing))
    }
}

/// Turns the accounts a directory batch left unchanged into one refusal: an account deleted
/// since [`require_existing`] (70107), or one that would go past a per-account limit.
pub fn check_report(report: &BatchReport) -> Result<(), TencentError> {
    let unknown: Vec<String> = report
        .failed
        .iter()
        .filter(|f| f.code == "unknown_account")
        .map(|f| f.account.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(TencentError::UnknownAccounts(unknown));
    }
    match report.failed.first() {
        None => Ok(()),
        Some(failed) => Err(TencentError::AccountLimit {
            account: failed.account.clone(),
            limit: failed.limit.unwrap_or("limit"),
            value: failed.value.unwrap_or_default(),
        }),
    }
}
