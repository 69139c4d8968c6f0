//! Importing and deleting accounts.

use herald_core::App;
use herald_index::IndexChange;
use serde::Serialize;

use super::{check_batch, Directory, DirectoryChange};
use crate::ServiceError;

/// Which accounts an import created and which existed already.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportOutcome {
    pub created: Vec<String>,
    pub existing: Vec<String>,
}

/// Creates the accounts that do not exist yet (≤ `accounts_per_batch`); importing again is a no-op.
pub async fn import_accounts(
    directory: &Directory,
    app: &App,
    accounts: &[String],
) -> Result<ImportOutcome, ServiceError> {
    check_batch(accounts, &app.limits)?;
    let dir = directory.app(app.id).await?;
    let _write = dir.writes.lock().await;
    let imported = directory.store.import_accounts(app.id, accounts).await?;
    let mut outcome = ImportOutcome { created: Vec::new(), existing: Vec::new() };
    let mut created = Vec::new();
    for (name, id, new) in imported {
        if new {
            created.push(id);
            outcome.created.push(name);
        } else {
            outcome.existing.push(name);
        }
    }
    dir.apply(created.iter().map(|&account| IndexChange::AccountAdded { account }));
    if !created.is_empty() {
        directory.announce(DirectoryChange::Accounts { app: app.id, accounts: created }).await?;
    }
    Ok(outcome)
}

/// Deletes an account: it leaves every tag, attribute and platform, and its devices go.
pub async fn delete_account(
    directory: &Directory,
    app: &App,
    account: &str,
) -> Result<(), ServiceError> {
    let dir = directory.app(app.id).await?;
    let _write = dir.writes.lock().await;
    let id = directory.store.delete_account(app.id, account).await?;
    dir.apply([IndexChange::AccountRemoved { account: id }]);
    directory.announce(DirectoryChange::Accounts { app: app.id, accounts: vec![id] }).await
}
