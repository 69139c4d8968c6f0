//! The peer: the same fan-out through the machine's Mosquitto broker. N subscribers on one
//! topic with QoS 1, spread over worker processes and source addresses like herald's clients;
//! one publisher with QoS 1; the broker's memory from /proc.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rumqttc::mqttbytes::v4::{Packet, Publish};
use rumqttc::mqttbytes::QoS;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::report::Side;
use super::scenarios::{self, Publish as SendFn, SendFuture};
use super::workers::{ConnectSummary, Workers};
use super::{FanoutArgs, Results, Scenario};
use crate::clock::now_us;
use crate::control::{scan, Command, MqttConnect};
use crate::mqtt::MqttStream;
use crate::proc::{open_files_limit, pgrep, rss_kib};

const MOSQUITTO_CONF: &str = "/etc/mosquitto/mosquitto.conf";
/// Files a broker needs besides its client sockets (listeners, log, persistence).
const BROKER_SPARE_FILES: u32 = 32;

/// Whether something accepts TCP connections at `addr`.
pub async fn answers(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// How many connections the broker can hold: its open-files limit and `max_connections`.
fn capacity(pid: Option<u32>, wanted: u32, notes: &mut Vec<String>) -> u32 {
    let mut n = wanted;
    let conf = std::fs::read_to_string(MOSQUITTO_CONF).unwrap_or_default();
    let max_connections = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("max_connections"))
        .filter_map(|v| v.trim().parse::<i64>().ok())
        .next_back();
    let limits = pid.and_then(open_files_limit);
    notes.push(format!(
        "mosquitto: pid {}, open files soft/hard {}, max_connections {} ({MOSQUITTO_CONF})",
        pid.map_or("unknown".into(), |p| p.to_string()),
        limits.as_ref().map_or("unknown".into(), |(s, h)| format!("{s}/{h}")),
        max_connections.map_or("unset (unlimited)".into(), |m| m.to_string()),
    ));
    if let Some(max) = max_connections.filter(|&m| m > 0) {
        n = n.min(u32::try_from(max).unwrap_or(u32::MAX).saturating_sub(1));
    }
    if let Some(soft) = limits.and_then(|(s, _)| s.parse::<u32>().ok()) {
        n = n.min(soft.saturating_sub(BROKER_SPARE_FILES));
    }
    if n < wanted {
        notes.push(format!(
            "mosquitto cannot hold {wanted} connections here; its figures are for {n} connections"
        ));
    }
    n
}

