//! The app's directory: accounts, devices, tags and attributes, written to the store and mirrored
//! in each app's audience index. Native routes and compat layers call these operations; none of
//! them writes the store or the index on its own.

mod accounts;
mod attributes;
mod bulk;
mod devices;
mod estimate;
mod feed;
mod index;
mod logins;
mod tags;

pub use accounts::{delete_account, import_accounts, ImportOutcome};
pub use attributes::{
    attribute_names, get_attributes, named_attributes, set_attribute_names, update_attributes,
    AttributeChange,
};
pub use bulk::{bulk_import, BulkDevice, BulkLine, BulkOutcome, RejectedLine};
pub use devices::{device_changed, forget_login, register_device, unregister_device};
pub use estimate::{estimate, plan_audience, resolve_audience, Estimate};
pub use feed::{ChangeFeed, DirectoryChange};
pub use index::{AppDirectory, Directory};
pub use tags::{get_tags, update_tags, BatchReport, FailedAccount};

use herald_core::account::{check_account, FieldError};
use herald_core::{LimitBreach, Limits};

use crate::ServiceError;

/// Checks the size of a batch and each account name in it.
fn check_batch(accounts: &[String], limits: &Limits) -> Result<(), ServiceError> {
    LimitBreach::check("accounts_per_batch", limits.accounts_per_batch, accounts.len())?;
    if accounts.is_empty() {
        return Err(ServiceError::InvalidRequest("accounts must not be empty".into()));
    }
    for (i, account) in accounts.iter().enumerate() {
        check_account(account).map_err(|err| at(format!("accounts[{i}]"), err))?;
    }
    Ok(())
}

/// A field error, prefixed with where in the request it is.
fn at(path: String, err: FieldError) -> ServiceError {
    match err {
        FieldError::Limit(breach) => ServiceError::LimitExceeded(breach),
        other => ServiceError::InvalidRequest(format!("{path}: {other}")),
    }
}
