//! The seam between the dispatcher and the nodes that hold client sessions.
//!
//! On one node the dispatcher's fan-out goes straight to this process's registry
//! ([`LocalBus`]). In a cluster it goes on NATS JetStream to every node, this one included, and
//! the deliveries come back as reports (`crate::cluster`). The dispatcher is written against
//! [`Bus`] only and never calls a gateway itself.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use herald_core::AppId;
use herald_gateway::protocol::{Frame, Recall, ServerFrame};
use herald_gateway::{Delivery, PushFrames, Registry};
use herald_index::RoaringBitmap;

use super::LivePush;

/// A push on its way to the sessions of its recipients.
pub struct Outgoing<'a> {
    pub push: &'a LivePush,
    pub frames: &'a PushFrames,
}

/// Where the dispatcher hands pushes, recalls and cancellations.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Delivers pushes (in seq order) to every online session of their recipients; one
    /// [`Delivery`] per push, merged over the nodes.
    async fn fan_out(&self, app: AppId, pushes: &[Outgoing<'_>]) -> Vec<Delivery>;
    /// Sends a recall frame to the recipients' online sessions wherever they are.
    async fn recall(
        &self,
        app: AppId,
        push_id: &str,
        seq: u64,
        recipients: &RoaringBitmap,
    ) -> Delivery;
    /// A push was cancelled: every node drops it from its inbox.
    async fn cancelled(&self, app: AppId, push_id: &str);
    /// A stored push for the node that dispatches its app (another one than this).
    async fn submit(&self, app: AppId, push_id: &str);
    /// Returns once this node has applied every directory change announced before the call:
    /// an audience resolved afterwards includes them.
    async fn caught_up(&self);
}

/// One node: the registry of this process is every session there is.
pub struct LocalBus {
    pub registry: Arc<Registry>,
}

#[async_trait]
impl Bus for LocalBus {
    async fn fan_out(&self, app: AppId, pushes: &[Outgoing<'_>]) -> Vec<Delivery> {
        let pushes: Vec<_> = pushes.iter().map(|p| (&p.push.recipients, p.frames)).collect();
        self.registry.deliver_all(app, &pushes)
    }

    async fn recall(
        &self,
        app: AppId,
        push_id: &str,
        seq: u64,
        recipients: &RoaringBitmap,
    ) -> Delivery {
        self.registry.recall(app, recipients, &recall_frame(push_id, seq))
    }

    async fn cancelled(&self, _app: AppId, _push_id: &str) {}

    async fn submit(&self, app: AppId, push_id: &str) {
        // Every lease is this node's: nothing is ever handed elsewhere.
        tracing::error!(app_id = app, %push_id, "a push was handed to another node on a single node");
    }

    async fn caught_up(&self) {}
}

/// The recall frame of a push.
pub fn recall_frame(push_id: &str, seq: u64) -> Frame {
    Frame::encode(&ServerFrame::Recall(Recall { push_id: push_id.to_owned(), seq }))
}

/// Which apps this node dispatches: all of them on a single node, those whose lease it holds
/// in a cluster.
pub enum Leases {
    All,
    Held(RwLock<HashSet<AppId>>),
}

impl Leases {
    pub fn cluster() -> Self {
        Self::Held(RwLock::default())
    }

    pub fn holds(&self, app: AppId) -> bool {
        match self {
            Self::All => true,
            Self::Held(held) => held.read().unwrap_or_else(|p| p.into_inner()).contains(&app),
        }
    }

    /// The apps held, sorted (a single node lists none: it holds every app without a lease).
    pub fn held(&self) -> Vec<AppId> {
        match self {
            Self::All => Vec::new(),
            Self::Held(held) => {
                let mut apps: Vec<_> =
                    held.read().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
                apps.sort_unstable();
                apps
            }
        }
    }

    pub(crate) fn insert(&self, app: AppId) {
        if let Self::Held(held) = self {
            held.write().unwrap_or_else(|p| p.into_inner()).insert(app);
        }
    }

    pub(crate) fn clear(&self) {
        if let Self::Held(held) = self {
            held.write().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }
}
