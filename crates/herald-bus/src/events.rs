//! The messages of the bus.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::AppId;
use serde::{Deserialize, Serialize};

/// One event of the cluster's stream. Every node reads every event, in the stream's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A push was accepted (or is due) on some node: the holder of the app's dispatch lease
    /// queues it.
    Submitted { app: AppId, push_id: String },
    /// The dispatcher on `node` gave a push its seq and stored its audience: every node
    /// delivers it to its own sessions and reports to `node`.
    Dispatched { app: AppId, seq: u64, push_id: String, node: String },
    /// A push was cancelled: it leaves every node's inbox.
    Cancelled { app: AppId, push_id: String },
    /// A push was recalled: it leaves every node's inbox, online devices get a recall frame,
    /// and each node reports to `node` whom it told.
    Recalled { app: AppId, push_id: String, seq: u64, node: String },
    /// These accounts' tags, attributes or devices changed in the store: every node reads
    /// them back into its index.
    AccountsChanged { app: AppId, accounts: Vec<u32> },
    /// The app itself changed (attribute names, secret, limits, deletion): caches drop it.
    AppChanged { app: AppId },
    /// A device was unbound or rebound: logins remembered for it are forgotten.
    DeviceChanged { app: AppId, device_id: String },
}

impl Event {
    pub fn app(&self) -> AppId {
        match self {
            Self::Submitted { app, .. }
            | Self::Dispatched { app, .. }
            | Self::Cancelled { app, .. }
            | Self::Recalled { app, .. }
            | Self::AccountsChanged { app, .. }
            | Self::AppChanged { app }
            | Self::DeviceChanged { app, .. } => *app,
        }
    }
}

/// What one node did with a dispatched or recalled push: the accounts it reached online (a
/// Roaring bitmap, portable format) and the frames it sent per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub app: AppId,
    pub push_id: String,
    pub node: String,
    /// `true` for a recall's report, `false` for a push's.
    pub recall: bool,
    #[serde(with = "bytes_base64")]
    pub reached: Vec<u8>,
    pub sent: BTreeMap<String, u64>,
}

/// A question to every node: is a device of this account connected to you? (RongCloud's
/// `checkOnline` on any node.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceQuestion {
    pub app: AppId,
    /// The account's dense id in the app.
    pub account: u32,
}

/// A node's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node: String,
    /// Where its API listens, as it was told to.
    pub listen: String,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    /// Client connections open on it.
    pub connections: usize,
    /// Apps whose dispatch lease it holds.
    pub leases: Vec<AppId>,
    /// The last stream sequence it has applied, and how many events it is behind.
    pub applied: u64,
    pub lag: u64,
}

/// Bitmaps travel as base64 inside the JSON of a report.
mod bytes_base64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_their_fields_through_json() {
        let events = [
            Event::Submitted { app: 3, push_id: "p1".into() },
            Event::Dispatched { app: 3, seq: 9, push_id: "p1".into(), node: "n1".into() },
            Event::AccountsChanged { app: 3, accounts: vec![1, 2, 70_000] },
            Event::AppChanged { app: 4 },
        ];
        for event in events {
            let json = serde_json::to_vec(&event).expect("encodes");
            assert_eq!(serde_json::from_slice::<Event>(&json).expect("decodes"), event);
        }
    }

    #[test]
    fn report_bitmaps_survive_every_length() {
        for len in 0..10 {
            let report = Report {
                app: 1,
                push_id: "p".into(),
                node: "n".into(),
                recall: false,
                reached: (0..len).map(|i| (i * 37 + 250) as u8).collect(),
                sent: BTreeMap::from([("ios".to_string(), 2)]),
            };
            let json = serde_json::to_string(&report).expect("encodes");
            assert_eq!(serde_json::from_str::<Report>(&json).expect("decodes"), report);
        }
    }

    #[test]
    fn a_foreign_report_is_refused_not_misread() {
        let bad = r#"{"app":1,"push_id":"p","node":"n","recall":false,"reached":"**","sent":{}}"#;
        assert!(serde_json::from_str::<Report>(bad).is_err());
    }
}
