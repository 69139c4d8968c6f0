//! Registering and unregistering devices.

use herald_core::account::{check_account, Device};
use herald_core::App;
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
    // Most registrations are reconnects of an unchanged install: one read, no write, no lock.
    if let Some(bound) = directory.store.bound_device(app.id, &device.device_id).await? {
        if bound.account == account && bound.device == *device {
            return Ok(DeviceBinding {
                account_id: bound.account_id,
                device_key: bound.device_key,
                new_account: false,
                changed: Vec::new(),
            });
        }
    }
    let dir = directory.app(app.id).await?;
    let _write = dir.writes.lock().await;
    let binding = directory.store.register_device(app.id, account, device).await?;
    let mut index = dir.index_mut();
    if binding.new_account {
        index.insert_account(binding.account_id);
    }
    for set in &binding.changed {
        index.set_devices(set.account_id, &set.devices);
    }
    Ok(binding)
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
    dir.index_mut().set_devices(remaining.account_id, &remaining.devices);
    Ok(())
}
