//! herald-client: the Rust client SDK of herald. Connects a device over the WebSocket protocol
//! (`docs/protocol.md`), yields its pushes in sequence order without duplicates, acks them,
//! reports opens, keeps the connection alive with heartbeats, and reconnects with backoff and
//! jitter, resuming after the last acked push.
//!
//! ```no_run
//! # async fn demo() -> Result<(), herald_client::ClientError> {
//! use herald_client::{mint_token, Client, ConnectOptions};
//! let token = mint_token("app-key", "app-secret", "alice", 4_000_000_000);
//! let options = ConnectOptions::new(token, "device-1", "android", "com.example");
//! let mut client = Client::connect("ws://127.0.0.1:8080/v1/connect", options).await?;
//! while let Some(push) = client.next_push().await {
//!     println!("{} {}", push.seq, push.message);
//!     client.ack(push.seq)?;
//! }
//! # Ok(()) }
//! ```

mod backoff;
mod error;
mod options;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use error::ClientError;
pub use herald_protocol::token::mint as mint_token;
pub use herald_protocol::{
    CloseCode, ErrorCode, ErrorFrame, Push, Recall, VendorKind, VendorToken,
};
pub use options::{ConnectOptions, Reconnect, TokenFuture, TokenSource};

use worker::{Command, Worker};

/// Something that happened on the client's connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A connection was established (the first one, or after a reconnect).
    /// `webpush_key` is the app's VAPID public key (base64url) when it can send Web Push.
    Connected { session_id: String, resume_from: u64, webpush_key: Option<String> },
    /// A push, never one with a seq already passed on by this client.
    Push(Push),
    /// A push was withdrawn.
    Recall(Recall),
    /// The server reported an error with something this client sent.
    ServerError(ErrorFrame),
    /// The connection was lost or closed; `retry_in` says when the next attempt is made,
    /// `None` means the client stops (the event stream ends after this).
    Disconnected { code: Option<u16>, reason: String, retry_in: Option<Duration> },
}

/// Counters of one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections established (welcomes received).
    pub connects: u64,
    /// Pushes passed on to the application.
    pub pushes: u64,
    /// Pushes dropped because their seq was already passed on (resent after a reconnect).
    pub duplicates_dropped: u64,
}

/// State shared between the handle and its background task.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Highest seq acked cumulatively; the resume point of the next hello.
    pub(crate) acked: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) pushes: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    /// Why the background task stopped, once it has.
    pub(crate) stopped: Mutex<Option<ClientError>>,
}

/// A connected client. Dropping it closes the connection.
#[derive(Debug)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::Receiver<Event>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Client {
    /// Connects to `url` (e.g. `ws://host:port/v1/connect`), says hello and waits for the
    /// welcome; later disconnections are handled in the background.
    ///
    /// # Errors
    /// The first connection's failure: [`ClientError::Closed`] with 4001 for a bad token,
    /// [`ClientError::Connect`] when the server cannot be reached, and so on.
    pub async fn connect(
        url: impl Into<String>,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let url = url.into();
        let shared = Arc::new(Shared::default());
        shared.acked.store(options.last_seq, Ordering::Relaxed);
        let established = worker::establish(&url, &options, options.last_seq).await?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::channel(options.event_capacity.max(1));
        let worker = Worker::new(url, options, shared.clone(), event_tx, command_rx);
        let task = tokio::spawn(worker.run(established));
        Ok(Self { commands, events, shared, task })
    }

    /// The next event; `None` once the client has stopped (see [`Client::stop_reason`]).
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The next push, skipping other events; `None` once the client has stopped.
    pub async fn next_push(&mut self) -> Option<Push> {
        loop {
            if let Event::Push(push) = self.next_event().await? {
                return Some(push);
            }
        }
    }

    /// Acks every push up to and including `seq`: the server will not send them again, and the
    /// next connection resumes after them. Acks only move forward.
    ///
    /// # Errors
    /// [`ClientError::Stopped`] when the client has stopped.
    pub fn ack(&self, seq: u64) -> Result<(), ClientError> {
        self.shared.acked.fetch_max(seq, Ordering::AcqRel);
        self.send(Command::Ack)
    }

    /// Acks single pushes out of order (counted as delivered; the resume point is unchanged).
    ///
    /// # Errors
    /// [`ClientError::Stopped`] when the client has stopped.
    pub fn ack_seqs(&self, seqs: Vec<u64>) -> Result<(), ClientError> {
        self.send(Command::AckSeqs(seqs))
    }

    /// Reports that the user opened the notification of `push_id`.
    ///
    /// # Errors
    /// [`ClientError::Stopped`] when the client has stopped.
    pub fn opened(&self, push_id: impl Into<String>) -> Result<(), ClientError> {
        self.send(Command::Opened(push_id.into()))
    }

    /// Highest seq acked cumulatively: persist it and pass it as
    /// [`ConnectOptions::last_seq`] when the app starts again.
    pub fn last_acked(&self) -> u64 {
        self.shared.acked.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            connects: self.shared.connects.load(Ordering::Relaxed),
            pushes: self.shared.pushes.load(Ordering::Relaxed),
            duplicates_dropped: self.shared.duplicates.load(Ordering::Relaxed),
        }
    }

    /// Why the client stopped, once it has (the event stream has ended).
    pub fn stop_reason(&self) -> Option<ClientError> {
        self.shared.stopped.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Closes the connection (close code 1000) and waits for the background task to end.
    pub async fn close(self) {
        let Client { commands, events, task, .. } = self;
        // A task blocked on a full event queue wakes up when the queue goes away.
        drop(events);
        let _ = commands.send(Command::Close);
        let _ = task.await;
    }

    fn send(&self, command: Command) -> Result<(), ClientError> {
        self.commands.send(command).map_err(|_| ClientError::Stopped)
    }
}
