//! Registering and unregistering devices.

use herald_core::account::{check_account, Device};
use herald_core::{App, AppId};
use herald_index::IndexChange;
use herald_store::{DeviceBinding, DynStore};
use tokio::sync::oneshot;

use std::sync::Arc;

use super::{at, AppDirectory, ChangeFeed, Directory, DirectoryChange};
use crate::ServiceError;

/// Registers or updates a device and binds it to `account`, which is created if needed (a device
/// registration is a login). A device bound to another account moves: the last bind wins.
pub async fn register_device(
    directory: &Directory,
    app: &App,
    account: &str,
    device: &Device,
) -> Result<DeviceBinding, ServiceError> {
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
    let (reply, binding) = oneshot::channel();
    dir.queue_registration(QueuedRegistration {
        account: account.to_owned(),
        device: device.clone(),
        reply,
    });
    // In a task of its own: a caller that goes away must not take the others' writes with it.
    let (store, app_id, feed) = (directory.store.clone(), app.id, directory.feed.get().cloned());
    directory.tasks.spawn(async move { write_queued(&store, feed, app_id, &dir).await });
    binding.await.unwrap_or_else(|_| Err(ServiceError::Internal("registration lost".into())))
}

/// Bounds how long one batch holds the app's write lock; each registration starts a writer,
/// so whatever a batch leaves in the queue is taken by a later one.
const REGISTRATIONS_PER_TRANSACTION: usize = 500;

/// A registration waiting for the app's write lock.
pub(super) struct QueuedRegistration {
    account: String,
    device: Device,
    reply: oneshot::Sender<Result<DeviceBinding, ServiceError>>,
}

/// Writes every registration queued for the app once it holds the app's write lock, in one
/// transaction: while one transaction commits, the next logins queue up, so a burst of new
/// installs pays for one commit per batch instead of one per device. Every registration
/// starts this; most find the queue emptied by an earlier one.
async fn write_queued(
    store: &DynStore,
    feed: Option<Arc<dyn ChangeFeed>>,
    app: AppId,
    dir: &AppDirectory,
) {
    let _write = dir.writes.lock().await;
    let queued = dir.take_registrations(REGISTRATIONS_PER_TRANSACTION);
    if queued.is_empty() {
        return;
    }
    let devices: Vec<(String, Device)> =
        queued.iter().map(|q| (q.account.clone(), q.device.clone())).collect();
    let started = std::time::Instant::now();
    let registered = store.register_devices(app, &devices).await;
    crate::dispatch::store_time("register_devices", started);
    let bindings = match registered {
        Ok(bindings) => bindings.into_iter().map(Ok).collect(),
        // One by one, so that each gets its own answer.
        Err(_) if queued.len() > 1 => {
            let mut each = Vec::with_capacity(queued.len());
            for (account, device) in &devices {
                each.push(store.register_device(app, account, device).await);
            }
            each
        }
        Err(err) => vec![Err(err)],
    };
    let mut changed = Vec::new();
    let mut changes = Vec::new();
    for (queued, binding) in queued.iter().zip(&bindings) {
        if let Ok(binding) = binding {
            dir.logins.remember(&queued.account, &queued.device, binding);
            if binding.new_account {
                changes.push(IndexChange::AccountAdded { account: binding.account_id });
                changed.push(binding.account_id);
            }
            for set in &binding.changed {
                let devices = &set.devices;
                changes.push(IndexChange::DevicesReplaced { account: set.account_id, devices });
                changed.push(set.account_id);
            }
        }
    }
    dir.apply(changes);
    let announced = match (feed, changed.is_empty()) {
        (Some(feed), false) => {
            feed.announce(DirectoryChange::Accounts { app, accounts: changed }).await
        }
        _ => Ok(()),
    };
    for (queued, binding) in queued.into_iter().zip(bindings) {
        let answer = match (&announced, binding) {
            (Err(err), Ok(_)) => Err(ServiceError::Unavailable(format!(
                "the login is stored, but the other nodes could not be told yet ({err}); retry"
            ))),
            (_, binding) => binding.map_err(ServiceError::from),
        };
        let _ = queued.reply.send(answer);
    }
}

/// Forgets what the last login of a device stored, after the store changed it another way
/// (a vendor token found dead).
pub fn device_changed(directory: &Directory, app: AppId, device_id: &str) {
    if let Some(dir) = directory.cached(app) {
        dir.logins.forget(device_id);
    }
    if let Some(feed) = directory.feed.get().cloned() {
        let change = DirectoryChange::Device { app, device_id: device_id.to_owned() };
        directory.tasks.spawn(async move {
            if let Err(err) = feed.announce(change).await {
                tracing::warn!(%err, "other nodes may remember a login of a changed device");
            }
        });
    }
}

/// Forgets a device's remembered login (another node changed the device).
pub fn forget_login(directory: &Directory, app: AppId, device_id: &str) {
    if let Some(dir) = directory.cached(app) {
        dir.logins.forget(device_id);
    }
}

/// Removes a device; its account stays.
pub async fn unregister_device(
    directory: &Directory,
    app: &App,
    device_id: &str,
) -> Result<(), ServiceError> {
    let dir = directory.app(app.id).await?;
    let _write = dir.writes.lock().await;
    let remaining = directory.store.unregister_device(app.id, device_id).await?;
    dir.logins.forget(device_id);
    let devices = &remaining.devices;
    dir.apply([IndexChange::DevicesReplaced { account: remaining.account_id, devices }]);
    let device = DirectoryChange::Device { app: app.id, device_id: device_id.to_owned() };
    directory.announce(device).await?;
    let accounts = vec![remaining.account_id];
    directory.announce(DirectoryChange::Accounts { app: app.id, accounts }).await
}
