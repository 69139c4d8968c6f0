//! The client's WebSocket: the HTTP/1.1 upgrade of `GET /v1/connect` and the socket a session
//! reads and writes.
//!
//! Most connections are idle most of the time, so what an idle one holds is multiplied by
//! every client. Frames are gathered in a write buffer of the connection's own
//! ([`ReleasingIo`]) that is freed whenever it has been written out, so a connection keeps no
//! memory of its largest burst. The session writes its text frames straight into it
//! ([`ReleasingIo::send_texts`]); tungstenite reads, answers pings and closes, writing its
//! own frames into the same buffer. The read buffer the hello grew is given back after it
//! ([`shed_read_buffer`]).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::settings::GatewaySettings;

/// A client's WebSocket once upgraded.
pub(crate) type ClientSocket = WebSocketStream<ReleasingIo<TokioIo<Upgraded>>>;

/// Why a request to `/v1/connect` is not upgraded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpgradeRefusal {
    #[error("a WebSocket upgrade is a GET request")]
    NotGet,
    #[error("a WebSocket upgrade needs HTTP/1.1")]
    NotHttp11,
    #[error("the Connection header does not include 'upgrade'")]
    NoConnectionUpgrade,
    #[error("the Upgrade header is not 'websocket'")]
    NotWebSocket,
    #[error("the Sec-WebSocket-Version header is not 13")]
    UnsupportedVersion,
    #[error("the Sec-WebSocket-Key header is missing")]
    NoKey,
    #[error("the connection cannot be upgraded")]
    NotUpgradable,
}

impl IntoResponse for UpgradeRefusal {
    fn into_response(self) -> Response {
        let status = match self {
            UpgradeRefusal::NotGet => StatusCode::METHOD_NOT_ALLOWED,
            UpgradeRefusal::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
            UpgradeRefusal::UnsupportedVersion => {
                // RFC 6455 4.4: say which version is spoken.
                let version = [(header::SEC_WEBSOCKET_VERSION, "13")];
                return (StatusCode::UPGRADE_REQUIRED, version, self.to_string()).into_response();
            }
            _ => StatusCode::BAD_REQUEST,
        };
        (status, self.to_string()).into_response()
    }
}

/// A valid WebSocket upgrade request (RFC 6455 4.2.1), not yet answered.
pub struct ClientUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientUpgrade {
    type Rejection = UpgradeRefusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, UpgradeRefusal> {
        if parts.method != Method::GET {
            return Err(UpgradeRefusal::NotGet);
        }
        if parts.version != Version::HTTP_11 {
            return Err(UpgradeRefusal::NotHttp11);
        }
        let headers = &parts.headers;
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return Err(UpgradeRefusal::NoConnectionUpgrade);
        }
        if !has_token(headers, header::UPGRADE, "websocket") {
            return Err(UpgradeRefusal::NotWebSocket);
        }
        if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
            return Err(UpgradeRefusal::UnsupportedVersion);
        }
        let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or(UpgradeRefusal::NoKey)?.clone();
        let on_upgrade =
            parts.extensions.remove::<OnUpgrade>().ok_or(UpgradeRefusal::NotUpgradable)?;
        Ok(Self { key, on_upgrade })
    }
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
}

impl ClientUpgrade {
    /// Answers 101 and runs `serve` on the socket once the client has it. The task holds
    /// only what `serve` returns: everything else is gone by the time it runs.
    pub(crate) fn accept<F, Fut>(self, settings: &GatewaySettings, serve: F) -> Response
    where
        F: FnOnce(ClientSocket) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        let config = config_of(settings);
        let (write_at, max) = (settings.write_buffer_size, settings.max_write_buffer_size);
        tokio::spawn(async move {
            let socket = match on_upgrade.await {
                Ok(upgraded) => Box::pin(open(upgraded, config, write_at, max)).await,
                Err(err) => {
                    tracing::debug!(%err, "WebSocket upgrade failed");
                    return;
                }
            };
            serve(socket).await;
        });
        let headers = [
            (header::CONNECTION, "upgrade".to_owned()),
            (header::UPGRADE, "websocket".to_owned()),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ];
        (StatusCode::SWITCHING_PROTOCOLS, headers).into_response()
    }
}

