//! Acks on their way to the inbox. A session hands an ack over and goes on forwarding pushes;
//! one writer per gateway records the acks, coalesced per device (a newer cumulative ack
//! replaces an older one still waiting) and in batches ([`Inbox::ack_batch`]).
//!
//! Why not record each ack in its session: a store that writes acks one at a time (SQLite
//! commits each) cannot keep up with thousands of devices acking every second. Sessions that
//! waited for their ack stopped forwarding pushes meanwhile, and thousands of acks queued in
//! front of the store delayed the dispatcher's own writes by seconds. Here at most one batch is
//! in flight, waiting acks cost one entry per device, and the dispatcher waits for one batch at
//! most.
//!
//! A session that ends first records its device's waiting ack itself ([`AckQueue::flush`]),
//! so an ack sent before a close is recorded before the close completes, as it was when acks
//! were recorded in line.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use herald_core::AppId;
use tokio::sync::Notify;

use crate::inbox::{AckRecord, Inbox};
use crate::protocol::MAX_ACK_SEQS;

/// Acks written per call of [`Inbox::ack_batch`].
const BATCH: usize = 256;

type Key = (AppId, String);

pub(crate) struct AckQueue {
    inbox: Arc<dyn Inbox>,
    state: Mutex<State>,
    /// Fires after every batch (and when the writer stops), for [`AckQueue::flush`] and
    /// [`AckQueue::idle`].
    written: Notify,
}

#[derive(Default)]
struct State {
    waiting: HashMap<Key, Waiting>,
    /// Devices in the order their acks arrived; may hold keys already taken (skipped).
    order: VecDeque<Key>,
    /// Devices of the batch being written.
    writing: Vec<Key>,
    /// Whether a writer task runs.
    running: bool,
}

#[derive(Default)]
struct Waiting {
    up_to: Option<u64>,
    seqs: Vec<u64>,
}

impl Waiting {
    fn merge(&mut self, up_to: Option<u64>, seqs: &[u64]) {
        self.up_to = self.up_to.max(up_to);
        self.seqs.extend_from_slice(seqs);
        if self.seqs.len() > MAX_ACK_SEQS {
            // Single acks only count as delivered; a device that sends more than the store
            // takes loses the oldest of those counts rather than growing this queue.
            let excess = self.seqs.len() - MAX_ACK_SEQS;
            self.seqs.drain(..excess);
            metrics::counter!("herald_gateway_ack_seqs_dropped_total").increment(excess as u64);
        }
    }

    fn into_record(self, (app, device_id): Key) -> AckRecord {
        AckRecord { app, device_id, up_to: self.up_to, seqs: self.seqs }
    }
}

impl AckQueue {
    pub(crate) fn new(inbox: Arc<dyn Inbox>) -> Self {
        Self { inbox, state: Mutex::default(), written: Notify::new() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues an ack of the device; never waits. Must run inside a tokio runtime (the writer
    /// is spawned on demand and ends when nothing waits).
    /// Devices whose acks wait to be recorded or are being recorded.
    pub(crate) fn pending(&self) -> usize {
        let state = self.state();
        state.waiting.len() + state.writing.len()
    }

    pub(crate) fn enqueue(
        self: &Arc<Self>,
        app: AppId,
        device_id: &str,
        up_to: Option<u64>,
        seqs: &[u64],
    ) {
        let mut state = self.state();
        let key = (app, device_id.to_owned());
        match state.waiting.get_mut(&key) {
            Some(waiting) => waiting.merge(up_to, seqs),
            None => {
                let mut waiting = Waiting::default();
                waiting.merge(up_to, seqs);
                state.waiting.insert(key.clone(), waiting);
                state.order.push_back(key);
            }
        }
        if !std::mem::replace(&mut state.running, true) {
            drop(state);
            tokio::spawn(self.clone().write_all());
        }
    }

    async fn write_all(self: Arc<Self>) {
        loop {
            let batch = {
                let mut state = self.state();
                let mut batch = Vec::new();
                while batch.len() < BATCH {
                    let Some(key) = state.order.pop_front() else { break };
                    if let Some(waiting) = state.waiting.remove(&key) {
                        state.writing.push(key.clone());
                        batch.push(waiting.into_record(key));
                    }
                }
                if batch.is_empty() {
                    state.running = false;
                    // The queue is drained: give the memory of a burst back.
                    state.order = VecDeque::new();
                    state.waiting = HashMap::new();
                    drop(state);
                    self.written.notify_waiters();
                    return;
                }
                batch
            };
            self.record(batch).await;
            self.state().writing.clear();
            self.written.notify_waiters();
        }
    }

    async fn record(&self, batch: Vec<AckRecord>) {
        let count = batch.len() as u64;
        if let Err(err) = self.inbox.ack_batch(batch).await {
            // The devices' next acks (or their hellos' last_seq) carry the same information;
            // until then they may receive these pushes again, which at-least-once allows.
            tracing::warn!(%err, count, "recording acks failed");
            metrics::counter!("herald_gateway_ack_failures_total").increment(count);
        }
    }

    /// Records the device's waiting ack now (or waits until the writer has), so that a
    /// session's acks are in the inbox before its connection is closed.
    pub(crate) async fn flush(&self, app: AppId, device_id: &str) {
        let key = (app, device_id.to_owned());
        loop {
            let written = self.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            let taken = {
                let mut state = self.state();
                match state.waiting.remove(&key) {
                    Some(waiting) => Some(waiting.into_record(key.clone())),
                    None if state.writing.contains(&key) => None,
                    None => return,
                }
            };
            match taken {
                Some(record) => {
                    // Its stale entry in `order` is skipped by the writer.
                    self.record(vec![record]).await;
                    return;
                }
                None => written.await,
            }
        }
    }

    /// Waits until no ack waits or is being written.
    pub(crate) async fn idle(&self) {
        loop {
            let written = self.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            if !self.state().running {
                return;
            }
            written.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::MemoryInbox;

    #[tokio::test]
    async fn acks_are_coalesced_per_device_and_flushed() {
        let inbox = Arc::new(MemoryInbox::default());
        let queue = Arc::new(AckQueue::new(inbox.clone()));
        queue.enqueue(1, "d1", Some(3), &[]);
        queue.enqueue(1, "d1", Some(5), &[9]);
        queue.enqueue(1, "d2", Some(1), &[]);
        queue.flush(1, "d1").await;
        assert_eq!(inbox.cursor(1, "d1"), Some(5));
        queue.idle().await;
        assert_eq!(inbox.cursor(1, "d2"), Some(1));
        assert_eq!(inbox.delivered(1, "d1").into_iter().collect::<Vec<_>>(), [9]);
        // Nothing waits: a flush returns at once.
        queue.flush(1, "d3").await;
    }

    #[test]
    fn single_acks_are_capped() {
        let mut waiting = Waiting::default();
        let seqs: Vec<u64> = (1..=MAX_ACK_SEQS as u64 + 10).collect();
        waiting.merge(None, &seqs);
        assert_eq!(waiting.seqs.len(), MAX_ACK_SEQS);
        assert_eq!(waiting.seqs[0], 11, "the oldest go");
    }
}
