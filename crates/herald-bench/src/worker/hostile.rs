//! Misbehaving herald clients, for `herald-bench hostile`: ones that never read, read one byte
//! a second, send 1 MiB frames, connect without a hello, or flood acks. Each kind comes back
//! after the server cuts it off, as an attacker would, and counts how it was cut off.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::herald::{authority, await_welcome, hello_text, TOKEN_LIFETIME_SECS};
use super::Worker;
use crate::clock::now_us;
use crate::control::{HeraldConnect, HostileAttack};
use crate::mqtt::tcp_connect;

type Ws = WebSocketStream<TcpStream>;

/// How long an attacker waits before it comes back.
const AGAIN: Duration = Duration::from_millis(500);
/// A receive buffer small enough that the server's writes to a client that does not read
/// block after a few frames rather than after megabytes of kernel buffer.
const SMALL_RECV_BUFFER: u32 = 4096;

/// `kind:outcome` → count, for [`crate::control::Event::HostileReport`].
pub(crate) type Outcomes = RefCell<BTreeMap<String, u64>>;

struct Attack {
    herald: HeraldConnect,
    addr: SocketAddr,
    expires: i64,
    outcomes: Rc<Outcomes>,
}

impl Attack {
    fn count(&self, kind: &str, outcome: &str) {
        *self.outcomes.borrow_mut().entry(format!("{kind}:{outcome}")).or_default() += 1;
    }

    fn source(&self, n: u32) -> Ipv4Addr {
        let sources = &self.herald.sources;
        sources[n as usize % sources.len()]
    }

    /// Upgrade and hello as account `hostile-KIND-N`; the socket once welcomed.
    async fn identified(&self, kind: &str, n: u32, recv_buffer: Option<u32>) -> anyhow::Result<Ws> {
        let tcp = connect(self.addr, self.source(n), recv_buffer).await?;
        let (mut ws, _) = tokio_tungstenite::client_async(self.herald.url.as_str(), tcp).await?;
        let account = format!("hostile-{kind}-{n}");
        let hello = hello_text(&self.herald, &account, &format!("{account}-dev"), self.expires, 0);
        ws.send(Message::text(hello)).await?;
        await_welcome(&mut ws).await?;
        Ok(ws)
    }
}

/// Starts every attacker of `attack`; they stop when `stop` changes.
pub(super) fn spawn_all(worker: &Rc<Worker>, attack: HostileAttack) -> anyhow::Result<()> {
    let addr = authority(&attack.herald.url)?;
    anyhow::ensure!(!attack.herald.sources.is_empty(), "no source addresses");
    let shared = Rc::new(Attack {
        addr,
        expires: (now_us() / 1_000_000 + TOKEN_LIFETIME_SECS) as i64,
        outcomes: worker.hostile.clone(),
        herald: attack.herald,
    });
    let spawn =
        |n: u32, task: fn(Rc<Attack>, u32) -> futures_util::future::LocalBoxFuture<'static, ()>| {
            let mut stop = worker.stop.subscribe();
            stop.mark_unchanged();
            let task = task(shared.clone(), n);
            tokio::task::spawn_local(async move {
                tokio::select! {
                    _ = stop.changed() => {}
                    () = task => {}
                }
            });
        };
    for n in 0..attack.never_read {
        spawn(n, |a, n| Box::pin(never_read(a, n)));
    }
    for n in 0..attack.slow_read {
        spawn(n, |a, n| Box::pin(slow_read(a, n)));
    }
    for n in 0..attack.big_frames {
        spawn(n, |a, n| Box::pin(big_frames(a, n)));
    }
    for n in 0..attack.ack_flood {
        spawn(n, |a, n| Box::pin(ack_flood(a, n)));
    }
    let source = attack.no_hello_source;
    for _ in 0..attack.no_hello {
        let mut stop: watch::Receiver<u64> = worker.stop.subscribe();
        stop.mark_unchanged();
        let task = no_hello(shared.clone(), source);
        tokio::task::spawn_local(async move {
            tokio::select! {
                _ = stop.changed() => {}
                () = task => {}
            }
        });
    }
    Ok(())
}

