//! The client's background task: serves one connection at a time, reconnects with backoff when
//! it is lost, and passes pushes on without duplicates.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use herald_protocol::{
    Ack, ClientFrame, CloseCode, Hello, Opened, ProtocolError, Retry, ServerFrame, Welcome,
    PROTOCOL_VERSION,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::backoff::Backoff;
use crate::{ClientError, ConnectOptions, Event, Shared};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Frames kept while disconnected (explicit acks, opens), sent after the next welcome. Bounded:
/// the oldest go first, they are reports, not deliveries.
const BACKLOG_LIMIT: usize = 1_024;

/// How long a close handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Requests from the [`crate::Client`] handle.
#[derive(Debug)]
pub(crate) enum Command {
    /// The cumulative ack moved (the value is in [`Shared::acked`]).
    Ack,
    AckSeqs(Vec<u64>),
    Opened(String),
    Close,
}

/// A connection that got its welcome.
pub(crate) struct Established {
    ws: Ws,
    welcome: Welcome,
}

/// Opens a connection, says hello (resuming after `last_seq`) and waits for the welcome.
pub(crate) async fn establish(
    url: &str,
    options: &ConnectOptions,
    last_seq: u64,
) -> Result<Established, ClientError> {
    let token = options.token.token().await.map_err(ClientError::Token)?;
    let hello = ClientFrame::Hello(Hello {
        v: PROTOCOL_VERSION,
        token,
        device_id: options.device_id.clone(),
        platform: options.platform.clone(),
        package: options.package.clone(),
        vendor_token: options.vendor_token.clone(),
        last_seq,
        app_version: options.app_version.clone(),
        locale: options.locale.clone(),
        time_zone: options.time_zone.clone(),
    });
    // Small buffers: a client holds one mostly idle connection, and load tests hold thousands.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0);
    let attempt = async {
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
            .await
            .map_err(connect_error)?;
        ws.send(Message::text(hello.encode())).await.map_err(connect_error)?;
        loop {
            let message = match ws.next().await {
                None => return Err(ClientError::Connect("closed before the welcome".into())),
                Some(message) => message.map_err(connect_error)?,
            };
            match message {
                Message::Text(text) => match ServerFrame::decode(text.as_str()) {
                    Ok(ServerFrame::Welcome(welcome)) => return Ok(Established { ws, welcome }),
                    // The close frame that follows carries the code.
                    Ok(ServerFrame::Error(error)) => {
                        tracing::debug!(?error, "hello refused");
                    }
                    Ok(other) => {
                        let detail = format!("expected a welcome, got {other:?}");
                        return Err(ClientError::Protocol(detail));
                    }
                    Err(err) => return Err(ClientError::Protocol(err.to_string())),
                },
                Message::Close(frame) => {
                    let (code, reason) = close_parts(frame);
                    return Err(ClientError::Closed { code: code.unwrap_or(1005), reason });
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(options.connect_timeout, attempt)
        .await
        .map_err(|_| ClientError::Timeout("the welcome"))?
}

fn connect_error(err: tungstenite::Error) -> ClientError {
    match err {
        tungstenite::Error::Http(response) => {
            ClientError::Connect(format!("HTTP {} instead of a WebSocket", response.status()))
        }
        other => ClientError::Connect(other.to_string()),
    }
}

fn close_parts(frame: Option<CloseFrame>) -> (Option<u16>, String) {
    match frame {
        Some(frame) => (Some(u16::from(frame.code)), frame.reason.as_str().to_owned()),
        None => (None, String::new()),
    }
}

/// How a connection ended.
enum Outcome {
    /// The application closed the client or dropped it.
    Finished,
    /// The connection was lost or closed by the server.
    Lost { code: Option<u16>, reason: String },
}

pub(crate) struct Worker {
    url: String,
    options: ConnectOptions,
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Highest seq passed on to the application: pushes at or below it are duplicates.
    highest_seen: u64,
    /// Highest cumulative ack written to a connection.
    ack_sent: u64,
    backlog: VecDeque<ClientFrame>,
    backoff: Backoff,
}

impl Worker {
    pub(crate) fn new(
        url: String,
        options: ConnectOptions,
        shared: Arc<Shared>,
        events: mpsc::Sender<Event>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        let backoff = Backoff::new(options.reconnect.clone());
        Self {
            highest_seen: options.last_seq,
            ack_sent: options.last_seq,
            url,
            options,
            shared,
            events,
            commands,
            backlog: VecDeque::new(),
            backoff,
        }
    }

    /// Serves connections until the application closes the client or reconnecting ends.
    pub(crate) async fn run(mut self, first: Established) {
        let stopped = self.run_until_stopped(first).await;
        *self.shared.stopped.lock().unwrap_or_else(PoisonError::into_inner) = Some(stopped);
    }

    async fn run_until_stopped(&mut self, first: Established) -> ClientError {
        let mut established = first;
        loop {
            let (code, reason) = match self.serve(established).await {
                Outcome::Finished => return ClientError::Stopped,
                Outcome::Lost { code, reason } => (code, reason),
            };
            tracing::debug!(?code, %reason, "connection lost");
            match self.reconnect(code, reason).await {
                Ok(next) => established = next,
                Err(stopped) => return stopped,
            }
        }
    }

    /// Waits and retries until a connection gets its welcome, or gives up.
    async fn reconnect(
        &mut self,
        mut code: Option<u16>,
        mut reason: String,
    ) -> Result<Established, ClientError> {
        loop {
            let retry =
                code.and_then(CloseCode::from_code).map_or(Retry::Reconnect, CloseCode::retry);
            let give_up = match retry {
                Retry::Stop => true,
                Retry::NewToken => !self.options.token.can_renew(),
                Retry::Reconnect => false,
            };
            let delay = if give_up { None } else { self.backoff.next_delay() };
            let event = Event::Disconnected { code, reason: reason.clone(), retry_in: delay };
            let _ = self.events.send(event).await;
            let Some(delay) = delay else {
                return Err(match code {
                    Some(code) => ClientError::Closed { code, reason },
                    None => ClientError::Connect(reason),
                });
            };
            if !self.wait(delay).await {
                return Err(ClientError::Stopped);
            }
            let last_seq = self.shared.acked.load(Ordering::Acquire);
            match establish(&self.url, &self.options, last_seq).await {
                Ok(established) => {
                    self.backoff.reset();
                    return Ok(established);
                }
                Err(ClientError::Closed { code: c, reason: r }) => (code, reason) = (Some(c), r),
                Err(err) => (code, reason) = (None, err.to_string()),
            }
        }
    }

    /// Sleeps while keeping commands; false if the application closed the client meanwhile.
    async fn wait(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                command = self.commands.recv() => match command {
                    None | Some(Command::Close) => return false,
                    // The next hello carries the cumulative ack.
                    Some(Command::Ack) => {}
                    Some(Command::AckSeqs(seqs)) => {
                        self.keep(ClientFrame::Ack(Ack { up_to: None, seqs }));
                    }
                    Some(Command::Opened(push_id)) => {
                        self.keep(ClientFrame::Opened(Opened { push_id }));
                    }
                },
            }
        }
    }

    fn keep(&mut self, frame: ClientFrame) {
        if self.backlog.len() >= BACKLOG_LIMIT {
            self.backlog.pop_front();
        }
        self.backlog.push_back(frame);
    }

    /// Serves one connection until it ends.
    async fn serve(&mut self, established: Established) -> Outcome {
        let Established { mut ws, welcome } = established;
        self.shared.connects.fetch_add(1, Ordering::Relaxed);
        let connected = Event::Connected {
            session_id: welcome.session_id.clone(),
            resume_from: welcome.resume_from,
            webpush_key: welcome.webpush_key.clone(),
        };
        if self.events.send(connected).await.is_err() {
            return self.close_after_commands(ws).await;
        }
        // An ack written to a connection that then broke may never have been recorded: send
        // the cumulative ack again on every new connection, once anything was acked at all.
        self.ack_sent = self.ack_sent.min(self.options.last_seq);
        if let Err(lost) = self.send_ack(&mut ws).await {
            return lost;
        }
        while let Some(frame) = self.backlog.pop_front() {
            if let Err(lost) = send(&mut ws, &frame).await {
                self.backlog.push_front(frame);
                return lost;
            }
        }
        let heartbeat = Duration::from_secs(welcome.heartbeat_secs.max(1));
        let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { return close(ws).await };
                    match self.carry_out(&mut ws, command).await {
                        Ok(true) => {}
                        Ok(false) => return close(ws).await,
                        Err(lost) => return lost,
                    }
                }
                message = ws.next() => {
                    last_heard = Instant::now();
                    let message = match message {
                        None => return lost(None, "connection closed"),
                        Some(Err(err)) => return lost(None, &err.to_string()),
                        Some(Ok(message)) => message,
                    };
                    match message {
                        Message::Text(text)
                            if !self.on_server_frame(ServerFrame::decode(text.as_str())).await =>
                        {
                            return self.close_after_commands(ws).await;
                        }
                        Message::Close(frame) => {
                            let (code, reason) = close_parts(frame);
                            // Answer the close so the server sees a clean end.
                            let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.flush()).await;
                            return Outcome::Lost { code, reason };
                        }
                        _ => {}
                    }
                }
                _ = ticker.tick() => {
                    // The server answers every ping; this much silence means the path is dead.
                    if last_heard.elapsed() > heartbeat * 3 {
                        return lost(None, "no answer to heartbeats");
                    }
                    if let Err(lost) = send(&mut ws, &ClientFrame::Ping {}).await {
                        return lost;
                    }
                }
            }
        }
    }

    /// Handles one server frame; false when the application has gone.
    async fn on_server_frame(&mut self, frame: Result<ServerFrame, ProtocolError>) -> bool {
        let event = match frame {
            Ok(ServerFrame::Push(push)) => {
                if push.seq <= self.highest_seen {
                    self.shared.duplicates.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                self.highest_seen = push.seq;
                self.shared.pushes.fetch_add(1, Ordering::Relaxed);
                Event::Push(push)
            }
            Ok(ServerFrame::Recall(recall)) => Event::Recall(recall),
            Ok(ServerFrame::Error(error)) => Event::ServerError(error),
            Ok(ServerFrame::Pong {} | ServerFrame::Welcome(_)) => return true,
            // A newer server may send frames this client does not know: skip them.
            Err(err) => {
                tracing::debug!(%err, "skipping a frame");
                return true;
            }
        };
        self.events.send(event).await.is_ok()
    }

    /// The application closed the client while a frame was on its way to it: what it asked
    /// before closing (its last ack above all) is sent first, then the close.
    async fn close_after_commands(&mut self, mut ws: Ws) -> Outcome {
        while let Ok(command) = self.commands.try_recv() {
            match self.carry_out(&mut ws, command).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(lost) => return lost,
            }
        }
        close(ws).await
    }

    /// Sends what the application asked for; `Ok(false)` when it asked to close. A frame the
    /// connection could not take is kept for the next one.
    async fn carry_out(&mut self, ws: &mut Ws, command: Command) -> Result<bool, Outcome> {
        let frame = match command {
            Command::Close => return Ok(false),
            Command::Ack => return self.send_ack(ws).await.map(|()| true),
            Command::AckSeqs(seqs) => ClientFrame::Ack(Ack { up_to: None, seqs }),
            Command::Opened(push_id) => ClientFrame::Opened(Opened { push_id }),
        };
        if let Err(lost) = send(ws, &frame).await {
            self.keep(frame);
            return Err(lost);
        }
        Ok(true)
    }

    /// Sends the cumulative ack if it moved past what was sent.
    async fn send_ack(&mut self, ws: &mut Ws) -> Result<(), Outcome> {
        let acked = self.shared.acked.load(Ordering::Acquire);
        if acked <= self.ack_sent {
            return Ok(());
        }
        send(ws, &ClientFrame::Ack(Ack { up_to: Some(acked), seqs: Vec::new() })).await?;
        self.ack_sent = acked;
        Ok(())
    }
}

async fn send(ws: &mut Ws, frame: &ClientFrame) -> Result<(), Outcome> {
    ws.send(Message::text(frame.encode())).await.map_err(|err| lost(None, &err.to_string()))
}

fn lost(code: Option<u16>, reason: &str) -> Outcome {
    Outcome::Lost { code, reason: reason.to_owned() }
}

/// Closes with 1000 and waits (bounded) for the server's answer.
async fn close(mut ws: Ws) -> Outcome {
    let frame = CloseFrame { code: WsCloseCode::Normal, reason: "closed".into() };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
    Outcome::Finished
}
