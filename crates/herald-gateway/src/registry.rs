//! The registry of live sessions: per app, per dense account id, the connections that are
//! online, and the online fan-out of pushes to them.
//!
//! One connection per (app, device): a newer hello of a device replaces its older connection
//! (closed with 4010). Fan-out never waits on a connection: each has a bounded queue, and a
//! full queue closes that connection with 4009 (its pushes wait in its inbox).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use herald_core::AppId;
use roaring::RoaringBitmap;

use crate::inbox::DeviceInfo;
use crate::outbox::{Offer, Outbound, Outbox};
use crate::protocol::{CloseCode, Frame, Push, ServerFrame};

/// Live sessions of all apps.
#[derive(Debug)]
pub struct Registry {
    apps: RwLock<HashMap<AppId, Arc<AppSessions>>>,
    queue_capacity: usize,
    sessions: AtomicUsize,
    next_conn: AtomicU64,
    /// Set by [`Registry::shut_down`]: sessions registered after it are closed at once.
    shut_down: AtomicBool,
}

/// One app's sessions behind their own lock, so that apps do not contend.
#[derive(Debug, Default)]
struct AppSessions {
    inner: RwLock<AppInner>,
}

#[derive(Debug, Default)]
struct AppInner {
    by_account: HashMap<u32, Vec<Slot>>,
    /// Accounts with at least one session: intersected with audiences.
    online: RoaringBitmap,
    /// Device id → (account id, connection), to find the connection a new hello replaces.
    devices: HashMap<String, (u32, u64)>,
}

#[derive(Debug)]
struct Slot {
    conn: u64,
    device_id: String,
    platform: String,
    package: String,
    outbox: Arc<Outbox>,
}

/// A session known to the registry (for inspection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub account_id: u32,
    pub device_id: String,
    pub platform: String,
    pub package: String,
}

/// One push encoded once per platform, ready to be handed to any number of connections.
#[derive(Debug, Clone)]
pub struct PushFrames {
    seq: u64,
    default: Frame,
    by_platform: Vec<(String, Frame)>,
    only: Option<Vec<String>>,
}

impl PushFrames {
    /// Encodes `push` as the frame every platform gets unless [`PushFrames::with_platform`]
    /// gives it its own.
    pub fn new(push: &Push) -> Self {
        Self {
            seq: push.seq,
            default: Frame::encode(&ServerFrame::Push(push.clone())),
            by_platform: Vec::new(),
            only: None,
        }
    }

    /// Encodes the variant of the push for `platform` (its notification resolved for it). The
    /// variant's `seq` must be the push's.
    pub fn with_platform(mut self, platform: &str, push: &Push) -> Self {
        debug_assert_eq!(push.seq, self.seq, "every variant of a push has its seq");
        let frame = Frame::encode(&ServerFrame::Push(push.clone()));
        self.by_platform.retain(|(p, _)| p != platform);
        self.by_platform.push((platform.to_owned(), frame));
        self
    }

    /// Delivers only to devices of these platforms.
    pub fn only_platforms<I, S>(mut self, platforms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.only = Some(platforms.into_iter().map(Into::into).collect());
        self
    }

    /// The push's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The frame for a device of `platform`, or `None` when the platform filter excludes it.
    pub fn for_platform(&self, platform: &str) -> Option<&Frame> {
        if let Some(only) = &self.only {
            if !only.iter().any(|p| p == platform) {
                return None;
            }
        }
        // A handful of platforms at most: a scan beats hashing.
        Some(self.by_platform.iter().find(|(p, _)| p == platform).map_or(&self.default, |(_, f)| f))
    }
}

/// What an online fan-out did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    /// Accounts with at least one connection that got the frame queued: the caller can skip
    /// vendor pushes for them.
    pub reached: RoaringBitmap,
    /// Frames queued, per platform.
    pub sent: BTreeMap<String, u64>,
    /// Connections closed with 4009 because their queue was full.
    pub too_slow: u64,
}

impl Delivery {
    /// Frames queued on all platforms.
    pub fn total_sent(&self) -> u64 {
        self.sent.values().sum()
    }
}

/// A registered session; dropping it removes the session from the registry.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Registry>,
    app: AppId,
    account_id: u32,
    conn: u64,
    outbox: Arc<Outbox>,
}

impl Registration {
    pub(crate) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The registry's id of this connection.
    pub fn conn(&self) -> u64 {
        self.conn
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.unregister(self.app, self.account_id, self.conn);
    }
}

impl Registry {
    /// An empty registry whose connections queue at most `queue_capacity` frames each.
    pub fn new(queue_capacity: usize) -> Self {
        Self {
            apps: RwLock::default(),
            queue_capacity: queue_capacity.max(1),
            sessions: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
            shut_down: AtomicBool::new(false),
        }
    }

