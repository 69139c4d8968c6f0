//! A cluster this run starts: N `herald serve` nodes on one PostgreSQL schema and the
//! machine's NATS JetStream, under a schema and stream prefix of the run's own that are
//! removed at the end, so that runs never see each other.

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use rand::distributions::{Alphanumeric, DistString};
use rand::RngCore;

use super::server::LocalServer;
use super::FanoutArgs;

/// Connections a PostgreSQL server takes by default; each node holds its pool plus three (two
/// for id reservations, one for its leases).
const DATABASE_CONNECTIONS: u32 = 100;

/// A pool size per node that keeps every node's connections within the database's limit,
/// with room for the bench and `psql` (at most herald's default of 16).
fn pool_size(nodes: u32) -> u32 {
    (DATABASE_CONNECTIONS.saturating_sub(10) / nodes.max(1)).saturating_sub(3).clamp(2, 16)
}

pub struct LocalCluster {
    /// `None` once killed.
    nodes: Vec<Option<LocalServer>>,
    pub admin_token: String,
    run: String,
    store: String,
    nats: String,
}

impl LocalCluster {
    /// Starts the nodes one after the other (the first creates the schema).
    pub async fn start(args: &FanoutArgs, env: &[(String, String)]) -> anyhow::Result<Self> {
        let run = format!("herald_bench_{}", std::process::id());
        let admin_token = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let shared = [
            ("HERALD_STORE", args.cluster_store.clone()),
            ("HERALD_POSTGRES_POOL_SIZE", pool_size(args.cluster).to_string()),
            ("HERALD_POSTGRES_SCHEMA", run.clone()),
            ("HERALD_CLUSTER_NATS", args.cluster_nats.clone()),
            ("HERALD_CLUSTER_PREFIX", run.clone()),
            (
                "HERALD_VENDOR_CREDENTIALS_KEY",
                base64::engine::general_purpose::STANDARD.encode(key),
            ),
        ];
        let mut cluster = Self {
            nodes: Vec::new(),
            admin_token,
            run,
            store: args.cluster_store.clone(),
            nats: args.cluster_nats.clone(),
        };
        for i in 0..args.cluster {
            let mut node_env: Vec<(String, String)> =
                shared.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
            node_env.push(("HERALD_CLUSTER_NODE_ID".into(), format!("node-{i}")));
            node_env.extend(env.iter().cloned());
            let token = cluster.admin_token.clone();
            let node = LocalServer::start_with_token(&args.herald_bin, &node_env, token)
                .await
                .with_context(|| format!("starting node {i}"))?;
            eprintln!("node-{i}: pid {} on http://{}", node.pid, node.addr);
            cluster.nodes.push(Some(node));
        }
        Ok(cluster)
    }

    /// `http://ADDR` of every node started, killed ones included (by index).
    pub fn bases(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| n.as_ref().map_or_else(String::new, |n| format!("http://{}", n.addr)))
            .collect()
    }

    /// Pids of the nodes alive.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().flatten().map(|n| n.pid).collect()
    }

    /// `kill -9` of node `i`.
    pub async fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut node) = self.nodes.get_mut(i).and_then(Option::take) {
            node.kill().await?;
        }
        Ok(())
    }

    /// Warning and error lines the nodes logged, with the first few.
    pub fn log_excerpt(&self) -> (usize, Vec<String>) {
        let nodes = self.nodes.iter().flatten();
        let lines = nodes.clone().map(LocalServer::log_lines).sum();
        (lines, nodes.flat_map(|n| n.log_excerpt(1)).take(3).collect())
    }

    /// Stops the nodes, then drops the schema and the streams of the run.
    pub async fn stop(self) -> anyhow::Result<()> {
        for node in self.nodes.into_iter().flatten() {
            node.stop().await?;
        }
        let pool = sqlx::PgPool::connect(&self.store).await.context("dropping the run's schema")?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.run))
            .execute(&pool)
            .await?;
        pool.close().await;
        let settings = herald_bus::BusSettings {
            url: self.nats.clone(),
            prefix: self.run.clone(),
            node: "bench".into(),
        };
        let bus =
            tokio::time::timeout(Duration::from_secs(15), herald_bus::NatsBus::connect(&settings))
                .await
                .context("NATS did not answer")??;
        bus.destroy().await?;
        Ok(())
    }
}

/// Waits (up to 30 s) until a node other than `not` holds the app's dispatch lease, as the
/// nodes' heartbeats tell; returns its index.
pub async fn lease_holder(
    api: &super::server::Api,
    admin_token: &str,
    app: &super::server::AppCreds,
    not: Option<usize>,
) -> anyhow::Result<usize> {
    for _ in 0..300 {
        let view = api.cluster(admin_token).await?;
        let holders = view["nodes"].as_array().into_iter().flatten().filter(|node| {
            node["leases"].as_array().is_some_and(|l| l.iter().any(|a| a.as_i64() == Some(app.id)))
        });
        for node in holders {
            let name = node["node"].as_str().unwrap_or_default();
            let index: usize = name.trim_start_matches("node-").parse().context("node name")?;
            if Some(index) != not {
                return Ok(index);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("no node took the dispatch lease of app {} within 30 s", app.id)
}
