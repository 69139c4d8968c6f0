//! Registering and unregistering devices.

use herald_core::account::{check_account, Device};
use herald_core::{App, AppId};
use herald_store::DeviceBinding;

use super::{at, Directory};
use crate::error::ApiErrorKind;

/// Registers or updates a device and binds it to `account`, which is created if needed (a device
/// registration is a login). A device bound to another account moves: the last bind wins.
pub async fn register_device(
    directory: &Directory,
    app: &App,
    account: &str,
    device: &Device,
) -> Result<DeviceBinding, ApiErrorKind> {
    check_account(account).map_err(|err| at("account".into(), err))?;
    device.check().map_err(|err| at("device".into(), err))?;
    let dir = directory.app(app.id).await?;
    // Most registrations are reconnects of an unchanged install: no write, no lock, and for one
    // that logged in lately not even a read. A deleted account's devices are gone from the
    // store, and its id is never given again: it must still be in the index.
    if let Some(known) = dir.logins.unchanged(account, device) {
        if dir.index().eligible().contains(known.account_id) {
            return Ok(known);
        }
    }
    if let Some(bound) = directory.store.bound_device(app.id, &device.device_id).await? {
        if bound.account == account && bound.device == *device {
            let binding = DeviceBinding {
                account_id: bound.account_id,
                device_key: bound.device_key,
                new_account: false,
                changed: Vec::new(),
            };
            dir.logins.remember(account, device, &binding);
            return Ok(binding);
        }
    }
    let _write = dir.writes.lock().await;
    let binding = directory.store.register_device(app.id, account, device).await?;
    dir.logins.remember(account, device, &binding);
    let mut index = dir.index_mut();
    if binding.new_account {
        index.insert_account(binding.account_id);
    }
    for set in &binding.changed {
        index.set_devices(set.account_id, &set.devices);
    }
    Ok(binding)
}

/// Forgets what the last login of a device stored, after the store changed it another way
/// (a vendor token found dead).
pub fn device_changed(directory: &Directory, app: AppId, device_id: &str) {
    if let Some(dir) = directory.cached(app) {
        dir.logins.forget(device_id);
    }
}

/// Removes a device; its account stays.
pub async fn unregister_device(
    directory: &Directory,
    app: &App,
    device_id: &str,
) -> Result<(), ApiErrorKind> {
    let dir = directory.app(app.id).await?;
    let _write = dir.writes.lock().await;
    let remaining = directory.store.unregister_device(app.id, device_id).await?;
    dir.logins.forget(device_id);
    dir.index_mut().set_devices(remaining.account_id, &remaining.devices);
    Ok(())
}