/// Small buffers and capped messages, for many mostly idle connections.
fn config_of(settings: &GatewaySettings) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(settings.read_buffer_size)
        // Every frame goes straight to the `ReleasingIo`, which gathers them; tungstenite's
        // own buffer then never holds more than the frame being written.
        .write_buffer_size(0)
        .max_write_buffer_size(settings.max_write_buffer_size)
        .max_message_size(Some(settings.max_frame_size))
        .max_frame_size(Some(settings.max_frame_size))
}

async fn open(
    upgraded: Upgraded,
    config: WebSocketConfig,
    write_at: usize,
    max: usize,
) -> ClientSocket {
    let io = ReleasingIo::new(TokioIo::new(upgraded), write_at, max);
    WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await
}

/// Gives a socket that has read nothing but one client frame of `payload_len` bytes a fresh,
/// small read buffer, and returns whether it did. tungstenite's read buffer keeps the size of
/// the largest frame it has read for as long as the connection lives, and the hello is the
/// largest frame a client sends; later frames (acks, pings) are a few dozen bytes.
///
/// A socket that has read more than that frame keeps its buffer, which may hold the rest.
/// Every read of a frame consumes at least its shortest encoding, so when the bytes read
/// equal that, the buffer is empty and nothing is lost by starting over.
pub(crate) async fn shed_read_buffer<T>(
    socket: WebSocketStream<ReleasingIo<T>>,
    payload_len: usize,
    settings: &GatewaySettings,
) -> (WebSocketStream<ReleasingIo<T>>, bool)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    if socket.get_ref().bytes_read != client_frame_len(payload_len) {
        return (socket, false);
    }
    let io = socket.into_inner();
    (WebSocketStream::from_raw_socket(io, Role::Server, Some(config_of(settings))).await, true)
}

/// Bytes of the shortest encoding of a client (masked) frame with this payload (RFC 6455 5.2).
fn client_frame_len(payload_len: usize) -> u64 {
    let extended_len = match payload_len {
        0..=125 => 0,
        126..=65_535 => 2,
        _ => 8,
    };
    (2 + extended_len + 4 + payload_len) as u64
}

/// An I/O that gathers writes until a flush (or until `write_at` bytes wait), and frees its
/// buffer once everything in it has been written.
pub(crate) struct ReleasingIo<T> {
    inner: T,
    /// Bytes read from `inner` so far.
    bytes_read: u64,
    pending: Vec<u8>,
    /// Bytes of `pending` already written.
    written: usize,
    write_at: usize,
    max: usize,
}

impl<T> ReleasingIo<T> {
    pub(crate) fn new(inner: T, write_at: usize, max: usize) -> Self {
        Self { inner, bytes_read: 0, pending: Vec::new(), written: 0, write_at, max: max.max(1) }
    }

    /// Bytes waiting to be written.
    fn waiting(&self) -> usize {
        self.pending.len() - self.written
    }

    #[cfg(test)]
    fn buffer_capacity(&self) -> usize {
        self.pending.capacity()
    }
}

