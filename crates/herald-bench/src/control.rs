//! What the orchestrator and its worker processes say to each other: one JSON object per line,
//! commands on the worker's stdin, events on its stdout.
//!
//! Workers exist because one process may hold at most 20,000 open files on this machine; the
//! orchestrator splits the connections among them and merges what they measure.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::hist::Histogram;

/// Orchestrator → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Opens (or, with `resume`, reopens) this worker's herald connections.
    HeraldConnect(HeraldConnect),
    /// Opens this worker's MQTT subscriptions.
    MqttConnect(MqttConnect),
    /// Opens this worker's Nchan WebSocket subscriptions.
    NchanConnect(NchanConnect),
    /// Starts a new round: per-connection counts, latencies and closes start from zero. With
    /// `expect`, the worker reports [`Event::Done`] once every connection received that many.
    Round {
        expect: Option<u32>,
    },
    /// Sets (or raises) the current round's expectation.
    Expect {
        count: u32,
    },
    /// Asks for the current round's figures now.
    Stats,
    /// Closes every connection (herald ones after a last cumulative ack).
    Disconnect,
    /// Starts misbehaving herald clients; they go on (reconnecting when cut off) until the
    /// next disconnect command.
    Hostile(HostileAttack),
    /// Asks for what happened to the misbehaving clients so far.
    HostileReport,
    Exit,
}

/// Where and how to open herald connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeraldConnect {
    /// `ws://HOST:PORT/v1/connect`.
    pub url: String,
    pub key: String,
    pub secret: String,
    /// Global number of this worker's first connection: account `bench-N`, device `bench-dev-N`.
    pub first: u64,
    pub count: u32,
    /// Local addresses the connections are spread over (one TCP port range each).
    pub sources: Vec<Ipv4Addr>,
    /// Handshakes in flight at once; the reconnect storm passes `count`.
    pub concurrency: u32,
    /// A connection acks cumulatively at most this often (0: after every push).
    pub ack_interval_ms: u64,
    /// Reconnect the existing connections, each with `last_seq` = what it acked.
    pub resume: bool,
    /// Reconnect the connections that were lost (their node died), each with `last_seq` =
    /// what it acked, as members of the current round.
    #[serde(default)]
    pub rejoin: bool,
    /// Percent of the connections that close and reconnect (resuming from their ack) per
    /// minute, at random times; above 0 a connection the server closes reconnects too,
    /// instead of dropping out (the soak's clients).
    #[serde(default)]
    pub churn_per_min: f64,
}

/// Misbehaving clients, by kind: how many of each.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostileAttack {
    /// `herald` connection settings; `first`, `count`, `resume` … are not used.
    pub herald: HeraldConnect,
    /// Say hello, then never read.
    pub never_read: u32,
    /// Say hello, then read one byte a second.
    pub slow_read: u32,
    /// Say hello, then send a 1 MiB frame; again after each close.
    pub big_frames: u32,
    /// Open WebSocket connections and never say hello, all from `no_hello_source`.
    pub no_hello: u32,
    pub no_hello_source: Ipv4Addr,
    /// Say hello, then send acks as fast as the socket takes them; again after each close.
    pub ack_flood: u32,
}

/// Where and how to open MQTT subscriptions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MqttConnect {
    pub broker: SocketAddr,
    pub topic: String,
    /// Client ids are `PREFIX-N`.
    pub client_prefix: String,
    pub first: u64,
    pub count: u32,
    pub sources: Vec<Ipv4Addr>,
    pub concurrency: u32,
}

/// Where and how to open Nchan WebSocket subscriptions (all on one channel).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NchanConnect {
    /// `ws://HOST:PORT/sub/CHANNEL`.
    pub url: String,
    pub first: u64,
    pub count: u32,
    pub sources: Vec<Ipv4Addr>,
    pub concurrency: u32,
}

/// Worker → orchestrator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    Ready {
        pid: u32,
        fd_limit: u64,
    },
    /// Every connection attempt of a connect command finished.
    Connected {
        ok: u32,
        failed: u32,
        errors: Vec<String>,
        elapsed_ms: u64,
    },
    /// The worker has started the round: frames from now on count in it.
    RoundStarted,
    /// Every connection of the round has received at least `min_complete` frames.
    Progress {
        min_complete: u32,
        at_us: u64,
    },
    /// The round's expectation was met (or can no longer be: see `lost`).
    Done(RoundStats),
    Stats(RoundStats),
    Disconnected {
        closed: u32,
    },
    /// What happened to the misbehaving clients: `kind:outcome` → count.
    HostileReport {
        outcomes: BTreeMap<String, u64>,
    },
    /// The worker could not do what it was told.
    Failed {
        error: String,
    },
}