async fn connect(
    addr: SocketAddr,
    source: Ipv4Addr,
    recv_buffer: Option<u32>,
) -> anyhow::Result<TcpStream> {
    let Some(size) = recv_buffer else { return tcp_connect(addr, Some(source)).await };
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_recv_buffer_size(size)?;
    socket.bind(SocketAddr::new(source.into(), 0))?;
    Ok(socket.connect(addr).await?)
}

/// Hello, then holds the socket without reading a byte.
async fn never_read(attack: Rc<Attack>, n: u32) {
    match attack.identified("never_read", n, Some(SMALL_RECV_BUFFER)).await {
        Ok(ws) => {
            attack.count("never_read", "connected");
            let _held = ws;
            std::future::pending::<()>().await;
        }
        Err(_) => attack.count("never_read", "connect_failed"),
    }
}

/// Hello, then one byte a second; comes back when the server ends the connection.
async fn slow_read(attack: Rc<Attack>, n: u32) {
    loop {
        match attack.identified("slow_read", n, Some(SMALL_RECV_BUFFER)).await {
            Ok(ws) => {
                attack.count("slow_read", "connected");
                let mut tcp = ws.into_inner();
                let mut byte = [0u8; 1];
                while matches!(tcp.read(&mut byte).await, Ok(1)) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                attack.count("slow_read", "cut_off");
            }
            Err(_) => attack.count("slow_read", "connect_failed"),
        }
        tokio::time::sleep(AGAIN).await;
    }
}

/// Hello, then a 1 MiB frame; the close code it got, again and again.
async fn big_frames(attack: Rc<Attack>, n: u32) {
    let big = "x".repeat(1 << 20);
    loop {
        match attack.identified("big_frames", n, None).await {
            Ok(ws) => {
                let (mut sink, mut stream) = ws.split();
                let big = big.clone();
                // The server stops reading at the frame's header: the send may never finish.
                let send = async move {
                    let _ = sink.send(Message::text(big)).await;
                    std::future::pending::<String>().await
                };
                let outcome = tokio::select! {
                    outcome = send => outcome,
                    outcome = close_code(&mut stream) => outcome,
                };
                attack.count("big_frames", &outcome);
            }
            Err(_) => attack.count("big_frames", "connect_failed"),
        }
        tokio::time::sleep(AGAIN).await;
    }
}

/// Hello, then acks as fast as the socket takes them; the close code it got, again and again.
async fn ack_flood(attack: Rc<Attack>, n: u32) {
    loop {
        match attack.identified("ack_flood", n, None).await {
            Ok(ws) => {
                let (mut sink, mut stream) = ws.split();
                let flood = async move {
                    while sink.send(Message::text(r#"{"type":"ack","up_to":0}"#)).await.is_ok() {}
                    std::future::pending::<String>().await
                };
                let outcome = tokio::select! {
                    outcome = flood => outcome,
                    outcome = close_code(&mut stream) => outcome,
                };
                attack.count("ack_flood", &outcome);
            }
            Err(_) => attack.count("ack_flood", "connect_failed"),
        }
        tokio::time::sleep(AGAIN).await;
    }
}

/// Upgrades and says nothing; counts refusals by HTTP status and closes by code.
async fn no_hello(attack: Rc<Attack>, source: Ipv4Addr) {
    loop {
        let outcome = match connect(attack.addr, source, None).await {
            Err(_) => "connect_failed".to_owned(),
            Ok(tcp) => match tokio_tungstenite::client_async(attack.herald.url.as_str(), tcp).await
            {
                Ok((ws, _)) => {
                    attack.count("no_hello", "upgraded");
                    let (_sink, mut stream) = ws.split();
                    close_code(&mut stream).await
                }
                Err(tungstenite::Error::Http(response)) => {
                    format!("http_{}", response.status().as_u16())
                }
                Err(_) => "upgrade_failed".to_owned(),
            },
        };
        attack.count("no_hello", &outcome);
        tokio::time::sleep(AGAIN).await;
    }
}

/// Reads until the connection ends: `close_CODE`, or `dropped` without a close frame.
async fn close_code<S>(stream: &mut S) -> String
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Close(Some(frame))) => return format!("close_{}", u16::from(frame.code)),
            Ok(Message::Close(None)) => return "close".to_owned(),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    "dropped".to_owned()
}