impl<T: AsyncWrite + Unpin> ReleasingIo<T> {
    /// Gathers a text frame from the server (RFC 6455 5.2: final, opcode 1, unmasked) with
    /// `payload`; false, taking nothing, when `max` bytes wait already and must be written
    /// first.
    fn gather_text(&mut self, payload: &[u8]) -> bool {
        if self.waiting() >= self.max {
            return false;
        }
        let mut header = [0u8; 10];
        header[0] = 0x81;
        let header = match payload.len() {
            len @ 0..=125 => {
                header[1] = len as u8;
                &header[..2]
            }
            len @ 126..=65_535 => {
                header[1] = 126;
                header[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                &header[..4]
            }
            len => {
                header[1] = 127;
                header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
                &header[..10]
            }
        };
        self.make_room(header.len() + payload.len());
        self.pending.extend_from_slice(header);
        self.pending.extend_from_slice(payload);
        true
    }

    /// Before `len` more bytes are gathered: drops what is written, reserves a write's worth.
    fn make_room(&mut self, len: usize) {
        if self.written > 0 && self.written >= self.pending.len() / 2 {
            // A socket that keeps taking part of it: drop the written half, not the buffer.
            self.pending.drain(..self.written);
            self.written = 0;
        }
        if self.pending.is_empty() {
            self.pending.reserve(self.write_at.max(len));
        }
    }

    /// Sends text frames, `write_at` bytes per write at most, and flushes once. The session
    /// sends its frames this way rather than through tungstenite, which would first copy each
    /// into a buffer of its own that keeps the size of the largest frame it held.
    pub(crate) async fn send_texts(&mut self, texts: &[impl AsRef<[u8]>]) -> io::Result<()> {
        for text in texts {
            let text = text.as_ref();
            while !self.gather_text(text) {
                // `max` bytes wait: only writing them out makes room.
                std::future::poll_fn(|cx| self.poll_write_out(cx)).await?;
            }
            if self.waiting() >= self.write_at {
                // Enough for one write; a full socket is no reason to stop gathering.
                std::future::poll_fn(|cx| match self.poll_write_out(cx) {
                    Poll::Pending => Poll::Ready(Ok(())),
                    done => done,
                })
                .await?;
            }
        }
        tokio::io::AsyncWriteExt::flush(self).await
    }

    /// Writes what waits until all of it is written (then frees the buffer) or the socket is
    /// full.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.waiting() > 0 {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        // Nothing waits: give the memory back rather than keep the capacity of a burst.
        self.pending = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ReleasingIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        self.bytes_read += (buf.filled().len() - before) as u64;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ReleasingIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.waiting() >= this.max {
            // Full: only writing some of it out makes room.
            if let Poll::Ready(Err(err)) = this.poll_write_out(cx) {
                return Poll::Ready(Err(err));
            }
            if this.waiting() >= this.max {
                return Poll::Pending;
            }
        }
        this.make_room(buf.len());
        this.pending.extend_from_slice(buf);
        if this.waiting() >= this.write_at {
            // Enough gathered for one write; a full socket is no reason to refuse the bytes.
            if let Poll::Ready(Err(err)) = this.poll_write_out(cx) {
                return Poll::Ready(Err(err));
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use futures_util::{SinkExt, StreamExt};
    use std::future::poll_fn;
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::tungstenite::Message;

    /// A socket that records each write and can be full.
    #[derive(Default)]
    struct Wire {
        writes: Vec<Vec<u8>>,
        full: bool,
    }

    impl AsyncWrite for Wire {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.full {
                return Poll::Pending;
            }
            self.writes.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// One poll of a write: `None` when it would wait.
    async fn try_write(io: &mut ReleasingIo<Wire>, bytes: &[u8]) -> Option<usize> {
        poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut *io).poll_write(cx, bytes) {
                Poll::Ready(written) => Some(written.expect("the wire never fails")),
                Poll::Pending => None,
            })
        })
        .await
    }

    #[tokio::test]
    async fn frames_leave_together_at_the_flush_and_the_buffer_is_freed() {
        let mut io = ReleasingIo::new(Wire::default(), 1024, 4096);
        for frame in [&b"one"[..], b"two", b"three"] {
            io.write_all(frame).await.unwrap();
        }
        assert!(io.inner.writes.is_empty(), "nothing written before the flush");
        io.flush().await.unwrap();
        assert_eq!(io.inner.writes, [b"onetwothree".to_vec()], "one write for three frames");
        assert_eq!(io.buffer_capacity(), 0, "an idle connection holds no write buffer");
    }

