//! Receipts: device cursors, deliveries and opens. Acks arrive at the rate pushes are delivered,
//! far faster than one database write each, so cursors and report counts live in memory and are
//! written every second in one transaction. Cursors and counts move together: after a crash a
//! device re-sends exactly the acks whose counts were lost, and the unique-device bitmaps absorb
//! the repeats, so counts stay exact.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use herald_core::AppId;
use herald_index::RoaringBitmap;
use herald_store::{
    Cursor, DayCount, DynStore, MinuteCount, PlatformReport, ReceiptsFlush, StoreResult,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::live::LiveInbox;
use crate::tasks::Tasks;

/// How long a device's cursor stays in memory after its last session, at least.
pub const DEVICE_LINGER: Duration = Duration::from_secs(60);

/// Reports kept in memory between flushes before the cache is emptied.
const MAX_CACHED_REPORTS: usize = 10_000;

/// A device as reports count it.
#[derive(Debug, Clone)]
pub struct DeviceRef {
    pub account_id: u32,
    pub device_key: u32,
    pub platform: String,
}

/// What a dispatch did, per platform: (targeted accounts, frames sent online, stored offline).
#[derive(Debug, Clone)]
pub struct DispatchCounts {
    pub app: AppId,
    pub push_id: String,
    pub platforms: BTreeMap<String, (u64, u64, u64)>,
}

/// Something that changes reports.
pub enum Receipt {
    /// A device's cursor moved from `before` to `after`.
    Ack {
        app: AppId,
        device: DeviceRef,
        before: Cursor,
        after: Cursor,
    },
    /// A device showed (`opened: false`) or opened a push: its `opened` frame, or a service
    /// worker's report over HTTP.
    Reached {
        app: AppId,
        device: DeviceRef,
        push_id: String,
        opened: bool,
    },
    Dispatched(DispatchCounts),
    /// Vendor outcomes of a push on a platform: sent, and failures by reason.
    Vendor {
        app: AppId,
        push_id: String,
        platform: String,
        sent: u64,
        failed: BTreeMap<String, u64>,
    },
    /// The vendor sends of a push begin (again): its vendor counts start from zero.
    VendorRestarted {
        app: AppId,
        push_id: String,
    },
    Flush(oneshot::Sender<()>),
}

/// Device cursors, shared by the gateway's inbox (reads, acks) and the flusher.
#[derive(Default)]
struct CursorTable {
    cursors: Mutex<CursorState>,
}

/// Devices with a session, and devices whose cursor moved since the last flush: a device
/// leaves once it has neither, so memory follows the connected devices, not every device
/// that ever connected. Its cursor is read from the store again at its next login.
#[derive(Default)]
struct CursorState {
    by_device: HashMap<(AppId, String), DeviceState>,
    dirty: HashSet<(AppId, String)>,
    /// Devices whose session ended since the last sweep, and before it. A device leaves one to
    /// two sweeps after its last session: an ack still on its way when the session ended is
    /// then counted for the device like the others, and a quick reconnect finds it here.
    left: Vec<(AppId, String)>,
    left_earlier: Vec<(AppId, String)>,
}

#[derive(Default)]
struct DeviceState {
    cursor: Cursor,
    /// Sessions of the device that logged in and have not ended; usually one, two while a
    /// reconnect overlaps the end of the previous session.
    sessions: u32,
    /// As reports count the device; set at login.
    device: Option<DeviceRef>,
}

impl CursorState {
    /// Drops the devices that left before the last flush, unless a session holds them again;
    /// one whose cursor is not in the store yet waits for the next flush.
    fn sweep(&mut self) {
        let due = std::mem::replace(&mut self.left_earlier, std::mem::take(&mut self.left));
        for key in due {
            if self.by_device.get(&key).is_none_or(|state| state.sessions > 0) {
                continue;
            }
            if self.dirty.contains(&key) {
                self.left.push(key);
            } else {
                self.by_device.remove(&key);
            }
        }
    }
}

/// Handle to the receipts worker.
#[derive(Clone)]
pub struct Receipts {
    tx: mpsc::UnboundedSender<Receipt>,
    cursors: Arc<CursorTable>,
    store: DynStore,
}

impl Receipts {
    /// Starts the worker as a recorder of `tasks`; it flushes every `interval`, when asked,
    /// and a last time at shutdown, after the workers whose receipts it writes have ended.
    ///
    /// A device stays in memory between `linger` and twice that after its last session: a
    /// reconnect storm (clients coming back seconds after a network or load balancer restart)
    /// then finds every cursor in memory instead of reading each from the store.
    pub fn spawn(
        store: DynStore,
        live: Arc<LiveInbox>,
        interval: Duration,
        linger: Duration,
        tasks: &Tasks,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let cursors = Arc::new(CursorTable::default());
        let worker = Worker {
            store: store.clone(),
            live,
            cursors: cursors.clone(),
            linger,
            last_sweep: Instant::now(),
            reports: HashMap::new(),
            touched: HashSet::new(),
            dirty: HashSet::new(),
            minutes: HashMap::new(),
            days: HashMap::new(),
        };
        tasks.spawn_recorder(worker.run(rx, interval, tasks.recorders_stopping()));
        Self { tx, cursors, store }
    }

    fn send(&self, receipt: Receipt) {
        // The worker lives as long as the runtime; a send can only fail during shutdown.
        let _ = self.tx.send(receipt);
    }

    /// A device's cursor: the one in memory, else the stored one.
    pub async fn cursor(&self, app: AppId, device_id: &str) -> StoreResult<Cursor> {
        self.entry(app, device_id, |state| (state.cursor.clone(), false)).await
    }

    /// Runs `f` on the device's entry, read from the store first if it is not in memory. `f`
    /// also says whether it moved the cursor: the device is then marked for the next flush
    /// under the same lock, so that no sweep can drop the move in between.
    async fn entry<T, F>(&self, app: AppId, device_id: &str, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut DeviceState) -> (T, bool),
    {
        let key = (app, device_id.to_owned());
        let (mut f, mut loaded) = (f, None);
        loop {
            match self.apply(&key, loaded.take(), f) {
                Ok(out) => return Ok(out),
                // Not in memory (or swept since it was read): read it without the lock held.
                Err(back) => f = back,
            }
            loaded = Some(self.store.cursor(app, device_id).await?);
        }
    }

    /// [`Receipts::entry`] under the lock; gives `f` back if the device is not in memory.
    fn apply<T, F>(&self, key: &(AppId, String), loaded: Option<Cursor>, f: F) -> Result<T, F>
    where
        F: FnOnce(&mut DeviceState) -> (T, bool),
    {
        let mut state = self.lock();
        let CursorState { by_device, dirty, .. } = &mut *state;
        if let Some(cursor) = loaded {
            let loaded = DeviceState { cursor, ..DeviceState::default() };
            by_device.entry(key.clone()).or_insert(loaded);
        }
        let Some(entry) = by_device.get_mut(key) else { return Err(f) };
        let (out, moved) = f(entry);
        if moved {
            dirty.insert(key.clone());
        }
        Ok(out)
    }

    /// A session of the device begins; returns its cursor. Acks and opens are attributed to
    /// `device` until its last session ends.
    pub async fn login(
        &self,
        app: AppId,
        device_id: &str,
        device: DeviceRef,
    ) -> StoreResult<Cursor> {
        self.entry(app, device_id, |state| {
            state.sessions += 1;
            state.device = Some(device);
            (state.cursor.clone(), false)
        })
        .await
    }

    /// A session of the device ended (after its last acks were passed on).
    pub fn logout(&self, app: AppId, device_id: &str) {
        let key = (app, device_id.to_owned());
        let mut state = self.lock();
        if let Some(entry) = state.by_device.get_mut(&key) {
            entry.sessions = entry.sessions.saturating_sub(1);
            state.left.push(key);
        }
    }

    /// Moves a device's cursor; the push deliveries it implies are counted.
    pub async fn ack(
        &self,
        app: AppId,
        device_id: &str,
        up_to: Option<u64>,
        seqs: &[u64],
    ) -> StoreResult<()> {
        let moved = self
            .entry(app, device_id, |state| {
                let before = state.cursor.clone();
                state.cursor.apply(up_to, seqs);
                let after = state.cursor.clone();
                let moved = after != before;
                (moved.then(|| (before, after, state.device.clone())), moved)
            })
            .await?;
        let Some((before, after, device)) = moved else { return Ok(()) };
        if let Some(device) = device {
            self.send(Receipt::Ack { app, device, before, after });
        }
        Ok(())
    }

    /// The user opened a push's notification on a device with a session.
    pub fn opened(&self, app: AppId, device_id: &str, push_id: &str) {
        let key = (app, device_id.to_owned());
        let device = self.lock().by_device.get(&key).and_then(|state| state.device.clone());
        if let Some(device) = device {
            self.reached(app, device, push_id, true);
        }
    }

    /// A device showed (`opened: false`) or opened a push, whether it has a session or not:
    /// counted once per device, an open as a delivery too.
    pub fn reached(&self, app: AppId, device: DeviceRef, push_id: &str, opened: bool) {
        self.send(Receipt::Reached { app, device, push_id: push_id.to_owned(), opened });
    }

    pub fn dispatched(&self, counts: DispatchCounts) {
        self.send(Receipt::Dispatched(counts));
    }

    pub fn vendor(
        &self,
        app: AppId,
        push_id: &str,
        platform: &str,
        sent: u64,
        failed: BTreeMap<String, u64>,
    ) {
        self.send(Receipt::Vendor {
            app,
            push_id: push_id.to_owned(),
            platform: platform.to_owned(),
            sent,
            failed,
        });
    }

    pub fn vendor_restarted(&self, app: AppId, push_id: &str) {
        self.send(Receipt::VendorRestarted { app, push_id: push_id.to_owned() });
    }

    /// Writes everything received so far; returns once it is in the store.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        self.send(Receipt::Flush(done));
        let _ = wait.await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CursorState> {
        self.cursors.cursors.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts of one push on one platform, with unique-device bitmaps.
#[derive(Debug, Default)]
struct PlatformCounts {
    targeted: u64,
    sent_online: u64,
    stored_offline: u64,
    vendor_sent: u64,
    vendor_failed: BTreeMap<String, u64>,
    delivered: RoaringBitmap,
    opened: RoaringBitmap,
}

type PushKey = (AppId, String);

struct Worker {
    store: DynStore,
    live: Arc<LiveInbox>,
    cursors: Arc<CursorTable>,
    linger: Duration,
    last_sweep: Instant,
    /// Reports of pushes touched lately, loaded from the store on first touch so that unique
    /// counting continues where the last run stopped (or where the report left memory).
    reports: HashMap<PushKey, BTreeMap<String, PlatformCounts>>,
    /// Reports touched since the last sweep; the others leave memory at the sweep. Every push
    /// keeps a delivered bitmap per platform (8 KiB for 9,000 devices): kept for every push
    /// since start, they grew a server pushing every second by a megabyte a minute.
    touched: HashSet<PushKey>,
    dirty: HashSet<(AppId, String, String)>,
    minutes: HashMap<(AppId, String, i64), (u64, u64)>,
    days: HashMap<(AppId, String), (u64, u64, u64)>,
}

impl Worker {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Receipt>,
        interval: Duration,
        stopping: WaitForCancellationFutureOwned,
    ) {
        tokio::pin!(stopping);
        let mut tick = tokio::time::interval(interval);
        let queued = metrics::gauge!("herald_receipts_queued");
        loop {
            queued.set(rx.len() as f64);
            tokio::select! {
                () = &mut stopping => {
                    // Shutdown: what is queued now is all there will be.
                    while let Ok(receipt) = rx.try_recv() {
                        self.apply(receipt).await;
                    }
                    self.flush().await;
                    return;
                }
                receipt = rx.recv() => match receipt {
                    Some(Receipt::Flush(done)) => {
                        self.flush().await;
                        let _ = done.send(());
                    }
                    Some(receipt) => self.apply(receipt).await,
                    None => {
                        self.flush().await;
                        return;
                    }
                },
                _ = tick.tick() => self.flush().await,
            }
        }
    }

    async fn apply(&mut self, receipt: Receipt) {
        match receipt {
            Receipt::Ack { app, device, before, after } => {
                self.on_ack(app, &device, &before, &after).await
            }
            Receipt::Reached { app, device, push_id, opened } => {
                self.on_reached(app, &device, &push_id, opened).await
            }
            Receipt::Dispatched(counts) => self.on_dispatched(counts).await,
            Receipt::Vendor { app, push_id, platform, sent, failed } => {
                let counts = self.counts(app, &push_id, &platform).await;
                counts.vendor_sent += sent;
                for (reason, n) in failed {
                    *counts.vendor_failed.entry(reason).or_default() += n;
                }
            }
            Receipt::VendorRestarted { app, push_id } => {
                let platforms: Vec<String> =
                    self.report(app, &push_id).await.keys().cloned().collect();
                for platform in platforms {
                    let counts = self.counts(app, &push_id, &platform).await;
                    counts.vendor_sent = 0;
                    counts.vendor_failed.clear();
                }
            }
            Receipt::Flush(done) => {
                self.flush().await;
                let _ = done.send(());
            }
        }
    }

    async fn on_ack(&mut self, app: AppId, device: &DeviceRef, before: &Cursor, after: &Cursor) {
        let mut newly: Vec<u64> =
            after.acked_above.iter().copied().filter(|s| !before.has(*s)).collect();
        let ranged = self.live.range(app, before.acked.saturating_add(1), after.acked);
        newly.extend(ranged.iter().map(|p| p.seq).filter(|s| !before.has(*s)));
        tracing::debug!(app_id = app, account = device.account_id, ?before, ?after, ?newly, "ack");
        for seq in newly {
            let Some(push) = self.live.range(app, seq, seq).pop() else {
                tracing::debug!(app_id = app, seq, "acked push not in the live inbox");
                continue;
            };
            if push.recipients.contains(device.account_id) && push.admits(&device.platform) {
                self.delivered(app, &push.id, device, false).await;
            }
        }
    }

    async fn on_reached(&mut self, app: AppId, device: &DeviceRef, push_id: &str, opened: bool) {
        let known =
            self.live.get(app, push_id).is_some() || self.store.push(app, push_id).await.is_ok();
        if known {
            // An open implies the push arrived, even if its ack was lost.
            self.delivered(app, push_id, device, opened).await;
        }
    }

    async fn delivered(&mut self, app: AppId, push_id: &str, device: &DeviceRef, opened: bool) {
        let counts = self.counts(app, push_id, &device.platform).await;
        let new_delivery = counts.delivered.insert(device.device_key);
        let new_open = opened && counts.opened.insert(device.device_key);
        if !new_delivery && !new_open {
            return;
        }
        let minute = Utc::now().timestamp().div_euclid(60);
        let entry = self.minutes.entry((app, push_id.to_owned(), minute)).or_default();
        entry.0 += u64::from(new_delivery);
        entry.1 += u64::from(new_open);
        let day = self.days.entry((app, day_of(Utc::now()))).or_default();
        day.1 += u64::from(new_delivery);
        day.2 += u64::from(new_open);
    }

    async fn on_dispatched(&mut self, dispatch: DispatchCounts) {
        let report = self.report(dispatch.app, &dispatch.push_id).await;
        if report.values().any(|counts| counts.targeted > 0) {
            // A dispatch finished again after a crash or by another node: its counts were
            // written by the first one, whose online sends they describe.
            return;
        }
        for (platform, (targeted, sent_online, stored_offline)) in &dispatch.platforms {
            let counts = self.counts(dispatch.app, &dispatch.push_id, platform).await;
            counts.targeted = *targeted;
            counts.sent_online = *sent_online;
            counts.stored_offline = *stored_offline;
        }
        self.days.entry((dispatch.app, day_of(Utc::now()))).or_default().0 += 1;
    }

    /// The counts of a push on a platform, loaded from the store the first time; marks them
    /// for the next flush.
    async fn counts(&mut self, app: AppId, push_id: &str, platform: &str) -> &mut PlatformCounts {
        self.dirty.insert((app, push_id.to_owned(), platform.to_owned()));
        self.report(app, push_id).await.entry(platform.to_owned()).or_default()
    }

    /// The counts of a push on every platform, loaded from the store the first time.
    async fn report(&mut self, app: AppId, push_id: &str) -> &mut BTreeMap<String, PlatformCounts> {
        let key = (app, push_id.to_owned());
        if !self.touched.contains(&key) {
            self.touched.insert(key.clone());
        }
        if !self.reports.contains_key(&key) {
            // Flushes write whole rows: counting on from zero while the store is away would
            // overwrite what it holds, so the load waits for it.
            let store = &self.store;
            let stored = match super::until_available(|| store.push_report(app, push_id)).await {
                Ok(rows) => {
                    rows.into_iter().map(|row| (row.platform.clone(), counts_of(row))).collect()
                }
                Err(err) => {
                    tracing::error!(app_id = app, %push_id, %err, "cannot load a push report");
                    BTreeMap::new()
                }
            };
            self.reports.insert(key.clone(), stored);
        }
        self.reports.entry(key).or_default()
    }

    /// Lets the devices that left go, and the reports not touched since the last sweep, once
    /// per `linger`. After a successful write only: a device swept before it would lose its
    /// cursor if the write failed, and a report its counts.
    fn sweep(&mut self) {
        if self.last_sweep.elapsed() >= self.linger {
            self.last_sweep = Instant::now();
            self.cursors.cursors.lock().unwrap_or_else(|p| p.into_inner()).sweep();
            let touched = std::mem::take(&mut self.touched);
            self.reports.retain(|key, _| touched.contains(key));
            metrics::gauge!("herald_receipts_cached_reports").set(self.reports.len() as f64);
        }
    }

    async fn flush(&mut self) {
        let cursors = {
            let mut state = self.cursors.cursors.lock().unwrap_or_else(|p| p.into_inner());
            let dirty: Vec<_> = state.dirty.drain().collect();
            dirty
                .into_iter()
                .filter_map(|key| {
                    state.by_device.get(&key).map(|s| (key.0, key.1, s.cursor.clone()))
                })
                .collect::<Vec<_>>()
        };
        let flush = ReceiptsFlush {
            reports: self
                .dirty
                .iter()
                .filter_map(|(app, push_id, platform)| self.row(*app, push_id, platform))
                .collect(),
            minutes: self
                .minutes
                .iter()
                .map(|((app, push_id, minute), (delivered, opened))| MinuteCount {
                    app: *app,
                    push_id: push_id.clone(),
                    minute: *minute,
                    delivered: *delivered,
                    opened: *opened,
                })
                .collect(),
            days: self
                .days
                .iter()
                .map(|((app, day), (pushes, delivered, opened))| DayCount {
                    app: *app,
                    day: day.clone(),
                    pushes: *pushes,
                    delivered: *delivered,
                    opened: *opened,
                })
                .collect(),
            cursors,
        };
        if flush.is_empty() {
            self.sweep();
            return;
        }
        if !flush.reports.is_empty() {
            herald_pause::at("receipts.flush").await;
        }
        let started = std::time::Instant::now();
        let flushed = self.store.flush_receipts(&flush).await;
        super::store_time("flush_receipts", started);
        match flushed {
            Ok(()) => {
                self.sweep();
                self.dirty.clear();
                self.minutes.clear();
                self.days.clear();
                // Everything is in the store now; a long-running server reloads what it touches
                // again instead of keeping every report it ever saw.
                if self.reports.len() > MAX_CACHED_REPORTS {
                    self.reports.clear();
                }
            }
            Err(err) => {
                // Nothing is dropped: the cursors are marked again and the rest stays pending.
                tracing::error!(%err, "cannot write receipts; retrying at the next flush");
                let mut state = self.cursors.cursors.lock().unwrap_or_else(|p| p.into_inner());
                state.dirty.extend(flush.cursors.into_iter().map(|(app, device, _)| (app, device)));
            }
        }
    }

    fn row(&self, app: AppId, push_id: &str, platform: &str) -> Option<PlatformReport> {
        let counts = self.reports.get(&(app, push_id.to_owned()))?.get(platform)?;
        Some(PlatformReport {
            app,
            push_id: push_id.to_owned(),
            platform: platform.to_owned(),
            targeted: counts.targeted,
            sent_online: counts.sent_online,
            stored_offline: counts.stored_offline,
            vendor_sent: counts.vendor_sent,
            vendor_failed: counts.vendor_failed.clone(),
            delivered: serialize(&counts.delivered),
            opened: serialize(&counts.opened),
        })
    }
}

fn counts_of(row: PlatformReport) -> PlatformCounts {
    PlatformCounts {
        targeted: row.targeted,
        sent_online: row.sent_online,
        stored_offline: row.stored_offline,
        vendor_sent: row.vendor_sent,
        vendor_failed: row.vendor_failed,
        delivered: deserialize(&row.delivered),
        opened: deserialize(&row.opened),
    }
}

/// The UTC day of a moment, as `YYYY-MM-DD`.
pub fn day_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

pub fn serialize(bitmap: &RoaringBitmap) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(bitmap.serialized_size());
    // Writing to a Vec cannot fail.
    let _ = bitmap.serialize_into(&mut bytes);
    bytes
}

pub fn deserialize(bytes: &[u8]) -> RoaringBitmap {
    if bytes.is_empty() {
        return RoaringBitmap::new();
    }
    RoaringBitmap::deserialize_from(bytes).unwrap_or_else(|err| {
        tracing::error!(%err, "unreadable report bitmap; counting from zero");
        RoaringBitmap::new()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use herald_store::{NewApp, SqliteOptions, SqliteStore};

    use super::*;

    fn phone() -> DeviceRef {
        DeviceRef { account_id: 1, device_key: 1, platform: "ios".into() }
    }

    fn held(receipts: &Receipts) -> usize {
        receipts.lock().by_device.len()
    }

    /// Receipts over a new SQLite store with one app; flushed only when asked, and every flush
    /// sweeps (linger zero).
    async fn receipts_on_a_new_store() -> (tempfile::TempDir, DynStore, AppId, Receipts) {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore =
            Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).await.unwrap());
        let new_app = NewApp {
            name: "a".into(),
            key: "k".into(),
            secret: "s".into(),
            limits: Default::default(),
        };
        let app = store.create_app(new_app).await.unwrap().id;
        let receipts = Receipts::spawn(
            store.clone(),
            Arc::new(LiveInbox::new(0)),
            Duration::from_secs(3600),
            Duration::ZERO,
            &crate::tasks::Tasks::default(),
        );
        (dir, store, app, receipts)
    }

    #[tokio::test]
    async fn devices_leave_memory_after_their_last_session_and_keep_their_cursor() {
        let (_dir, _, app, receipts) = receipts_on_a_new_store().await;

        assert_eq!(receipts.login(app, "d1", phone()).await.unwrap(), Cursor::default());
        receipts.ack(app, "d1", Some(5), &[]).await.unwrap();
        // A reconnect that overlaps the end of the first session.
        receipts.login(app, "d1", phone()).await.unwrap();
        receipts.logout(app, "d1");
        receipts.flush().await;
        receipts.flush().await;
        assert_eq!(held(&receipts), 1, "a session still holds it");

        receipts.logout(app, "d1");
        receipts.flush().await;
        assert_eq!(held(&receipts), 1, "kept for one flush: late acks still count");
        receipts.flush().await;
        assert_eq!(held(&receipts), 0);

        let cursor = receipts.login(app, "d1", phone()).await.unwrap();
        assert_eq!(cursor.acked, 5, "read back from the store");
    }

    /// A report leaves memory once untouched for a sweep; touched again, it is read back and
    /// counts each device once, as if it had stayed.
    #[tokio::test]
    async fn reports_leave_memory_and_count_on_where_they_left_off() {
        let (_dir, store, app, receipts) = receipts_on_a_new_store().await;
        let push = herald_store::NewPush {
            app,
            id: "p1".into(),
            audience: r#"{"all":true}"#.into(),
            message: "{}".into(),
            notification: None,
            sender: None,
            platforms: None,
            ttl_secs: 60,
            idempotency_key: None,
            push_at: Utc::now(),
            broadcast: false,
            source: "native".into(),
            vendor_push: false,
            quota: None,
        };
        store.create_push(push).await.unwrap();
        let other = DeviceRef { account_id: 2, device_key: 2, platform: "ios".into() };
        let delivered = || async {
            let rows = store.push_report(app, "p1").await.unwrap();
            rows.iter().map(|row| deserialize(&row.delivered).len()).sum::<u64>()
        };

        receipts.reached(app, phone(), "p1", false);
        receipts.flush().await;
        // Untouched through a whole sweep: out of memory.
        receipts.flush().await;
        receipts.flush().await;
        receipts.reached(app, phone(), "p1", false);
        receipts.reached(app, other, "p1", false);
        receipts.flush().await;
        assert_eq!(delivered().await, 2, "the first device once, the second once");
    }
}