    /// Registers a connection of `device` for `account_id`, replacing (closing with 4010) the
    /// device's previous connection, wherever it was bound.
    pub fn register(
        self: &Arc<Self>,
        app: AppId,
        account_id: u32,
        device: &DeviceInfo,
    ) -> Registration {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox::new(self.queue_capacity));
        let sessions = self.app_or_insert(app);
        let mut inner = sessions.inner.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((old_account, old_conn)) = inner.devices.get(&device.device_id).copied() {
            if let Some(old) = inner.remove_slot(old_account, old_conn) {
                old.outbox.close(CloseCode::Replaced);
                self.sessions.fetch_sub(1, Ordering::Relaxed);
            }
        }
        inner.devices.insert(device.device_id.clone(), (account_id, conn));
        inner.online.insert(account_id);
        inner.by_account.entry(account_id).or_insert_with(|| Vec::with_capacity(1)).push(Slot {
            conn,
            device_id: device.device_id.clone(),
            platform: device.platform.clone(),
            package: device.package.clone(),
            outbox: outbox.clone(),
        });
        // Read under the app's lock: a shutdown either finds this session in its sweep or is
        // seen here.
        if self.shut_down.load(Ordering::SeqCst) {
            outbox.close(CloseCode::ShuttingDown);
        }
        drop(inner);
        self.sessions.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("herald_gateway_sessions").set(self.online_count() as f64);
        Registration { registry: self.clone(), app, account_id, conn, outbox }
    }

    /// Closes every session (1001, going away), and every one registered from now on: a session
    /// learns of the shutdown from its outbox, the one thing it waits on anyway.
    pub fn shut_down(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        let apps: Vec<Arc<AppSessions>> =
            self.apps.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        for sessions in apps {
            let inner = sessions.inner.write().unwrap_or_else(PoisonError::into_inner);
            for slot in inner.by_account.values().flatten() {
                slot.outbox.close(CloseCode::ShuttingDown);
            }
        }
    }

    fn unregister(&self, app: AppId, account_id: u32, conn: u64) {
        let Some(sessions) = self.app(app) else { return };
        let mut inner = sessions.inner.write().unwrap_or_else(PoisonError::into_inner);
        // A replaced connection was removed already; then this finds nothing.
        if let Some(slot) = inner.remove_slot(account_id, conn) {
            if inner.devices.get(&slot.device_id).is_some_and(|&(_, c)| c == conn) {
                inner.devices.remove(&slot.device_id);
            }
            self.sessions.fetch_sub(1, Ordering::Relaxed);
        }
        drop(inner);
        metrics::gauge!("herald_gateway_sessions").set(self.online_count() as f64);
    }

    /// Queues the push for every online device of the accounts in `audience` (and the
    /// platform filter of `frames`). Never waits: a connection whose queue is full is closed
    /// with 4009 instead. Works on `audience ∩ online`, so its cost follows the online part of
    /// the audience, not the audience.
    pub fn deliver(&self, app: AppId, audience: &RoaringBitmap, frames: &PushFrames) -> Delivery {
        self.deliver_all(app, &[(audience, frames)]).pop().unwrap_or_default()
    }

    /// [`Registry::deliver`] for several pushes, given in seq order: each connection gets its
    /// frames of all of them queued at once, so it is woken and written to once, not once per
    /// push. Returns one [`Delivery`] per push, in the same order.
    pub fn deliver_all(
        &self,
        app: AppId,
        pushes: &[(&RoaringBitmap, &PushFrames)],
    ) -> Vec<Delivery> {
        let audiences: Vec<&RoaringBitmap> = pushes.iter().map(|&(audience, _)| audience).collect();
        self.fan_out(app, &audiences, |push, platform| {
            let frames = pushes[push].1;
            let frame = frames.for_platform(platform)?;
            Some(Outbound::Push { seq: frames.seq, frame: frame.clone() })
        })
    }

    /// Queues a recall frame (see [`ServerFrame::Recall`]) for the online devices of
    /// `audience`, like [`Registry::deliver`].
    pub fn recall(&self, app: AppId, audience: &RoaringBitmap, frame: &Frame) -> Delivery {
        let item = |_: usize, _: &str| Some(Outbound::Other(frame.clone()));
        self.fan_out(app, &[audience], item).pop().unwrap_or_default()
    }

    /// Offers each online connection in any of `audiences` the items `item_for(audience index,
    /// platform)` gives it, all in one go.
    fn fan_out(
        &self,
        app: AppId,
        audiences: &[&RoaringBitmap],
        item_for: impl Fn(usize, &str) -> Option<Outbound>,
    ) -> Vec<Delivery> {
        let Some(sessions) = self.app(app) else {
            return vec![Delivery::default(); audiences.len()];
        };
        let inner = sessions.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut fan_outs: Vec<FanOut> = audiences.iter().map(|_| FanOut::default()).collect();
        let targets = match audiences {
            [one] => *one & &inner.online,
            many => {
                many.iter().copied().fold(RoaringBitmap::new(), |all, a| all | a) & &inner.online
            }
        };
        let mut members = Vec::with_capacity(audiences.len());
        let mut offered = Vec::with_capacity(audiences.len());
        let mut items = Vec::with_capacity(audiences.len());
        for account_id in &targets {
            let Some(slots) = inner.by_account.get(&account_id) else { continue };
            members.clear();
            members.extend(
                (0..audiences.len())
                    .filter(|&i| audiences.len() == 1 || audiences[i].contains(account_id)),
            );
            for slot in slots {
                offered.clear();
                for &i in &members {
                    if let Some(item) = item_for(i, &slot.platform) {
                        offered.push(i);
                        items.push(item);
                    }
                }
                if offered.is_empty() {
                    continue;
                }
                let offer = slot.outbox.offer_all(&mut items);
                for &i in &offered {
                    fan_outs[i].count(account_id, &slot.platform, offer);
                }
            }
        }
        let deliveries: Vec<Delivery> = fan_outs.into_iter().map(FanOut::into_delivery).collect();
        drop(inner);
        let queued: u64 = deliveries.iter().map(Delivery::total_sent).sum();
        // Disconnects are counted by the sessions as they close.
        metrics::counter!("herald_gateway_frames_queued_total").increment(queued);
        deliveries
    }
    /// Whether any device of the account is connected.
    pub fn is_online(&self, app: AppId, account_id: u32) -> bool {
        self.app(app).is_some_and(|s| {
            s.inner.read().unwrap_or_else(PoisonError::into_inner).online.contains(account_id)
        })
    }

    /// Accounts of the app with at least one connection.
    pub fn online_accounts(&self, app: AppId) -> RoaringBitmap {
        self.app(app)
            .map(|s| s.inner.read().unwrap_or_else(PoisonError::into_inner).online.clone())
            .unwrap_or_default()
    }

    /// Live sessions of all apps.
    pub fn online_count(&self) -> usize {
        self.sessions.load(Ordering::Relaxed)
    }

    /// The sessions of one account.
    pub fn sessions(&self, app: AppId, account_id: u32) -> Vec<SessionInfo> {
        let Some(sessions) = self.app(app) else { return Vec::new() };
        let inner = sessions.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner
            .by_account
            .get(&account_id)
            .into_iter()
            .flatten()
            .map(|slot| SessionInfo {
                account_id,
                device_id: slot.device_id.clone(),
                platform: slot.platform.clone(),
                package: slot.package.clone(),
            })
            .collect()
    }

    /// Ends the connection of a device (close 4011), e.g. because it was unbound or its
    /// account removed. Returns whether it was connected.
    pub fn disconnect_device(&self, app: AppId, device_id: &str) -> bool {
        let Some(sessions) = self.app(app) else { return false };
        let inner = sessions.inner.read().unwrap_or_else(PoisonError::into_inner);
        let Some(&(account_id, conn)) = inner.devices.get(device_id) else { return false };
        let slot =
            inner.by_account.get(&account_id).and_then(|s| s.iter().find(|s| s.conn == conn));
        // The session unregisters itself when it sees the close.
        slot.inspect(|slot| slot.outbox.close(CloseCode::Evicted)).is_some()
    }

    fn app(&self, app: AppId) -> Option<Arc<AppSessions>> {
        self.apps.read().unwrap_or_else(PoisonError::into_inner).get(&app).cloned()
    }

    fn app_or_insert(&self, app: AppId) -> Arc<AppSessions> {
        if let Some(sessions) = self.app(app) {
            return sessions;
        }
        self.apps.write().unwrap_or_else(PoisonError::into_inner).entry(app).or_default().clone()
    }
}