    #[tokio::test]
    async fn a_write_goes_out_once_write_at_bytes_wait() {
        let mut io = ReleasingIo::new(Wire::default(), 8, 4096);
        io.write_all(b"12345").await.unwrap();
        assert!(io.inner.writes.is_empty());
        io.write_all(b"6789").await.unwrap();
        assert_eq!(io.inner.writes, [b"123456789".to_vec()]);
        assert_eq!(io.buffer_capacity(), 0);
    }

    #[tokio::test]
    async fn a_full_socket_keeps_up_to_max_bytes_then_makes_the_writer_wait() {
        let wire = Wire { full: true, ..Wire::default() };
        let mut io = ReleasingIo::new(wire, 4, 10);
        assert_eq!(try_write(&mut io, b"abcdef").await, Some(6), "kept though not written");
        assert_eq!(try_write(&mut io, b"ghijkl").await, Some(6), "still under max before it");
        assert_eq!(try_write(&mut io, b"mn").await, None, "12 bytes wait: the writer waits");
        io.inner.full = false;
        io.flush().await.unwrap();
        assert_eq!(io.inner.writes.concat(), b"abcdefghijkl", "in order, nothing lost");
        assert_eq!(io.buffer_capacity(), 0);
    }

    type Pair = (
        WebSocketStream<ReleasingIo<tokio::io::DuplexStream>>,
        WebSocketStream<tokio::io::DuplexStream>,
    );

