//! The bus on NATS JetStream (async-nats).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::{Stream, StreamExt};

use crate::{BusError, Event, NodeInfo, PresenceQuestion, Report};

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
}

/// A connection to the cluster's bus.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: String,
    nodes: String,
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
        let bus = Self {
            client,
            jetstream,
            stream: format!("{prefix}_events"),
            nodes: format!("{prefix}_nodes"),
            prefix,
            node: settings.node.clone(),
        };
        tokio::time::timeout(Duration::from_secs(10), bus.create_streams())
            .await
            .map_err(|_| connect_error("no answer from JetStream within 10 s".into()))?
            .map_err(connect_error)?;
        Ok(bus)
    }

    /// Creates the cluster's streams where they are missing: at start, and again when a NATS
    /// server came back without them (the node list lives in memory; a server whose disk was
    /// lost has no events either, and nodes then read what they missed from the store).
    async fn create_streams(&self) -> Result<(), String> {
        let prefix = &self.prefix;
        self.jetstream
            .get_or_create_stream(stream::Config {
                name: self.stream.clone(),
                subjects: vec![format!("{prefix}.events.>")],
                max_age: EVENT_RETENTION,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("JetStream stream {}: {e}", self.stream))?;
        // One heartbeat kept per node subject, dropped when it is older than the TTL: the
        // stream lists the nodes alive now (what a key-value bucket with a TTL would do, on
        // the plain stream API that every JetStream server version speaks alike).
        self.jetstream
            .get_or_create_stream(stream::Config {
                name: self.nodes.clone(),
                subjects: vec![format!("{prefix}.nodes.*")],
                max_age: NODE_TTL,
                max_messages_per_subject: 1,
                storage: stream::StorageType::Memory,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("JetStream stream {}: {e}", self.nodes))?;
        Ok(())
    }

    /// Publishes to a stream and waits until it stored the message; a stream the server lost
    /// is created again and the message sent once more.
    async fn store(&self, subject: String, payload: Vec<u8>) -> Result<u64, BusError> {
        let bytes = payload.len();
        let payload = bytes::Bytes::from(payload);
        let mut recreated = false;
        loop {
            let ack = self.jetstream.publish(subject.clone(), payload.clone()).await;
            let stored = match ack {
                Ok(ack) => ack.await,
                Err(err) => Err(err),
            };
            match stored {
                Ok(ack) => {
                    count_out(bytes);
                    return Ok(ack.sequence);
                }
                Err(err)
                    if !recreated
                        && err.kind() == jetstream::context::PublishErrorKind::StreamNotFound =>
                {
                    tracing::warn!(%subject, "NATS lost the cluster's streams; creating them again");
                    self.create_streams().await.map_err(BusError::JetStream)?;
                    recreated = true;
                }
                Err(err) => return Err(BusError::js(err)),
            }
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Puts an event on the stream; returns its stream sequence once the stream stored it.
    pub async fn publish(&self, event: &Event) -> Result<u64, BusError> {
        let subject = format!("{}.events.{}", self.prefix, event.app());
        self.store(subject, serde_json::to_vec(event)?).await
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

    /// Sends a delivery report to the node that dispatched the push.
    pub async fn report(&self, to_node: &str, report: &Report) -> Result<(), BusError> {
        let payload = serde_json::to_vec(report)?;
        let bytes = payload.len();
        self.client
            .publish(self.report_subject(to_node), payload.into())
            .await
            .map_err(BusError::js)?;
        count_out(bytes);
        Ok(())
    }

    /// The delivery reports sent to this node.
    pub async fn reports(&self) -> Result<ReportStream, BusError> {
        let subscriber =
            self.client.subscribe(self.report_subject(&self.node)).await.map_err(BusError::js)?;
        // A flush only writes the subscription to the socket. The server handles one
        // connection's messages in order, so once it has answered a request sent after the
        // subscription (the node list's info), it knows of it: reports sent after this call are not
        // missed.
        self.jetstream.get_stream(&self.nodes).await.map_err(BusError::js)?;
        Ok(ReportStream { inner: subscriber })
    }

    /// Asks every node whether a device of the account is connected to it: `true` as soon as
    /// one says so, `false` once `nodes` answered no, or `wait` passed.
    pub async fn online_anywhere(
        &self,
        question: PresenceQuestion,
        nodes: usize,
        wait: Duration,
    ) -> Result<bool, BusError> {
        let inbox = self.client.new_inbox();
        // Same connection, in order: the server knows the inbox before any node can answer.
        let mut answers = self.client.subscribe(inbox.clone()).await.map_err(BusError::js)?;
        let payload = serde_json::to_vec(&question)?;
        count_out(payload.len());
        self.client
            .publish_with_reply(self.presence_subject(), inbox, payload.into())
            .await
            .map_err(BusError::js)?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut heard = 0;
        while heard < nodes {
            match tokio::time::timeout_at(deadline, answers.next()).await {
                Ok(Some(answer)) => {
                    count_in(answer.payload.len());
                    if answer.payload.as_ref() == b"1" {
                        return Ok(true);
                    }
                    heard += 1;
                }
                Ok(None) | Err(_) => break,
            }
        }
        Ok(false)
    }

    /// The presence questions of every node, this one's included, to answer with
    /// [`NatsBus::answer`].
    pub async fn presence_questions(&self) -> Result<PresenceQuestions, BusError> {
        let subscriber =
            self.client.subscribe(self.presence_subject()).await.map_err(BusError::js)?;
        Ok(PresenceQuestions { inner: subscriber })
    }

    /// Answers a presence question.
    pub async fn answer(&self, reply: async_nats::Subject, online: bool) -> Result<(), BusError> {
        let payload: &'static [u8] = if online { b"1" } else { b"0" };
        count_out(payload.len());
        self.client.publish(reply, payload.into()).await.map_err(BusError::js)
    }

    fn presence_subject(&self) -> String {
        format!("{}.presence", self.prefix)
    }

    fn report_subject(&self, node: &str) -> String {
        format!("{}.reports.{node}", self.prefix)
    }

    /// Says this node is alive, and how it is.
    pub async fn heartbeat(&self, info: &NodeInfo) -> Result<(), BusError> {
        self.store(self.node_subject(&self.node), serde_json::to_vec(info)?).await?;
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
        Ok(())
    }

    /// Whether the connection to NATS is up now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// What this node sent on the bus: the bus's own cost, per node.
fn count_out(bytes: usize) {
    metrics::counter!("herald_bus_messages_sent_total").increment(1);
    metrics::counter!("herald_bus_sent_bytes_total").increment(bytes as u64);
}

/// What this node received from the bus.
fn count_in(bytes: usize) {
    metrics::counter!("herald_bus_messages_received_total").increment(1);
    metrics::counter!("herald_bus_received_bytes_total").increment(bytes as u64);
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
            count_in(message.payload.len());
            let sequence = message.info().map_err(BusError::js)?.stream_sequence;
            let event = serde_json::from_slice(&message.payload)
                .map_err(|err| BusError::Undecodable { sequence, reason: err.to_string() })?;
            Ok((sequence, event))
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
                count_in(message.payload.len());
                Poll::Ready(Some(serde_json::from_slice(&message.payload).map_err(Into::into)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Presence questions with the subject to answer them on; one that does not decode is passed
/// over with an error.
pub struct PresenceQuestions {
    inner: async_nats::Subscriber,
}

impl Stream for PresenceQuestions {
    type Item = Result<(PresenceQuestion, async_nats::Subject), BusError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(message)) => {
                count_in(message.payload.len());
                let question = serde_json::from_slice(&message.payload).map_err(BusError::from);
                let reply = message.reply.ok_or_else(|| {
                    BusError::JetStream("a presence question without a reply subject".into())
                });
                Poll::Ready(Some(question.and_then(|q| reply.map(|r| (q, r)))))
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
