//! A raw herald client connection: hello, welcome, pushes, cumulative acks, pings. Leaner than
//! `herald-client` (no reconnect logic, no per-push allocation beyond the frame itself), because
//! one worker holds thousands of them next to the server it measures.

use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use herald_gateway::protocol::{ClientFrame, Hello, PROTOCOL_VERSION};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{attempt, Attempts, Worker, CONNECT_TIMEOUT};
use crate::clock::now_us;
use crate::control::{scan, HeraldConnect};
use crate::mqtt::tcp_connect;

type Ws = WebSocketStream<TcpStream>;

/// Tokens are minted for the whole run; a day is longer than any run.
pub(super) const TOKEN_LIFETIME_SECS: u64 = 86_400;
/// How long a closing connection waits for the server's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

struct Target {
    config: HeraldConnect,
    addr: SocketAddr,
    ws_config: WebSocketConfig,
    expires: i64,
}

/// Starts one task per connection to open.
pub(super) fn spawn_all(
    worker: &Rc<Worker>,
    config: HeraldConnect,
    attempts: Rc<Attempts>,
    indices: Vec<usize>,
) -> anyhow::Result<()> {
    let addr = authority(&config.url)?;
    if config.sources.is_empty() {
        bail!("no source addresses");
    }
    let target = Rc::new(Target {
        addr,
        // Small buffers: thousands of mostly idle connections share this process's memory.
        ws_config: WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
            .max_message_size(Some(1 << 20)),
        expires: (now_us() / 1_000_000 + TOKEN_LIFETIME_SECS) as i64,
        config,
    });
    for index in indices {
        let task = connection(worker.clone(), target.clone(), attempts.clone(), index);
        tokio::task::spawn_local(task);
    }
    Ok(())
}

/// `HOST:PORT` of a `ws://` URL, as a socket address.
pub(super) fn authority(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.strip_prefix("ws://").context("the bench speaks ws:// only")?;
    let host = rest.split('/').next().unwrap_or_default();
    host.parse().with_context(|| format!("{host} is not an IP:port"))
}

async fn connection(worker: Rc<Worker>, target: Rc<Target>, attempts: Rc<Attempts>, index: usize) {
    let _live = worker.track();
    let mut stop = worker.stop.subscribe();
    stop.mark_unchanged();
    let global = target.config.first + index as u64;
    let resumes = target.config.resume || target.config.rejoin;
    let last_seq = if resumes { worker.slot(index).acked } else { 0 };
    let first = open(&target, global, last_seq);
    let Some((mut ws, mut heartbeat)) = attempt(&worker, attempts, index, first).await else {
        return;
    };
    let churn = Churn::new(target.config.churn_per_min);
    loop {
        let reason = match session(&worker, &target, index, ws, heartbeat, &mut stop, &churn).await
        {
            Ended::Stopped => return,
            Ended::Closed(reason) if churn.is_some() => reason,
            Ended::Closed(reason) => {
                worker.lost(index, &reason);
                return;
            }
        };
        // A churning client comes back at once, resuming from what it acked; one the server
        // closed waits a moment, as a real client backs off.
        worker.reconnecting(&reason);
        if reason != CHURNED {
            tokio::time::sleep(RECONNECT_BACKOFF).await;
        }
        loop {
            let acked = worker.slot(index).acked;
            let opened = tokio::select! {
                _ = stop.changed() => return,
                opened = tokio::time::timeout(CONNECT_TIMEOUT, open(&target, global, acked)) => opened,
            };
            match opened {
                Ok(Ok(opened)) => {
                    (ws, heartbeat) = opened;
                    break;
                }
                _ => {
                    worker.reconnecting("reconnect_failed");
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                }
            }
        }
    }
}

/// The close reason of a connection that reconnected by its own choice.
const CHURNED: &str = "churned";
/// How long a soak client waits before reconnecting after the server closed it.
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

/// When a churning connection next closes on its own: exponential waits, so that `percent` of
/// the connections reconnect per minute on average, spread evenly over time.
struct Churn {
    mean: Duration,
}

impl Churn {
    fn new(percent_per_min: f64) -> Option<Self> {
        (percent_per_min > 0.0)
            .then(|| Self { mean: Duration::from_secs_f64(6_000.0 / percent_per_min) })
    }

    fn next(&self) -> Instant {
        let uniform: f64 = rand::random::<f64>().max(f64::MIN_POSITIVE);
        Instant::now() + self.mean.mul_f64(-uniform.ln())
    }
}

/// How one connection's session ended.
enum Ended {
    /// The orchestrator asked every connection to close.
    Stopped,
    /// The server closed it, it broke, or it churned: why.
    Closed(String),
}