    /// A server socket as the gateway makes it, and a client talking to it.
    async fn connected() -> Pair {
        let (server, client) = tokio::io::duplex(64 * 1024);
        let settings = GatewaySettings::default();
        let io = ReleasingIo::new(server, settings.write_buffer_size, 64 * 1024);
        let server = WebSocketStream::from_raw_socket(io, Role::Server, Some(config_of(&settings)));
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None);
        (server.await, client.await)
    }

    async fn next_text(
        socket: &mut WebSocketStream<ReleasingIo<tokio::io::DuplexStream>>,
    ) -> String {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => text.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_socket_that_read_only_the_hello_starts_over_and_reads_on() {
        let settings = GatewaySettings::default();
        for hello in ["h".repeat(100), "h".repeat(600), "h".repeat(60_000)] {
            let (server, mut client) = connected().await;
            client.send(Message::text(hello.clone())).await.unwrap();
            let mut server = server;
            assert_eq!(next_text(&mut server).await, hello);
            let (mut server, renewed) = shed_read_buffer(server, hello.len(), &settings).await;
            assert!(renewed, "a {}-byte hello was all there was to read", hello.len());
            client.send(Message::text("ack")).await.unwrap();
            assert_eq!(next_text(&mut server).await, "ack");
            server.send(Message::text("welcome")).await.unwrap();
            assert_eq!(client.next().await.unwrap().unwrap(), Message::text("welcome"));
        }
    }

    #[tokio::test]
    async fn a_socket_that_read_past_the_hello_keeps_its_buffer_and_loses_nothing() {
        let settings = GatewaySettings::default();
        let (mut server, mut client) = connected().await;
        let hello = "h".repeat(600);
        client.feed(Message::text(hello.clone())).await.unwrap();
        client.feed(Message::text("ping")).await.unwrap();
        client.flush().await.unwrap();
        assert_eq!(next_text(&mut server).await, hello);
        let (mut server, renewed) = shed_read_buffer(server, hello.len(), &settings).await;
        assert!(!renewed, "the next frame may be in the buffer");
        assert_eq!(next_text(&mut server).await, "ping");
    }

    #[tokio::test]
    async fn texts_sent_past_tungstenite_are_frames_any_client_reads() {
        let (mut server, mut client) = connected().await;
        let texts: Vec<String> = [0, 1, 125, 126, 65_535, 65_536, 200_000]
            .into_iter()
            .map(|len| "x".repeat(len))
            .collect();
        let sent = tokio::spawn(async move {
            server.get_mut().send_texts(&texts).await.unwrap();
            (server, texts)
        });
        let mut received = Vec::new();
        for _ in 0..7 {
            match client.next().await {
                Some(Ok(Message::Text(text))) => received.push(text.to_string()),
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
        let (mut server, texts) = sent.await.unwrap();
        assert_eq!(received, texts, "every length of the header, in order");
        assert_eq!(server.get_ref().buffer_capacity(), 0, "nothing kept once written");
        // tungstenite's own frames still go out on the same socket.
        server.send(Message::text("after")).await.unwrap();
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text("after"));
    }

    #[tokio::test]
    async fn a_slow_reader_gets_every_frame_in_order_and_the_buffer_is_freed() {
        let (server, client) = tokio::io::duplex(256);
        let mut server = ReleasingIo::new(server, 512, 1024);
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let texts: Vec<String> =
            (0..200).map(|n| format!("frame {n:03} {}", "y".repeat(90))).collect();
        let expected = texts.clone();
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            while received.len() < 200 {
                tokio::task::yield_now().await;
                match client.next().await {
                    Some(Ok(Message::Text(text))) => received.push(text.to_string()),
                    other => panic!("expected a text frame, got {other:?}"),
                }
            }
            received
        });
        server.send_texts(&texts).await.unwrap();
        assert_eq!(reader.await.unwrap(), expected);
        assert_eq!(server.buffer_capacity(), 0);
    }

    #[test]
    fn client_frames_are_counted_with_their_header_and_mask() {
        assert_eq!(client_frame_len(0), 6);
        assert_eq!(client_frame_len(125), 131);
        assert_eq!(client_frame_len(126), 134);
        assert_eq!(client_frame_len(65_535), 65_543);
        assert_eq!(client_frame_len(65_536), 65_550);
    }

    fn upgrade_request() -> axum::http::request::Builder {
        Request::builder()
            .uri("/v1/connect")
            .header(header::CONNECTION, "keep-alive, Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
    }

    async fn refusal(request: axum::http::request::Builder) -> Option<UpgradeRefusal> {
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        ClientUpgrade::from_request_parts(&mut parts, &()).await.err()
    }

    #[tokio::test]
    async fn requests_that_are_no_websocket_upgrade_are_refused_with_the_reason() {
        use UpgradeRefusal::*;
        assert_eq!(refusal(upgrade_request().method(Method::POST)).await, Some(NotGet));
        assert_eq!(refusal(upgrade_request().version(Version::HTTP_10)).await, Some(NotHttp11));
        let no_upgrade = Request::builder().header(header::CONNECTION, "keep-alive");
        assert_eq!(refusal(no_upgrade).await, Some(NoConnectionUpgrade));
        let h2c = upgrade_request().header(header::UPGRADE, "h2c");
        assert_eq!(refusal(h2c).await, Some(NotUpgradable), "every Upgrade value is read");
        let mut wrong = upgrade_request();
        wrong.headers_mut().unwrap().insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert_eq!(refusal(wrong).await, Some(NotWebSocket));
        let mut old = upgrade_request();
        old.headers_mut().unwrap().insert(header::SEC_WEBSOCKET_VERSION, "8".parse().unwrap());
        assert_eq!(refusal(old).await, Some(UnsupportedVersion));
        let mut keyless = upgrade_request();
        keyless.headers_mut().unwrap().remove(header::SEC_WEBSOCKET_KEY);
        assert_eq!(refusal(keyless).await, Some(NoKey));
        // A request that hyper did not mark as upgradable (as in this test) cannot be upgraded.
        assert_eq!(refusal(upgrade_request()).await, Some(NotUpgradable));
    }

    #[test]
    fn refusals_answer_with_their_status() {
        let status = |refusal: UpgradeRefusal| refusal.into_response().status();
        assert_eq!(status(UpgradeRefusal::NotGet), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(status(UpgradeRefusal::NoKey), StatusCode::BAD_REQUEST);
        let version = UpgradeRefusal::UnsupportedVersion.into_response();
        assert_eq!(version.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(version.headers()[header::SEC_WEBSOCKET_VERSION], "13");
    }
}
