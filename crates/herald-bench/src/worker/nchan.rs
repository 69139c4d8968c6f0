//! Nchan WebSocket subscribers for the Nchan peer: connect to the channel's subscriber
//! location, count every message. Nchan has no acks and, as configured by the bench, no pings.

use std::net::Ipv4Addr;
use std::rc::Rc;

use anyhow::Context;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::herald::authority;
use super::{attempt, Attempts, Worker};
use crate::control::{scan, NchanConnect};
use crate::mqtt::tcp_connect;

pub(super) fn spawn_all(
    worker: &Rc<Worker>,
    config: NchanConnect,
    attempts: Rc<Attempts>,
) -> anyhow::Result<()> {
    if config.sources.is_empty() {
        anyhow::bail!("no source addresses");
    }
    authority(&config.url)?;
    let config = Rc::new(config);
    for index in 0..config.count as usize {
        let task = subscriber(worker.clone(), config.clone(), attempts.clone(), index);
        tokio::task::spawn_local(task);
    }
    Ok(())
}

async fn open(config: &NchanConnect, global: u64) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let source: Ipv4Addr = config.sources[(global % config.sources.len() as u64) as usize];
    let stream = tcp_connect(authority(&config.url)?, Some(source)).await?;
    // The same small buffers as the herald clients: the clients' side should cost the same.
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20));
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(config.url.as_str(), stream, Some(ws_config))
            .await
            .context("WebSocket upgrade")?;
    Ok(ws)
}

async fn subscriber(
    worker: Rc<Worker>,
    config: Rc<NchanConnect>,
    attempts: Rc<Attempts>,
    index: usize,
) {
    let _live = worker.track();
    let mut stop = worker.stop.subscribe();
    stop.mark_unchanged();
    let global = config.first + index as u64;
    let Some(mut ws) = attempt(&worker, attempts, index, open(&config, global)).await else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return;
            }
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => on_message(&worker, index, text.as_bytes()),
                Some(Ok(Message::Binary(data))) => on_message(&worker, index, &data),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    worker.lost(index, "connection_lost");
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

fn on_message(worker: &Worker, index: usize, payload: &[u8]) {
    worker.on_frame(index, scan::number(payload, "n"), scan::number(payload, scan::STAMP));
}
