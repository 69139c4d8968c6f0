//! The bus on NATS JetStream (async-nats).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::{Stream, StreamExt};

use crate::{BusError, Event, NodeInfo, Report};

/// How long events stay in the stream. A node that is behind by more than this rebuilds from
/// the store; nothing of the store's state lives only on the bus.
const EVENT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How long a node's heartbeat counts: a node silent this long is gone.
pub const NODE_TTL: Duration = Duration::from_secs(6);

/// Where the bus is and who this node is on it.
#[derive(Debug, Clone)]
pub struct BusSettings {
    /// `nats://host:port`.
    pub url: String,
    /// Stream, bucket and subject names start with it.
    pub prefix: String,
    pub node: String,
    /// How long a signed request's nonce is remembered (the signature window).
    pub replay_window: Duration,
}

/// A connection to the cluster's bus.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: String,
    nodes: String,
    nonces: String,
    prefix: String,
    node: String,
}

impl NatsBus {
    /// Connects and creates the cluster's stream and node bucket if they are not there yet.
    pub async fn connect(settings: &BusSettings) -> Result<Self, BusError> {
        check_prefix(&settings.prefix)?;
        let connect_error =
            |reason: String| BusError::Connect { url: settings.url.clone(), reason };
        let client = async_nats::ConnectOptions::new()
            .name(format!("herald {}", settings.node))
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(&settings.url);
        // With `retry_on_initial_connect` the client comes back at once; the first request
        // below is what proves that NATS answers.
        let client = client.await.map_err(|e| connect_error(e.to_string()))?;
        let jetstream = jetstream::new(client.clone());
        let prefix = settings.prefix.clone();
        let stream = format!("{prefix}_events");
        let created = tokio::time::timeout(
            Duration::from_secs(10),
            jetstream.get_or_create_stream(stream::Config {
                name: stream.clone(),
                subjects: vec![format!("{prefix}.events.>")],
                max_age: EVENT_RETENTION,
                storage: stream::StorageType::File,
                ..Default::default()
            }),
        )
        .await
        .map_err(|_| connect_error("no answer from JetStream within 10 s".into()))?;
        created.map_err(|e| connect_error(format!("JetStream stream {stream}: {e}")))?;
        // One heartbeat kept per node subject, dropped when it is older than the TTL: the
        // stream lists the nodes alive now (what a key-value bucket with a TTL would do, on
        // the plain stream API that every JetStream server version speaks alike).
        let nodes = format!("{prefix}_nodes");
        jetstream
            .get_or_create_stream(stream::Config {
                name: nodes.clone(),
                subjects: vec![format!("{prefix}.nodes.*")],
                max_age: NODE_TTL,
                max_messages_per_subject: 1,
                storage: stream::StorageType::Memory,
                ..Default::default()
            })
            .await
            .map_err(|e| connect_error(format!("JetStream stream {nodes}: {e}")))?;
        // Nonces of signed requests, deduplicated by JetStream's message ids for as long as a
        // request's timestamp is accepted: a replay sent to another node is refused too.
        let nonces = format!("{prefix}_nonces");
        let window = settings.replay_window.max(Duration::from_secs(1));
        jetstream
            .get_or_create_stream(stream::Config {
                name: nonces.clone(),
                subjects: vec![format!("{prefix}.nonces")],
                max_age: window,
                duplicate_window: window,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| connect_error(format!("JetStream stream {nonces}: {e}")))?;
        Ok(Self { client, jetstream, stream, nodes, nonces, prefix, node: settings.node.clone() })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Puts an event on the stream; returns its stream sequence once the stream stored it.
    pub async fn publish(&self, event: &Event) -> Result<u64, BusError> {
        let subject = format!("{}.events.{}", self.prefix, event.app());
        let payload = serde_json::to_vec(event)?;
        let ack = self.jetstream.publish(subject, payload.into()).await.map_err(BusError::js)?;
        Ok(ack.await.map_err(BusError::js)?.sequence)
    }

    /// The sequence of the stream's last event: every event published before this call has a
    /// sequence at most this.
    pub async fn last_sequence(&self) -> Result<u64, BusError> {
        let stream = self.jetstream.get_stream(&self.stream).await.map_err(BusError::js)?;
        Ok(stream.cached_info().state.last_sequence)
    }

    /// The stream's events after `after` (0: from the first kept), in order, without end. The
    /// ordered consumer below re-creates itself after a gap or a NATS restart.
    pub async fn events(&self, after: u64) -> Result<EventStream, BusError> {
        let stream = self.jetstream.get_stream(&self.stream).await.map_err(BusError::js)?;
        let deliver_policy = match after {
            0 => consumer::DeliverPolicy::All,
            seq => consumer::DeliverPolicy::ByStartSequence { start_sequence: seq + 1 },
        };
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig { deliver_policy, ..Default::default() })
            .await
            .map_err(BusError::js)?;
        let messages = consumer.messages().await.map_err(BusError::js)?;
        Ok(EventStream { inner: Box::pin(messages) })
    }

    /// Records a request nonce cluster-wide; `false` if any node recorded it within the window.
    pub async fn first_use(&self, key: &str) -> Result<bool, BusError> {
        let message = jetstream::message::PublishMessage::build()
            .message_id(key)
            .payload(bytes::Bytes::new());
        let ack = self
            .jetstream
            .send_publish(format!("{}.nonces", self.prefix), message)
            .await
            .map_err(BusError::js)?;
        Ok(!ack.await.map_err(BusError::js)?.duplicate)
    }

    /// Sends a delivery report to the node that dispatched the push.
    pub async fn report(&self, to_node: &str, report: &Report) -> Result<(), BusError> {
        let payload = serde_json::to_vec(report)?;
        self.client
            .publish(self.report_subject(to_node), payload.into())
            .await
            .map_err(BusError::js)
    }

    /// The delivery reports sent to this node.
    pub async fn reports(&self) -> Result<ReportStream, BusError> {
        let subscriber =
            self.client.subscribe(self.report_subject(&self.node)).await.map_err(BusError::js)?;
        // A flush only writes the subscription to the socket. The server handles one
        // connection's messages in order, so once it has answered a request sent after the
        // subscription, it knows of it: reports sent after this call are not missed.
        self.jetstream.query_account().await.map_err(BusError::js)?;
        Ok(ReportStream { inner: subscriber })
    }

    fn report_subject(&self, node: &str) -> String {
        format!("{}.reports.{node}", self.prefix)
    }

    /// Says this node is alive, and how it is.
    pub async fn heartbeat(&self, info: &NodeInfo) -> Result<(), BusError> {
        let payload = serde_json::to_vec(info)?;
        let ack = self
            .jetstream
            .publish(self.node_subject(&self.node), payload.into())
            .await
            .map_err(BusError::js)?;
        ack.await.map_err(BusError::js)?;
        Ok(())
    }

    /// Takes this node off the list at once (a clean shutdown).
    pub async fn leave(&self) -> Result<(), BusError> {
        let nodes = self.jetstream.get_stream(&self.nodes).await.map_err(BusError::js)?;
        nodes.purge().filter(self.node_subject(&self.node)).await.map_err(BusError::js)?;
        Ok(())
    }

    /// The nodes whose heartbeat has not expired, by name.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, BusError> {
        let stream = self.jetstream.get_stream(&self.nodes).await.map_err(BusError::js)?;
        let mut subjects = stream
            .info_with_subjects(format!("{}.nodes.*", self.prefix))
            .await
            .map_err(BusError::js)?;
        let mut nodes = Vec::new();
        while let Some(subject) = subjects.next().await {
            let (subject, _) = subject.map_err(BusError::js)?;
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(message) => nodes.push(serde_json::from_slice::<NodeInfo>(&message.payload)?),
                // Expired between the listing and the read.
                Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {}
                Err(err) => return Err(BusError::js(err)),
            }
        }
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }

    fn node_subject(&self, node: &str) -> String {
        format!("{}.nodes.{node}", self.prefix)
    }

    /// Deletes the cluster's stream and node bucket (tests, and taking a cluster down for good).
    pub async fn destroy(&self) -> Result<(), BusError> {
        self.jetstream.delete_stream(&self.stream).await.map_err(BusError::js)?;
        self.jetstream.delete_stream(&self.nodes).await.map_err(BusError::js)?;
        self.jetstream.delete_stream(&self.nonces).await.map_err(BusError::js)?;
        Ok(())
    }

    /// Whether the connection to NATS is up now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