/// One push's [`Delivery`] while the fan-out runs: counted per platform in a small list, with
/// no allocation per connection.
#[derive(Default)]
struct FanOut<'a> {
    reached: RoaringBitmap,
    sent: Vec<(&'a str, u64)>,
    too_slow: u64,
}

impl<'a> FanOut<'a> {
    fn count(&mut self, account_id: u32, platform: &'a str, offer: Offer) {
        match offer {
            Offer::Queued => {
                // Accounts come in increasing order: an append.
                self.reached.insert(account_id);
                match self.sent.iter_mut().find(|(p, _)| *p == platform) {
                    Some((_, n)) => *n += 1,
                    None => self.sent.push((platform, 1)),
                }
            }
            Offer::Full => self.too_slow += 1,
            Offer::Closed => {}
        }
    }

    fn into_delivery(self) -> Delivery {
        Delivery {
            reached: self.reached,
            sent: self.sent.into_iter().map(|(p, n)| (p.to_owned(), n)).collect(),
            too_slow: self.too_slow,
        }
    }
}

impl AppInner {
    fn remove_slot(&mut self, account_id: u32, conn: u64) -> Option<Slot> {
        let slots = self.by_account.get_mut(&account_id)?;
        let index = slots.iter().position(|s| s.conn == conn)?;
        let slot = slots.swap_remove(index);
        if slots.is_empty() {
            self.by_account.remove(&account_id);
            self.online.remove(account_id);
        }
        Some(slot)
    }
}

#[cfg(test)]
mod tests;