pub async fn run(args: &FanoutArgs, results: &mut Results) -> anyhow::Result<()> {
    let pid = pgrep("mosquitto");
    let n = capacity(pid, args.connections, &mut results.notes);
    if n == 0 {
        bail!("mosquitto can hold no connection");
    }
    let mut side = Side { connections: n, ..Side::default() };
    let shares = args.shares(n);
    let mut workers = Workers::spawn(&shares).await?;
    let run_id = now_us();
    let topic = format!("herald-bench/{run_id}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = pid.and_then(rss_kib);
    let heap_before = broker_heap(args.mqtt_addr, false).await;
    let subscribe = |first, count| {
        Command::MqttConnect(MqttConnect {
            broker: args.mqtt_addr,
            topic: topic.clone(),
            client_prefix: format!("hb-{run_id}"),
            first,
            count,
            sources: args.sources(),
            concurrency: args.connect_concurrency,
        })
    };
    let connected = connect_all(args, "mosquitto", &mut workers, &shares, subscribe).await?;
    side.connect = Some(connected.clone());
    if args.has(Scenario::Idle) {
        tokio::time::sleep(args.idle_settle()).await;
        side.set_idle(rss_before, pid.and_then(rss_kib), connected.ok);
        // The broker's own count of its heap: RSS keeps what earlier runs freed, so on a broker
        // that has been busy before, the RSS difference understates what connections cost.
        let heap_after = broker_heap(args.mqtt_addr, true).await;
        if let (Some(before), Some(after), Some(idle)) = (heap_before, heap_after, &mut side.idle) {
            idle.heap_kib_per_connection =
                Some(after.saturating_sub(before) as f64 / 1024.0 / f64::from(connected.ok.max(1)));
        }
    }
    let publisher = Publisher::connect(args.mqtt_addr, format!("hb-{run_id}-pub"), topic).await?;
    let pad: Arc<str> = "x".repeat(args.pad).into();
    let send: SendFn = {
        let publisher = publisher.clone();
        Box::new(move |n| publisher.publish(n, pad.clone()))
    };
    one_and_burst(args, "mosquitto", &mut workers, pid.as_slice(), &send, &mut side).await?;
    drop(send);
    drop(publisher);
    workers.disconnect().await?;
    workers.exit().await;
    results.mosquitto = Some(side);
    Ok(())
}

/// Opens every worker's share of a peer's subscriptions; fails when none connected.
pub(super) async fn connect_all(
    args: &FanoutArgs,
    label: &str,
    workers: &mut Workers,
    shares: &[(u64, u32)],
    subscribe: impl Fn(u64, u32) -> Command,
) -> anyhow::Result<ConnectSummary> {
    let n: u32 = shares.iter().map(|&(_, count)| count).sum();
    eprintln!("{label}: connecting {n} subscribers");
    for (index, &(first, count)) in shares.iter().enumerate() {
        workers.send(index, &subscribe(first, count)).await?;
    }
    let connected = workers.connected(args.phase_timeout()).await?;
    eprintln!(
        "{label}: connected {} ({} failed) in {} ms",
        connected.ok, connected.failed, connected.elapsed_ms
    );
    if connected.ok == 0 {
        bail!("{label}: no subscriber connected: {:?}", connected.errors);
    }
    Ok(connected)
}

/// The single message to all (repeated) and the back-to-back phase, as herald runs them.
pub(super) async fn one_and_burst(
    args: &FanoutArgs,
    label: &str,
    workers: &mut Workers,
    pids: &[u32],
    send: &SendFn,
    side: &mut Side,
) -> anyhow::Result<()> {
    let timeout = args.phase_timeout();
    if args.has(Scenario::One) {
        for repeat in 0..args.one_repeats {
            let n = u64::from(repeat) + 1;
            let run = scenarios::one_to_all(workers, pids, send, n, timeout).await?;
            eprintln!("{label} one to all: {}", run.summary());
            side.one.push(run);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    if args.has(Scenario::Burst) {
        let burst = scenarios::burst(workers, pids, send, args, timeout).await?;
        eprintln!("{label} back to back: {}", burst.summary());
        side.burst = Some(burst);
    }
    Ok(())
}

/// Bytes on the broker's heap (`$SYS/broker/heap/current`, published every `sys_interval`,
/// 10 s by default). With `fresh`, the retained value is skipped and the next one awaited.
async fn broker_heap(broker: SocketAddr, fresh: bool) -> Option<u64> {
    const TOPIC: &str = "$SYS/broker/heap/current";
    let read = async {
        let id = format!("hb-heap-{}", now_us());
        let mut stream = MqttStream::connect(broker, None, id, Duration::from_secs(60)).await?;
        stream.subscribe(TOPIC, QoS::AtMostOnce).await?;
        let mut skip = fresh;
        loop {
            match stream.next().await? {
                Some(Packet::Publish(publish)) if publish.topic == TOPIC => {
                    if std::mem::take(&mut skip) && publish.retain {
                        continue;
                    }
                    let text = String::from_utf8_lossy(&publish.payload).trim().to_owned();
                    stream.disconnect().await;
                    return anyhow::Ok(text.parse::<u64>().ok());
                }
                Some(_) => {}
                None => return Ok(None),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(25), read).await.ok()?.ok()?
}

type Request = (u64, Arc<str>, oneshot::Sender<anyhow::Result<u64>>);

/// One QoS 1 publisher; a message counts as sent once the broker acked it (PUBACK).
#[derive(Clone)]
struct Publisher {
    requests: mpsc::UnboundedSender<Request>,
}

impl Publisher {
    async fn connect(broker: SocketAddr, client_id: String, topic: String) -> anyhow::Result<Self> {
        let stream = MqttStream::connect(broker, None, client_id, Duration::from_secs(60))
            .await
            .context("publisher connection")?;
        let (requests, receiver) = mpsc::unbounded_channel();
        tokio::spawn(publish_loop(stream, topic, receiver));
        Ok(Self { requests })
    }

    fn publish(&self, n: u64, pad: Arc<str>) -> SendFuture {
        let requests = self.requests.clone();
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            requests.send((n, pad, reply)).map_err(|_| anyhow::anyhow!("publisher gone"))?;
            answer.await.context("publisher gone")?
        })
    }
}

async fn publish_loop(
    mut stream: MqttStream,
    topic: String,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    let mut pending: HashMap<u16, (oneshot::Sender<anyhow::Result<u64>>, u64)> = HashMap::new();
    let mut next_pkid: u16 = 0;
    let mut ping = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some((n, pad, reply)) = request else { break };
                next_pkid = next_pkid.checked_add(1).unwrap_or(1);
                let stamp = now_us();
                let payload = json!({"n": n, scan::STAMP: stamp, "pad": &*pad}).to_string();
                let mut publish = Publish::new(&topic, QoS::AtLeastOnce, payload);
                publish.pkid = next_pkid;
                if let Err(err) = stream.send(&Packet::Publish(publish)).await {
                    let _ = reply.send(Err(err));
                    break;
                }
                pending.insert(next_pkid, (reply, stamp));
            }
            packet = stream.next() => match packet {
                Ok(Some(Packet::PubAck(ack))) => {
                    if let Some((reply, stamp)) = pending.remove(&ack.pkid) {
                        let _ = reply.send(Ok(stamp));
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            },
            _ = ping.tick() => {
                if stream.send(&Packet::PingReq).await.is_err() {
                    break;
                }
            }
        }
    }
    for (_, (reply, _)) in pending.drain() {
        let _ = reply.send(Err(anyhow::anyhow!("publisher connection lost")));
    }
    stream.disconnect().await;
}
