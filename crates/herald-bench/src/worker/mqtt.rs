//! MQTT subscribers for the Mosquitto peer: connect, subscribe to the bench topic with QoS 1,
//! PUBACK every publish, ping within the keep-alive.

use std::rc::Rc;
use std::time::Duration;

use rumqttc::mqttbytes::v4::{Packet, PubAck};
use rumqttc::mqttbytes::QoS;
use tokio::time::Instant;

use super::{attempt, Attempts, Worker};
use crate::control::{scan, MqttConnect};
use crate::mqtt::MqttStream;

const KEEP_ALIVE: Duration = Duration::from_secs(60);

pub(super) fn spawn_all(worker: &Rc<Worker>, config: MqttConnect, attempts: Rc<Attempts>) {
    let config = Rc::new(config);
    for index in 0..config.count as usize {
        let task = subscriber(worker.clone(), config.clone(), attempts.clone(), index);
        tokio::task::spawn_local(task);
    }
}

async fn subscriber(
    worker: Rc<Worker>,
    config: Rc<MqttConnect>,
    attempts: Rc<Attempts>,
    index: usize,
) {
    let _live = worker.track();
    let mut stop = worker.stop.subscribe();
    stop.mark_unchanged();
    let global = config.first + index as u64;
    let source = config.sources.get((global % config.sources.len().max(1) as u64) as usize);
    let open = async {
        let client_id = format!("{}-{global}", config.client_prefix);
        let mut stream =
            MqttStream::connect(config.broker, source.copied(), client_id, KEEP_ALIVE).await?;
        stream.subscribe(&config.topic, QoS::AtLeastOnce).await?;
        anyhow::Ok(stream)
    };
    let Some(mut stream) = attempt(&worker, attempts, index, open).await else { return };
    let ping_every = KEEP_ALIVE / 2;
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    loop {
        let sent = tokio::select! {
            _ = stop.changed() => {
                stream.disconnect().await;
                return;
            }
            packet = stream.next() => match packet {
                Ok(Some(Packet::Publish(publish))) => {
                    let payload = &publish.payload[..];
                    worker.on_frame(index, scan::number(payload, "n"), scan::number(payload, scan::STAMP));
                    if publish.qos == QoS::AtLeastOnce {
                        // Queued, then flushed together with any others of this read.
                        stream.queue(&Packet::PubAck(PubAck::new(publish.pkid)))
                    } else {
                        Ok(())
                    }
                }
                Ok(Some(_)) => Ok(()),
                Ok(None) | Err(_) => {
                    worker.lost(index, "connection_lost");
                    return;
                }
            },
            _ = ping.tick() => stream.queue(&Packet::PingReq),
        };
        if sent.is_err() || stream.flush().await.is_err() {
            worker.lost(index, "connection_lost");
            return;
        }
    }
}
