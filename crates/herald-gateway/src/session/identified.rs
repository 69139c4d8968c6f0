//! A connection after a good hello: it is registered, catches up from the inbox, then forwards
//! live pushes and handles acks, opens and pings.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use chrono::Utc;
use futures_util::StreamExt;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::{deadline, Conn, End};
use crate::admission::AppSlot;
use crate::auth::Identity;
use crate::inbox::DeviceInfo;
use crate::outbox::Outbound;
use crate::protocol::{
    Ack, ClientFrame, CloseCode, ErrorCode, ProtocolError, ServerFrame, Welcome,
};
use crate::registry::Registration;

/// Looked up once: a lookup by name costs a hash and a lock per write, and a push to all
/// makes one write per connection. The recorder is installed before any session runs.
static FRAMES_SENT: LazyLock<metrics::Counter> =
    LazyLock::new(|| metrics::counter!("herald_gateway_frames_sent_total"));

/// What woke the session loop.
enum Event {
    /// Live frames were queued for this connection.
    Queued,
    /// The client sent something (or the connection ended).
    Received(Option<Result<Message, tungstenite::Error>>),
}

pub(super) struct IdentifiedSession {
    conn: Conn,
    identity: Identity,
    account_id: u32,
    device: DeviceInfo,
    registration: Registration,
    /// The session's place among its app's (`max_connections_per_app`).
    _app_slot: AppSlot,
    /// Pushes above this seq are due: `max(hello.last_seq, stored cursor)`.
    resume_from: u64,
    /// Highest push seq sent on this connection (starts at `resume_from`). Pushes at or below
    /// it are skipped, so the inbox sync and the live queue never send one twice, and acks
    /// above it are of pushes this connection never sent.
    last_sent: u64,
    /// Fires when the client has been silent for the idle timeout.
    idle: Pin<Box<Sleep>>,
    /// For the welcome, then dropped: idle connections should not hold it.
    webpush_key: Option<Box<str>>,
}