/// Receives pushes, acks and pings until told to stop, the connection ends or it churns.
async fn session(
    worker: &Worker,
    target: &Target,
    index: usize,
    mut ws: Ws,
    heartbeat: Duration,
    stop: &mut tokio::sync::watch::Receiver<u64>,
    churn: &Option<Churn>,
) -> Ended {
    let ack_interval = Duration::from_millis(target.config.ack_interval_ms);
    let ack_timer = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(ack_timer);
    let mut ack_armed = false;
    let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    let churn_at =
        churn.as_ref().map_or(Instant::now() + Duration::from_secs(86_400 * 365), Churn::next);
    let lost = || Ended::Closed("connection_lost".into());
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = send_ack(worker, index, &mut ws).await;
                close(ws).await;
                return Ended::Stopped;
            }
            () = tokio::time::sleep_until(churn_at), if churn.is_some() => {
                let _ = send_ack(worker, index, &mut ws).await;
                close(ws).await;
                return Ended::Closed(CHURNED.into());
            }
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_bytes();
                    if !text.starts_with(br#"{"type":"push""#) {
                        continue;
                    }
                    let seq = scan::number(text, "seq");
                    worker.on_frame(index, seq, scan::number(text, scan::STAMP));
                    if ack_interval.is_zero() {
                        if send_ack(worker, index, &mut ws).await.is_err() {
                            return lost();
                        }
                    } else if !ack_armed {
                        ack_timer.as_mut().reset(Instant::now() + ack_interval);
                        ack_armed = true;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or_else(|| "close".to_owned(), |f| format!("close_{}", u16::from(f.code)));
                    return Ended::Closed(code);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return lost(),
            },
            () = &mut ack_timer, if ack_armed => {
                ack_armed = false;
                if send_ack(worker, index, &mut ws).await.is_err() {
                    return lost();
                }
            }
            _ = ping.tick() => {
                if ws.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
                    return lost();
                }
            }
        }
    }
}

/// TCP from the connection's source address, WebSocket upgrade, hello, welcome. Returns the
/// socket and the heartbeat interval the server asked for.
async fn open(target: &Target, global: u64, last_seq: u64) -> anyhow::Result<(Ws, Duration)> {
    let sources = &target.config.sources;
    let source: Ipv4Addr = sources[(global % sources.len() as u64) as usize];
    let stream = tcp_connect(target.addr, Some(source)).await?;
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(
        target.config.url.as_str(),
        stream,
        Some(target.ws_config),
    )
    .await
    .context("WebSocket upgrade")?;
    let account = format!("bench-{global}");
    let device = format!("bench-dev-{global}");
    let hello = hello_text(&target.config, &account, &device, target.expires, last_seq);
    ws.send(Message::text(hello)).await.context("sending hello")?;
    let heartbeat = await_welcome(&mut ws).await?;
    Ok((ws, heartbeat))
}

/// A hello of `account` on `device`, as JSON text.
pub(super) fn hello_text(
    config: &HeraldConnect,
    account: &str,
    device: &str,
    expires: i64,
    last_seq: u64,
) -> String {
    ClientFrame::Hello(Hello {
        v: PROTOCOL_VERSION,
        token: herald_gateway::token::mint(&config.key, &config.secret, account, expires),
        device_id: device.into(),
        platform: "android".into(),
        package: "com.example.bench".into(),
        vendor_token: None,
        last_seq,
        app_version: None,
        locale: None,
        time_zone: None,
    })
    .encode()
}

/// Waits for the welcome; the heartbeat interval it asks for.
pub(super) async fn await_welcome<S>(ws: &mut WebSocketStream<S>) -> anyhow::Result<Duration>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let text = text.as_bytes();
                if text.starts_with(br#"{"type":"welcome""#) {
                    let secs = scan::number(text, "heartbeat_secs").unwrap_or(30).max(1);
                    return Ok(Duration::from_secs(secs));
                }
                bail!("before welcome: {}", String::from_utf8_lossy(text));
            }
            Some(Ok(Message::Close(frame))) => bail!("closed before welcome: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err).context("waiting for welcome"),
            None => bail!("connection ended before welcome"),
        }
    }
}

/// Acks everything received so far, cumulatively, if that moved.
async fn send_ack(worker: &Worker, index: usize, ws: &mut Ws) -> anyhow::Result<()> {
    let slot = worker.slot(index);
    if slot.last_seq <= slot.acked {
        return Ok(());
    }
    let ack = format!(r#"{{"type":"ack","up_to":{}}}"#, slot.last_seq);
    ws.send(Message::text(ack)).await?;
    worker.set_acked(index, slot.last_seq);
    Ok(())
}

/// Sends a close frame and waits (briefly) for the server's, so that the server sees a clean
/// close rather than a lost connection.
async fn close(mut ws: Ws) {
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = ws.next().await {} })
        .await;
}
