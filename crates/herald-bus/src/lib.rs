//! herald-bus: what herald nodes of one cluster tell each other, over NATS JetStream.
//!
//! - **Events** ([`Event`]) go on one JetStream stream per cluster, in one order that every node
//!   reads in full with an ordered consumer: pushes handed to the app's dispatcher, pushes
//!   dispatched (with their seq), cancelled and recalled, directory changes. A publish returns
//!   once the stream has stored the event, so an API answer given after it is never ahead of
//!   what other nodes can read.
//! - **Delivery reports** ([`Report`]): each node tells the dispatching node which accounts it
//!   reached online with a push, on a plain NATS subject of that node (they matter only while
//!   the dispatcher waits for them).
//! - **Presence** ([`PresenceQuestion`]): a node asks every node whether an account has a
//!   device connected to it, and collects their answers on an inbox of its own.
//! - **Nodes** ([`NodeInfo`]): each node writes a heartbeat into a JetStream key-value bucket
//!   whose entries expire, so the bucket lists the nodes alive now.
//!
//! Everything lives under a prefix ([`BusSettings::prefix`]): several clusters, or parallel test
//! runs, share one NATS server without seeing each other. The bus carries ids and seqs, not push
//! contents or audiences: those are in the shared store, and a node reads them from there.

mod events;
mod nats;

pub use events::{Event, NodeInfo, PresenceQuestion, Report};
pub use nats::{BusSettings, EventStream, NatsBus, PresenceQuestions, ReportStream};

/// Why the bus did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot reach NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("NATS JetStream: {0}")]
    JetStream(String),
    #[error("bus message: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("invalid cluster prefix {0:?}: use letters, digits, '-' and '_'")]
    Prefix(String),
    /// An event of the stream that this node cannot read (from a newer node, say): passed
    /// over, never misread.
    #[error("event {sequence} not understood: {reason}")]
    Undecodable { sequence: u64, reason: String },
}

impl BusError {
    fn js(err: impl std::fmt::Display) -> Self {
        Self::JetStream(err.to_string())
    }
}
