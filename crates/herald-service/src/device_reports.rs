//! What a device reports over HTTP instead of its WebSocket: a browser's service worker has no
//! connection when it shows a Web Push notification or when the user clicks it.

use herald_core::account::{check_text, MAX_ID_BYTES};
use herald_gateway::Identity;

use crate::dispatch::DeviceRef;
use crate::{Service, ServiceError, ServiceResult};

/// What a device says became of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceReport {
    /// The notification was shown.
    Delivered,
    /// The user opened (clicked) it.
    Opened,
}

impl Service {
    /// Counts a push shown or opened on a device of the token's account, exactly as the
    /// WebSocket's acks and `opened` frames are counted: once per device, an open as a delivery
    /// too. The device must be bound to the account and the push must be the app's.
    pub async fn device_report(
        &self,
        identity: &Identity,
        device_id: &str,
        push_id: &str,
        report: DeviceReport,
    ) -> ServiceResult<()> {
        for (field, value) in [("device_id", device_id), ("push_id", push_id)] {
            check_text(field, value, MAX_ID_BYTES)
                .map_err(|err| ServiceError::InvalidRequest(err.to_string()))?;
        }
        let device = self.reporting_device(identity, device_id).await?;
        if self.live.get(identity.app, push_id).is_none() {
            // Not in memory any more (or never): the store says whether the app has it.
            self.store.push(identity.app, push_id).await?;
        }
        let opened = report == DeviceReport::Opened;
        if opened {
            metrics::counter!("herald_pushes_opened_total").increment(1);
        }
        self.receipts.reached(identity.app, device, push_id, opened);
        Ok(())
    }

    /// The device as reports count it, if it is bound to the token's account. Another
    /// account's device is "not found" too: the token must not tell which devices exist.
    async fn reporting_device(
        &self,
        identity: &Identity,
        device_id: &str,
    ) -> ServiceResult<DeviceRef> {
        let bound = self
            .store
            .bound_device(identity.app, device_id)
            .await?
            .filter(|bound| bound.account == identity.account)
            .ok_or_else(|| ServiceError::NotFound { what: "device", id: device_id.to_owned() })?;
        Ok(DeviceRef {
            account_id: bound.account_id,
            device_key: bound.device_key,
            platform: bound.device.platform,
        })
    }
}
