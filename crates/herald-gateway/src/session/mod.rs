//! One client connection, from the WebSocket upgrade to the close frame.
//!
//! A session is first [`UnidentifiedSession`] (waiting for a hello within the hello timeout),
//! then [`IdentifiedSession`] (registered, syncing the inbox, forwarding live pushes). Each
//! state consumes itself into the next, so an unidentified connection has no way to reach the
//! registry or the inbox.

mod budget;
mod identified;
mod unidentified;

use std::future::Future;
use std::time::Duration;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::admission::{Admitted, Refusal};
use crate::protocol::{CloseCode, ErrorCode, ErrorFrame, ServerFrame};
use crate::socket::{ClientSocket, ClientUpgrade};
use crate::Gateway;

use budget::FrameBudget;
use identified::IdentifiedSession;
use unidentified::UnidentifiedSession;

/// Handle the `GET /v1/connect` route: upgrade to a WebSocket configured for many mostly idle
/// connections (small buffers, capped message size) and serve one client session on it.
///
/// Answers 503 once the gateway is shutting down, while it holds `max_connections` or while
/// `max_unidentified` connections wait for their hello, and 429 while the client's address has `max_connections_per_ip` open
/// (the address is known when the server is served with `ConnectInfo<SocketAddr>`).
pub async fn connect(
    State(gateway): State<Gateway>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    upgrade: ClientUpgrade,
) -> Response {
    if gateway.is_shut_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let ip = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let admitted = match gateway.inner.admission.admit(ip) {
        Ok(admitted) => admitted,
        Err(refusal) => return refused(refusal),
    };
    let shared = gateway.clone();
    upgrade.accept(shared.settings(), move |socket| serve(gateway, socket, admitted))
}

fn refused(refusal: Refusal) -> Response {
    let (status, label) = match refusal {
        Refusal::Full(_) => (StatusCode::SERVICE_UNAVAILABLE, "max_connections"),
        Refusal::PerIp(_) => (StatusCode::TOO_MANY_REQUESTS, "per_ip"),
        Refusal::Unidentified(_) => (StatusCode::SERVICE_UNAVAILABLE, "unidentified"),
    };
    metrics::counter!("herald_gateway_refused_total", "limit" => label).increment(1);
    (status, [(header::RETRY_AFTER, "5")], refusal.to_string()).into_response()
}

fn serve(
    gateway: Gateway,
    socket: ClientSocket,
    admitted: Admitted,
) -> impl Future<Output = ()> + Send {
    // The task's own future holds only boxes: each phase's state (handshake, session, close)
    // exists only while that phase runs, and no value outlives its phase in this future's
    // layout. Idle connections are most of them, so every byte here counts many times.
    let guard = gateway.track_connection();
    let shutdown = gateway.inner.shutdown.subscribe();
    let budget = FrameBudget::new(gateway.settings().client_frame_burst);
    let conn = Conn { gateway, socket, shutdown, read_failed: false, budget };
    let Admitted { conn: place, hello } = admitted;
    let hello = Box::pin(UnidentifiedSession::new(conn, hello).on_hello());
    async move {
        let _guard = guard;
        let _place = place;
        let session = match hello.await {
            Some(session) => Box::pin(session.run()),
            None => return,
        };
        session.await;
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The server closes with this code.
    Close(CloseCode),
    /// The client sent a close frame; tungstenite answers it.
    ClientClosed,
    /// The connection broke; nothing more can be sent.
    Lost,
}

impl End {
    fn label(self) -> &'static str {
        match self {
            End::Close(code) => code.label(),
            End::ClientClosed => "client_closed",
            End::Lost => "connection_lost",
        }
    }
}

/// The socket and what every state of a session needs around it.
pub(crate) struct Conn {
    gateway: Gateway,
    socket: ClientSocket,
    shutdown: watch::Receiver<bool>,
    /// Reading failed mid-message: the rest of it is still unread in the socket.
    read_failed: bool,
    /// Frames the client may still send before it is closed with 4013.
    budget: FrameBudget,
}

