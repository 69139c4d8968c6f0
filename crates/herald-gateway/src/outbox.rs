//! A connection's bounded outgoing queue: the fan-out side offers frames without ever waiting,
//! the session drains them in batches, and either side can close it with a reason.
//!
//! A hand-rolled queue rather than a tokio `mpsc` channel because a bounded channel allocates a
//! block of 32 slots up front, and idle connections (most of them) should cost nothing here;
//! it also lets a close carry its reason and drop waiting frames at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;

use crate::protocol::{CloseCode, Frame};

/// Frames waiting in all outboxes of the process, for the queue gauge: one atomic add per
/// offer, shared by every connection, rather than a metric call per frame.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Frames waiting in all outboxes.
pub(crate) fn queued_frames() -> usize {
    QUEUED.load(Ordering::Relaxed)
}

/// One queued frame.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// A push; the session skips it if it already sent this seq from the inbox.
    Push { seq: u64, frame: Frame },
    /// Any other frame (a recall).
    Other(Frame),
}

/// What happened to an offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    /// The queue was full: it is now closed with [`CloseCode::TooSlow`].
    Full,
    /// The connection is already closing.
    Closed,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Outbound>,
    closed: Option<CloseCode>,
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { state: Mutex::default(), notify: Notify::new(), capacity }
    }

    /// Queues `item` unless the queue is closed or full; a full queue closes the connection,
    /// because a client that cannot keep up must not make memory grow.
    #[cfg(test)]
    pub(crate) fn offer(&self, item: Outbound) -> Offer {
        self.offer_all(&mut vec![item])
    }

    /// Queues all of `items` (leaving the vector empty) with one wake-up of the session, or
    /// none of them when the queue is closed or they do not fit; not fitting closes the
    /// connection like a full queue.
    pub(crate) fn offer_all(&self, items: &mut Vec<Outbound>) -> Offer {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let offer = if state.closed.is_some() {
            Offer::Closed
        } else if state.items.len() + items.len() > self.capacity {
            state.closed = Some(CloseCode::TooSlow);
            state.drop_items();
            Offer::Full
        } else {
            QUEUED.fetch_add(items.len(), Ordering::Relaxed);
            state.items.extend(items.drain(..));
            Offer::Queued
        };
        drop(state);
        items.clear();
        if offer != Offer::Closed {
            self.notify.notify_one();
        }
        offer
    }

    /// Closes the queue with `code` (the first close wins) and drops waiting frames.
    pub(crate) fn close(&self, code: CloseCode) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.closed.is_none() {
            state.closed = Some(code);
            state.drop_items();
        }
        drop(state);
        self.notify.notify_one();
    }

    /// Waits for frames and moves all waiting ones into `batch`, or returns the close reason.
    /// Cancel-safe: frames stay queued until this returns them.
    pub(crate) async fn next(&self, batch: &mut Vec<Outbound>) -> Result<(), CloseCode> {
        loop {
            // `notify_one` stores a permit when nobody waits, so a frame offered between the
            // check and the await still wakes us.
            let notified = self.notify.notified();
            {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(code) = state.closed {
                    return Err(code);
                }
                if !state.items.is_empty() {
                    QUEUED.fetch_sub(state.items.len(), Ordering::Relaxed);
                    batch.extend(state.items.drain(..));
                    // Give back the memory of a burst: idle connections should hold none.
                    if state.items.capacity() > 16 {
                        state.items = VecDeque::new();
                    }
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// Waits until the queue is closed; frames offered meanwhile stay queued.
    pub(crate) async fn closed(&self) -> CloseCode {
        loop {
            let notified = self.notify.notified();
            if let Some(code) = self.state.lock().unwrap_or_else(PoisonError::into_inner).closed {
                return code;
            }
            notified.await;
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).items.len()
    }
}

impl State {
    fn drop_items(&mut self) {
        QUEUED.fetch_sub(self.items.len(), Ordering::Relaxed);
        self.items = VecDeque::new();
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.state.get_mut().unwrap_or_else(PoisonError::into_inner).drop_items();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerFrame;

    fn frame() -> Outbound {
        Outbound::Other(Frame::encode(&ServerFrame::Pong {}))
    }

    #[tokio::test]
    async fn full_queue_closes_and_frees() {
        let outbox = Outbox::new(2);
        assert_eq!(outbox.offer(frame()), Offer::Queued);
        assert_eq!(outbox.offer(frame()), Offer::Queued);
        assert_eq!(outbox.offer(frame()), Offer::Full);
        assert_eq!(outbox.len(), 0);
        assert_eq!(outbox.offer(frame()), Offer::Closed);
        let mut batch = Vec::new();
        assert_eq!(outbox.next(&mut batch).await, Err(CloseCode::TooSlow));
        assert_eq!(outbox.closed().await, CloseCode::TooSlow);
    }

    #[tokio::test]
    async fn next_drains_in_order_and_wakes_on_offer() {
        let outbox = std::sync::Arc::new(Outbox::new(8));
        let waiter = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let mut batch = Vec::new();
                outbox.next(&mut batch).await.map(|()| batch.len())
            })
        };
        tokio::task::yield_now().await;
        outbox.offer(frame());
        assert_eq!(waiter.await.unwrap(), Ok(1));
        for seq in 1..=3 {
            outbox.offer(Outbound::Push { seq, frame: Frame::encode(&ServerFrame::Pong {}) });
        }
        let mut batch = Vec::new();
        outbox.next(&mut batch).await.unwrap();
        let seqs: Vec<u64> = batch
            .iter()
            .filter_map(|o| match o {
                Outbound::Push { seq, .. } => Some(*seq),
                Outbound::Other(_) => None,
            })
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        outbox.close(CloseCode::Replaced);
        outbox.close(CloseCode::ShuttingDown);
        assert_eq!(outbox.closed().await, CloseCode::Replaced);
    }
}
