//! A minimal MQTT 3.1.1 connection over a TCP socket bound to a chosen source address, using
//! rumqttc's packet codec. rumqttc's event loop cannot bind the local address, and 18,000
//! connections to one broker need several source addresses, so the bench frames packets itself.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, Packet, Subscribe, SubscribeReasonCode};
use rumqttc::mqttbytes::{Error as MqttError, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Largest packet accepted either way; bench payloads are a few hundred bytes.
const MAX_PACKET: usize = 64 * 1024;

pub struct MqttStream {
    stream: TcpStream,
    input: BytesMut,
    output: BytesMut,
}

/// A TCP connection to `to` from `source` (any port of it).
pub async fn tcp_connect(to: SocketAddr, source: Option<Ipv4Addr>) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(source) = source {
        // Ports in TIME_WAIT from an earlier phase may be reused.
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::new(source.into(), 0)).with_context(|| format!("bind {source}"))?;
    }
    let stream = socket.connect(to).await.with_context(|| format!("connect {to}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl MqttStream {
    /// Connects with a clean session and waits for a successful CONNACK.
    pub async fn connect(
        broker: SocketAddr,
        source: Option<Ipv4Addr>,
        client_id: String,
        keep_alive: Duration,
    ) -> anyhow::Result<Self> {
        let stream = tcp_connect(broker, source).await?;
        let mut this = Self {
            stream,
            input: BytesMut::with_capacity(256),
            output: BytesMut::with_capacity(64),
        };
        let mut connect = Connect::new(client_id);
        connect.keep_alive = u16::try_from(keep_alive.as_secs()).unwrap_or(u16::MAX);
        connect.clean_session = true;
        this.send(&Packet::Connect(connect)).await?;
        match this.next().await? {
            Some(Packet::ConnAck(ConnAck { code, .. })) => {
                if code != rumqttc::mqttbytes::v4::ConnectReturnCode::Success {
                    bail!("broker refused the connection: {code:?}");
                }
            }
            other => bail!("expected CONNACK, got {other:?}"),
        }
        Ok(this)
    }

    /// Subscribes to one topic and waits for the SUBACK.
    pub async fn subscribe(&mut self, topic: &str, qos: QoS) -> anyhow::Result<()> {
        let mut subscribe = Subscribe::new(topic, qos);
        subscribe.pkid = 1;
        self.send(&Packet::Subscribe(subscribe)).await?;
        loop {
            match self.next().await? {
                Some(Packet::SubAck(ack)) => {
                    if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                        bail!("subscription to {topic} refused");
                    }
                    return Ok(());
                }
                Some(_) => {}
                None => bail!("broker closed the connection before SUBACK"),
            }
        }
    }

    /// Adds a packet to the output buffer; [`MqttStream::flush`] writes it.
    pub fn queue(&mut self, packet: &Packet) -> anyhow::Result<()> {
        packet.write(&mut self.output, MAX_PACKET).map_err(|e| anyhow::anyhow!("encode: {e:?}"))?;
        Ok(())
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        Ok(())
    }

    pub async fn send(&mut self, packet: &Packet) -> anyhow::Result<()> {
        self.queue(packet)?;
        self.flush().await
    }

    /// The next packet, or `None` when the broker closed the connection. Cancel-safe: bytes
    /// read stay buffered until a whole packet is there.
    pub async fn next(&mut self) -> anyhow::Result<Option<Packet>> {
        loop {
            match Packet::read(&mut self.input, MAX_PACKET) {
                Ok(packet) => return Ok(Some(packet)),
                Err(MqttError::InsufficientBytes(_)) => {}
                Err(err) => bail!("bad packet from the broker: {err:?}"),
            }
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Sends DISCONNECT and closes the socket.
    pub async fn disconnect(mut self) {
        let _ = self.send(&Packet::Disconnect).await;
        let _ = self.stream.shutdown().await;
    }
}