/// One worker's figures for the current round.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoundStats {
    /// Connections taking part.
    pub members: u32,
    /// Frames (pushes or publishes) received.
    pub frames: u64,
    /// Every member has received at least this many.
    pub min_complete: u32,
    /// When `min_complete` reached the expectation (µs since the epoch).
    pub done_at_us: Option<u64>,
    pub first_recv_us: u64,
    pub last_recv_us: u64,
    /// Members that received more than expected.
    pub over: u32,
    /// Frames whose sequence number a connection had already seen.
    pub duplicates: u64,
    /// Connections that dropped out of the round (closed by the server, failed to connect).
    pub lost: u32,
    /// Why connections closed, by close code or reason.
    pub closes: BTreeMap<String, u32>,
    /// Receive time − send stamp, µs.
    pub latency: Histogram,
    /// Pushes a connection never received: seqs it skipped over (cumulative over rounds).
    #[serde(default)]
    pub gaps: u64,
    /// Lowest and highest last seq over the connections that should be connected.
    #[serde(default)]
    pub min_last_seq: Option<u64>,
    #[serde(default)]
    pub max_last_seq: u64,
}

impl RoundStats {
    /// Adds another worker's figures: counts add, times take the extremes.
    pub fn merge(&mut self, other: &RoundStats) {
        self.members += other.members;
        self.frames += other.frames;
        self.min_complete = if self.members == other.members {
            other.min_complete
        } else {
            self.min_complete.min(other.min_complete)
        };
        self.done_at_us = match (self.done_at_us, other.done_at_us) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        self.first_recv_us = match (self.first_recv_us, other.first_recv_us) {
            (0, b) => b,
            (a, 0) => a,
            (a, b) => a.min(b),
        };
        self.last_recv_us = self.last_recv_us.max(other.last_recv_us);
        self.over += other.over;
        self.duplicates += other.duplicates;
        self.lost += other.lost;
        for (reason, n) in &other.closes {
            *self.closes.entry(reason.clone()).or_default() += n;
        }
        self.latency.merge(&other.latency);
        self.gaps += other.gaps;
        self.min_last_seq = match (self.min_last_seq, other.min_last_seq) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max_last_seq = self.max_last_seq.max(other.max_last_seq);
    }

    /// Merges the figures of all workers; `None` for no workers.
    pub fn merged<'a>(all: impl IntoIterator<Item = &'a RoundStats>) -> Option<RoundStats> {
        let mut iter = all.into_iter();
        let mut total = iter.next()?.clone();
        for stats in iter {
            total.merge(stats);
        }
        Some(total)
    }
}

/// Where to find the send stamp and sequence number in a received frame without parsing the
/// whole JSON: at 200,000 frames per second the client side must stay cheap, or it measures
/// itself rather than the server.
pub mod scan {
    /// Member of the message (herald) or payload (MQTT) carrying the send time in µs.
    pub const STAMP: &str = "bench_t";

    /// The unsigned integer after the first `"name":` in `text`.
    pub fn number(text: &[u8], name: &str) -> Option<u64> {
        let at = member(text, name.as_bytes())?;
        let digits = text[at..].iter().take_while(|b| b.is_ascii_digit());
        let mut value: u64 = 0;
        let mut any = false;
        for &b in digits {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            any = true;
        }
        any.then_some(value)
    }

    /// Index just past the first `"name":` in `text`. Jumps from quote to quote rather than
    /// comparing at every byte.
    fn member(text: &[u8], name: &[u8]) -> Option<usize> {
        let mut from = 0;
        while let Some(offset) = text[from..].iter().position(|&b| b == b'"') {
            let start = from + offset + 1;
            let end = start + name.len();
            if text.get(start..end) == Some(name) && text.get(end..end + 2) == Some(b"\":") {
                return Some(end + 2);
            }
            from = start;
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn finds_numbers() {
            let frame = br#"{"type":"push","push_id":"p-1","seq":42,"message":{"bench_t":1700000000000001,"n":3}}"#;
            assert_eq!(number(frame, "seq"), Some(42));
            assert_eq!(number(frame, STAMP), Some(1_700_000_000_000_001));
            assert_eq!(number(frame, "n"), Some(3));
            assert_eq!(number(frame, "missing"), None);
            assert_eq!(number(br#"{"seq":"x"}"#, "seq"), None);
        }
    }
}