fn check_prefix(prefix: &str) -> Result<(), BusError> {
    let fine = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fine {
        Ok(())
    } else {
        Err(BusError::Prefix(prefix.to_owned()))
    }
}

type Messages = Pin<
    Box<
        dyn Stream<Item = Result<jetstream::Message, consumer::pull::OrderedError>>
            + Send
            + 'static,
    >,
>;

/// The stream's events, each with its stream sequence. An event that does not decode (from a
/// newer node, say) is passed over with an error, never misread.
pub struct EventStream {
    inner: Messages,
}

impl Stream for EventStream {
    type Item = Result<(u64, Event), BusError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let message = match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(message)) => message,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        Poll::Ready(Some(message.map_err(BusError::js).and_then(|message| {
            let sequence = message.info().map_err(BusError::js)?.stream_sequence;
            Ok((sequence, serde_json::from_slice(&message.payload)?))
        })))
    }
}

/// Delivery reports sent to this node.
pub struct ReportStream {
    inner: async_nats::Subscriber,
}

impl Stream for ReportStream {
    type Item = Result<Report, BusError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(message)) => {
                Poll::Ready(Some(serde_json::from_slice(&message.payload).map_err(Into::into)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("herald-prod_1").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>"] {
            assert!(matches!(check_prefix(bad), Err(BusError::Prefix(_))), "{bad:?}");
        }
    }
}