impl Conn {
    /// Sends one frame, flushing it.
    async fn send(&mut self, frame: &ServerFrame) -> Result<(), End> {
        let text = frame.encode().into();
        self.socket.send(Message::Text(text)).await.map_err(|_| End::Lost)
    }

    /// Sends an error frame; the session goes on unless the caller ends it.
    async fn send_error(&mut self, code: ErrorCode, message: impl Into<String>) -> Result<(), End> {
        self.send(&ServerFrame::Error(ErrorFrame::new(code, message))).await
    }

    /// Sends an error frame and returns the close that follows it. Bounded by the close
    /// timeout: a client that does not read cannot hold the connection with it.
    async fn reject(
        &mut self,
        code: ErrorCode,
        message: impl Into<String>,
        close: CloseCode,
    ) -> End {
        let limit = self.gateway.settings().close_timeout;
        match tokio::time::timeout(limit, self.send_error(code, message)).await {
            Ok(Ok(())) => End::Close(close),
            Ok(Err(end)) => end,
            Err(_) => End::Lost,
        }
    }

    /// Counts one frame from the client against its budget; a client over it is closed with
    /// 4013 (after an error frame saying so).
    async fn count_frame(&mut self) -> Result<(), End> {
        let settings = self.gateway.settings();
        let (rate, burst) = (settings.client_frame_rate, settings.client_frame_burst);
        if self.budget.spend(rate, burst, tokio::time::Instant::now()) {
            return Ok(());
        }
        let message = format!(
            "more than {rate} frames a second (bursts of {burst}); ack cumulatively with up_to"
        );
        Err(self.reject(ErrorCode::RateLimited, message, CloseCode::RateLimited).await)
    }

    /// Resolves once the gateway shuts down.
    async fn shutting_down(shutdown: &mut watch::Receiver<bool>) {
        // An error means the gateway is gone: that is a shutdown too.
        let _ = shutdown.wait_for(|&down| down).await;
    }

    /// Ends the connection: sends the close frame if there is one to send and waits (bounded by
    /// the close timeout) for the client's answer, so that the close frame is not lost to a
    /// reset; a client that stopped reading cannot hold the connection longer than that.
    async fn finish(mut self, end: End) {
        metrics::counter!("herald_gateway_disconnects_total", "reason" => end.label()).increment(1);
        tracing::debug!(reason = end.label(), "session ended");
        let limit = self.gateway.settings().close_timeout;
        let socket = &mut self.socket;
        let read_failed = self.read_failed;
        let _ = tokio::time::timeout(limit, async move {
            match end {
                End::Lost => return,
                End::ClientClosed => {}
                End::Close(code) => {
                    let frame =
                        CloseFrame { code: code.code().into(), reason: code.reason().into() };
                    if socket.send(Message::Close(Some(frame))).await.is_err() {
                        return;
                    }
                }
            }
            if read_failed {
                // The client's answer cannot be read any more, and dropping a socket with
                // unread input resets the connection, which may destroy the close frame
                // before the client reads it: give the client the timeout to read it.
                std::future::pending::<()>().await;
            } else {
                while let Some(Ok(_)) = socket.next().await {}
            }
        })
        .await;
        // tungstenite queues its answer to the client's close without flushing it.
        let _ = tokio::time::timeout(limit, self.socket.get_mut().flush()).await;
    }
}

impl Conn {
    /// Ends the session after a read error; an oversized message is answered with an error
    /// frame before the close, the rest cannot be answered.
    async fn on_read_error(&mut self, err: tungstenite::Error) -> End {
        self.read_failed = true;
        match err {
            tungstenite::Error::Capacity(detail) => {
                let close = CloseCode::FrameTooLarge;
                self.reject(ErrorCode::FrameTooLarge, detail.to_string(), close).await
            }
            tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_) => {
                End::Close(CloseCode::ProtocolViolation)
            }
            _ => End::Lost,
        }
    }
}

/// The idle deadline after a frame from the client.
fn deadline(after: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + after
}