impl IdentifiedSession {
    // One argument per part of the session; a struct of them would only rename the list.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        conn: Conn,
        identity: Identity,
        account_id: u32,
        device: DeviceInfo,
        registration: Registration,
        app_slot: AppSlot,
        resume_from: u64,
        webpush_key: Option<String>,
    ) -> Self {
        let idle =
            Box::pin(tokio::time::sleep_until(deadline(conn.gateway.settings().idle_timeout)));
        Self {
            conn,
            identity,
            account_id,
            device,
            registration,
            _app_slot: app_slot,
            resume_from,
            last_sent: resume_from,
            idle,
            webpush_key: webpush_key.map(String::into_boxed_str),
        }
    }

    /// Serves the session until it ends, then closes the connection. The session leaves the
    /// registry before the close frame is sent, so nothing more is queued for it.
    #[allow(clippy::manual_async_fn)] // on purpose, see below
    pub(super) fn run(mut self) -> impl Future<Output = ()> + Send {
        // An async block rather than an async fn: an async fn keeps a second copy of its
        // arguments in its state, which every connection would pay for.
        async move {
            let end = match self.serve().await {
                Ok(never) => match never {},
                Err(end) => end,
            };
            drop(self.registration);
            // Acks sent before the close are recorded before the close completes: a client
            // that reconnects right after finds its cursor where it left it.
            let acks = self.conn.gateway.inner.acks.clone();
            let flush = acks.flush(self.identity.app, &self.device.device_id);
            let limit = self.conn.gateway.settings().close_timeout;
            let _ = Box::pin(tokio::time::timeout(limit, flush)).await;
            self.conn.gateway.inner.inbox.logout(self.identity.app, &self.device.device_id);
            Box::pin(self.conn.finish(end)).await;
        }
    }

    async fn serve(&mut self) -> Result<std::convert::Infallible, End> {
        // Every await but the loop's select is boxed: the state of a future is as large as its
        // largest await, and an idle connection should pay only for the select.
        let welcome = self.welcome();
        Box::pin(self.sync_inbox(welcome)).await?;
        let mut batch = Vec::new();
        loop {
            let Self { conn, registration, idle, .. } = self;
            // In a fixed order, the cheap checks first: nothing is polled after the branch that
            // is ready. The client is read before the queue, so that a stream of pushes cannot
            // keep its acks unread. A shutdown closes the outbox.
            let event = tokio::select! {
                biased;
                message = conn.socket.next() => Event::Received(message),
                () = idle.as_mut() => return Err(End::Close(CloseCode::IdleTimeout)),
                next = registration.outbox().next(&mut batch) => {
                    next.map_err(End::Close)?;
                    Event::Queued
                }
            };
            match event {
                Event::Queued => {
                    let texts = self.live_texts(&mut batch);
                    // Give back the memory of a burst: idle connections should hold none.
                    if batch.capacity() > 4 {
                        batch = Vec::new();
                    }
                    Box::pin(self.write(texts)).await?;
                }
                Event::Received(message) => Box::pin(self.on_message(message)).await?,
            }
        }
    }

    /// The welcome, which leaves with the first page of the inbox (alone if there is none):
    /// one send and one wake-up of the client less per login.
    fn welcome(&mut self) -> Utf8Bytes {
        let settings = self.conn.gateway.settings();
        let welcome = ServerFrame::Welcome(Welcome {
            session_id: format!("{:016x}", rand::random::<u64>()),
            server_time: Utc::now(),
            heartbeat_secs: settings.heartbeat.as_secs_f64().ceil().max(1.0) as u64,
            resume_from: self.resume_from,
            webpush_key: self.webpush_key.take().map(String::from),
        });
        welcome.encode().into()
    }

    /// Sends the welcome and the stored pushes after the resume point, page by page, in seq
    /// order.
    async fn sync_inbox(&mut self, welcome: Utf8Bytes) -> Result<(), End> {
        let mut welcome = Some(welcome);
        let page = self.conn.gateway.settings().pending_page.max(1);
        loop {
            let after = self.last_sent;
            let inbox = self.conn.gateway.inner.inbox.clone();
            let pending =
                inbox.pending(self.identity.app, self.account_id, &self.device, after, page);
            let pushes = tokio::select! {
                pushes = pending => pushes,
                code = self.registration.outbox().closed() => return Err(End::Close(code)),
            };
            let pushes = pushes.map_err(|err| {
                tracing::warn!(%err, app = self.identity.app, "inbox unavailable during sync");
                End::Close(CloseCode::Internal)
            })?;
            let full_page = pushes.len() >= page;
            let mut texts = Vec::with_capacity(pushes.len() + 1);
            texts.extend(welcome.take());
            for push in pushes {
                // The contract says increasing seq; anything else would be a duplicate or
                // break the order the client relies on.
                if push.seq > self.last_sent {
                    self.last_sent = push.seq;
                    texts.push(ServerFrame::Push(push).encode().into());
                }
            }
            self.write(texts).await?;
            // A page that did not move the cursor would be fetched again forever.
            if !full_page || self.last_sent == after {
                return Ok(());
            }
        }
    }

    /// Turns queued frames into texts to send, dropping pushes already sent.
    fn live_texts(&mut self, batch: &mut Vec<Outbound>) -> Vec<Utf8Bytes> {
        let mut texts = Vec::with_capacity(batch.len());
        for item in batch.drain(..) {
            let frame = match item {
                Outbound::Push { seq, .. } if seq <= self.last_sent => continue,
                Outbound::Push { seq, frame } => {
                    self.last_sent = seq;
                    frame
                }
                Outbound::Other(frame) => frame,
            };
            texts.push(frame.into_text());
        }
        texts
    }

    /// Sends text frames and flushes once. Raced against the reasons to stop, because a
    /// client that stopped reading would otherwise block the write forever; they are polled
    /// only when the write has to wait, which it rarely does.
    async fn write(&mut self, texts: Vec<Utf8Bytes>) -> Result<(), End> {
        let count = texts.len() as u64;
        let Self { conn, registration, idle, .. } = self;
        let write = conn.socket.get_mut().send_texts(&texts);
        tokio::select! {
            biased;
            written = write => written.map_err(|_| End::Lost)?,
            code = registration.outbox().closed() => return Err(End::Close(code)),
            () = idle.as_mut() => return Err(End::Close(CloseCode::IdleTimeout)),
        }
        if count > 0 {
            FRAMES_SENT.increment(count);
        }
        Ok(())
    }

    async fn on_message(
        &mut self,
        message: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<(), End> {
        let message = match message {
            None => return Err(End::Lost),
            Some(Err(err)) => return Err(self.conn.on_read_error(err).await),
            Some(Ok(message)) => message,
        };
        if !matches!(message, Message::Close(_)) {
            self.conn.count_frame().await?;
        }
        let idle_timeout = self.conn.gateway.settings().idle_timeout;
        self.idle.as_mut().reset(deadline(idle_timeout));
        match message {
            Message::Text(text) => self.on_client_msg(&text).await,
            Message::Binary(_) | Message::Frame(_) => {
                let err = ProtocolError::Binary;
                self.conn.send_error(err.code(), err.to_string()).await
            }
            // Answered by the WebSocket layer; they still count as signs of life.
            Message::Ping(_) | Message::Pong(_) => Ok(()),
            Message::Close(_) => Err(End::ClientClosed),
        }
    }

    /// Handles one text frame. Bad frames are answered with an error frame and the session
    /// goes on: one bad frame from a buggy client is no reason to drop its pushes.
    async fn on_client_msg(&mut self, text: &Utf8Bytes) -> Result<(), End> {
        match ClientFrame::decode(text.as_str()) {
            Err(err) => self.conn.send_error(err.code(), err.to_string()).await,
            Ok(ClientFrame::Hello(_)) => {
                let message = "this connection already said hello";
                self.conn.send_error(ErrorCode::AlreadyIdentified, message).await
            }
            Ok(ClientFrame::Ping {}) => self.conn.send(&ServerFrame::Pong {}).await,
            Ok(ClientFrame::Ack(ack)) => self.on_ack(ack).await,
            Ok(ClientFrame::Opened(opened)) => {
                metrics::counter!("herald_gateway_opened_total").increment(1);
                let inbox = self.conn.gateway.inner.inbox.clone();
                let app = self.identity.app;
                if let Err(err) = inbox.opened(app, &self.device.device_id, &opened.push_id).await {
                    tracing::warn!(%err, app, "recording an open failed");
                    return self.conn.send_error(ErrorCode::Internal, "open not recorded").await;
                }
                Ok(())
            }
        }
    }

    /// Passes acks of pushes this connection sent (or that were below its resume point) to the
    /// inbox; acks beyond them would move the cursor past pushes the device never got.
    async fn on_ack(&mut self, ack: Ack) -> Result<(), End> {
        let last = self.last_sent;
        let (known, unknown): (Vec<u64>, Vec<u64>) = ack.seqs.iter().partition(|&&s| s <= last);
        let up_to = ack.up_to.filter(|&s| s <= last);
        if up_to != ack.up_to || !unknown.is_empty() {
            let message = format!("acked a seq above {last}, the last one sent here; ignored");
            self.conn.send_error(ErrorCode::UnknownSeq, message).await?;
        }
        if up_to.is_none() && known.is_empty() {
            return Ok(());
        }
        metrics::counter!("herald_gateway_acks_total").increment(1);
        // Recorded by the gateway's ack writer: this session goes on forwarding pushes.
        let app = self.identity.app;
        self.conn.gateway.inner.acks.enqueue(app, &self.device.device_id, up_to, &known);
        Ok(())
    }
}
