//! A connection before its hello: it may only say hello, within the hello timeout.

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::{Conn, End, IdentifiedSession};
use crate::admission::HelloSlot;
use crate::auth::AuthError;
use crate::inbox::{DeviceInfo, InboxError};
use crate::protocol::{ClientFrame, CloseCode, ErrorCode, Hello, ProtocolError};
use crate::socket::shed_read_buffer;

/// Why a hello was not accepted: the error frame to send and the close that follows.
struct Rejection {
    code: ErrorCode,
    message: String,
    close: CloseCode,
}

pub(super) struct UnidentifiedSession {
    conn: Conn,
    /// The connection's place among those waiting for a hello, given back when it arrives.
    waiting: Option<HelloSlot>,
}

impl UnidentifiedSession {
    pub(super) fn new(conn: Conn, waiting: HelloSlot) -> Self {
        Self { conn, waiting: Some(waiting) }
    }

    /// Waits for the hello, authenticates it, logs the device in and registers it; consumes
    /// the session into an identified one, or closes the connection and returns `None`.
    pub(super) async fn on_hello(mut self) -> Option<IdentifiedSession> {
        let hello = self.await_hello().await;
        // The client has spoken: what follows is the server's work, not its waiting.
        self.waiting = None;
        let end = match hello {
            Ok((hello, hello_len)) => {
                match self.after_hello(hello_len).await.identify(&hello).await {
                    Ok(session) => return Some(session),
                    Err((mut conn, rejection)) => {
                        let end =
                            conn.reject(rejection.code, rejection.message, rejection.close).await;
                        conn.finish(end).await;
                        return None;
                    }
                }
            }
            Err(end) => end,
        };
        self.conn.finish(end).await;
        None
    }

    /// The hello and the length of its frame's payload.
    async fn await_hello(&mut self) -> Result<(Hello, usize), End> {
        let conn = &mut self.conn;
        let timeout = tokio::time::sleep(conn.gateway.settings().hello_timeout);
        tokio::pin!(timeout);
        loop {
            let message = tokio::select! {
                () = Conn::shutting_down(&mut conn.shutdown) => {
                    return Err(End::Close(CloseCode::ShuttingDown))
                }
                () = &mut timeout => return Err(End::Close(CloseCode::HelloTimeout)),
                message = conn.socket.next() => message,
            };
            let text = match message {
                None => return Err(End::Lost),
                Some(Err(err)) => return Err(conn.on_read_error(err).await),
                Some(Ok(Message::Text(text))) => text,
                // Control frames are answered by the WebSocket layer; keep waiting.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    conn.count_frame().await?;
                    continue;
                }
                Some(Ok(Message::Close(_))) => return Err(End::ClientClosed),
                Some(Ok(Message::Binary(_) | Message::Frame(_))) => {
                    let err = ProtocolError::Binary;
                    return Err(conn
                        .reject(err.code(), err.to_string(), CloseCode::ProtocolViolation)
                        .await);
                }
            };
            return match ClientFrame::decode(text.as_str()) {
                Ok(ClientFrame::Hello(hello)) => Ok((hello, text.len())),
                Ok(_) => {
                    let message = "the first frame must be a hello";
                    Err(conn
                        .reject(ErrorCode::HelloRequired, message, CloseCode::ProtocolViolation)
                        .await)
                }
                Err(err @ ProtocolError::UnsupportedVersion(_)) => Err(conn
                    .reject(err.code(), err.to_string(), CloseCode::UnsupportedVersion)
                    .await),
                Err(err) => Err(conn
                    .reject(err.code(), err.to_string(), CloseCode::ProtocolViolation)
                    .await),
            };
        }
    }

    /// Lets the connection hold a small read buffer rather than one the size of the hello,
    /// when the hello is all the client sent so far.
    async fn after_hello(self, hello_len: usize) -> Self {
        let Conn { gateway, socket, shutdown, read_failed, budget } = self.conn;
        let (socket, _) = shed_read_buffer(socket, hello_len, gateway.settings()).await;
        let conn = Conn { gateway, socket, shutdown, read_failed, budget };
        Self { conn, waiting: self.waiting }
    }

    /// Authenticates and logs in; on failure returns what to tell the client.
    async fn identify(self, hello: &Hello) -> Result<IdentifiedSession, (Conn, Rejection)> {
        let conn = self.conn;
        let gateway = conn.gateway.clone();
        let identity = match gateway.inner.auth.verify(&hello.token).await {
            Ok(identity) => identity,
            Err(AuthError::Unavailable(detail)) => {
                tracing::warn!(%detail, "authenticator unavailable");
                let message = "authentication is unavailable, retry later".to_owned();
                return Err((
                    conn,
                    Rejection { code: ErrorCode::Internal, message, close: CloseCode::Internal },
                ));
            }
            // One answer for every kind of bad token: telling them apart helps only forgers.
            Err(_) => {
                let message = "bad or expired token".to_owned();
                return Err((
                    conn,
                    Rejection {
                        code: ErrorCode::Unauthorized,
                        message,
                        close: CloseCode::Unauthorized,
                    },
                ));
            }
        };
        let Some(app_slot) = gateway.inner.admission.join_app(identity.app) else {
            let max = gateway.inner.admission.max_per_app();
            let message = format!("the app has {max} connections, as many as this server allows");
            return Err((
                conn,
                Rejection {
                    code: ErrorCode::TooManyConnections,
                    message,
                    close: CloseCode::TooManyConnections,
                },
            ));
        };
        let device = DeviceInfo::from(hello);
        let login = match gateway.inner.inbox.login(&identity, &device).await {
            Ok(login) => login,
            Err(InboxError::Refused(message)) => {
                return Err((
                    conn,
                    Rejection { code: ErrorCode::Refused, message, close: CloseCode::Refused },
                ));
            }
            Err(InboxError::Unavailable(detail)) => {
                tracing::warn!(%detail, app = identity.app, "inbox unavailable at login");
                let message = "the server is unavailable, retry later".to_owned();
                return Err((
                    conn,
                    Rejection { code: ErrorCode::Internal, message, close: CloseCode::Internal },
                ));
            }
        };
        // Registered before the inbox is read: a push made meanwhile is queued live and,
        // if the inbox has it too, skipped by seq. Either way nothing falls in between.
        let registration = gateway.registry().register(identity.app, login.account_id, &device);
        let resume_from = hello.last_seq.max(login.cursor);
        if hello.last_seq > login.cursor {
            // The device acked these pushes on a connection whose acks were not recorded (the
            // server went down first): its hello says so, and counts as that ack.
            gateway.inner.acks.enqueue(identity.app, &device.device_id, Some(hello.last_seq), &[]);
        }
        tracing::debug!(
            app = identity.app,
            account = login.account_id,
            device = %device.device_id,
            resume_from,
            "session identified"
        );
        Ok(IdentifiedSession::new(
            conn,
            identity,
            login.account_id,
            device.for_session(),
            registration,
            app_slot,
            resume_from,
            login.webpush_key,
        ))
    }
}
