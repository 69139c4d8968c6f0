//! Starting and stopping the server: open the store, bind, serve until told to stop, drain,
//! close the store.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use herald_bus::{BusSettings, NatsBus};
use herald_core::redact::url_without_password;
use herald_core::AppId;
use herald_store::{PgStore, SqliteOptions, SqliteStore, Store, StoreError};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use herald_gateway::Gateway;

use crate::auth::{token, NonceCache, Nonces, SharedNonces, StoreAuthenticator};
use crate::cluster::{spawn_lease_keeper, Cluster, Follower};
use crate::config::{ClusterSettings, Settings, StoreChoice};
use crate::directory::Directory;
use crate::dispatch::{
    AppCache, Bus, DispatchContext, Dispatcher, Leases, LiveInbox, LocalBus, Receipts, StoreInbox,
    DEVICE_LINGER,
};
use crate::routes;
use crate::state::{AppState, Shared};
use crate::tasks::Tasks;
use crate::telemetry;
use crate::vendors::Vendors;
use crate::webhooks::Webhooks;
use herald_console::Console;
use herald_service::{AppCaches, Service};
use herald_vendor::{SecretBox, VendorSender};

const ADMIN_TOKEN_FILE: &str = "admin-token";
const NODE_ID_FILE: &str = "node-id";
pub(crate) const VENDOR_KEY_FILE: &str = "vendor-key";
/// Pending connections the kernel queues for `accept`.
const LISTEN_BACKLOG: u32 = 4096;
/// How often device cursors and report counts are written.
const RECEIPTS_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How long a start that failed half-way waits for the tasks it had started: nothing was
/// accepted yet, so there is little for them to finish.
const FAILED_START_STOP: Duration = Duration::from_secs(5);

/// Runs herald until `shutdown` completes, then stops accepting, lets in-flight requests finish
/// (up to `shutdown_timeout_secs`) and closes the store.
///
/// Prints `herald listening on http://ADDR` on stdout once the socket is bound, so that scripts
/// and tests using port 0 learn the address.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data directory {}", settings.data_dir.display()))?;
    let store = open_store(&settings).await?;
    let admin_token = admin_token(&settings)?;
    let vendors = vendors(&settings).await?;
    vendors.load(&store).await.context("cannot load vendor credentials")?;
    raise_open_files_limit();
    // Bound before the state is built: a cluster node tells the others where it listens.
    let listener =
        listen(settings.listen).with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let tasks = Tasks::default();
    let built = build_state(store.clone(), settings, admin_token, vendors, addr, &tasks).await;
    let state = match built {
        Ok(state) => state,
        Err(err) => {
            // What was started before the failure ends before the store closes.
            tasks.shutdown(FAILED_START_STOP).await;
            store.close().await;
            return Err(err);
        }
    };

    tracing::info!(%addr, data_dir = %state.settings.data_dir.display(), "herald listening");
    println!("herald listening on http://{addr}");

    let drain_timeout = Duration::from_secs(state.settings.shutdown_timeout_secs);
    let gateway = state.gateway.clone();
    let cluster = state.cluster.clone();
    serve(listener, routes::router(state), shutdown, gateway.clone(), drain_timeout).await?;
    // Every connection was told to close; the acks they sent are queued to the receipts.
    if tokio::time::timeout(drain_timeout, gateway.closed()).await.is_err() {
        tracing::warn!(?drain_timeout, "client connections still open after the drain timeout");
    }
    // Dispatch, vendor sends, webhooks, registrations and cluster tasks end, then the
    // receipts are written a last time, before the node leaves and the store closes.
    tasks.shutdown(drain_timeout).await;
    if let Some(cluster) = cluster {
        cluster.leave().await;
    }
    store.close().await;
    tracing::info!("herald stopped");
    Ok(())
}

/// The store could not be opened: unreachable, refusing the credentials, or its schema is
/// newer than this herald or cannot be migrated.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the store {target}: {source}")]
pub struct StoreOpenError {
    /// The data directory or the database, without credentials.
    target: String,
    #[source]
    source: StoreError,
}

/// Opens the store the settings name, applying pending migrations.
async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let choice = settings.store_choice()?;
    let target = store_target(settings, &choice);
    let opened: Result<Arc<dyn Store>, StoreError> = match choice {
        StoreChoice::Sqlite => {
            let options =
                SqliteOptions { sync_full: settings.sqlite_sync_full, ..SqliteOptions::default() };
            let store = SqliteStore::open(&settings.data_dir, options).await;
            store.map(|store| Arc::new(store) as Arc<dyn Store>)
        }
        StoreChoice::Postgres(options) => {
            let store = PgStore::connect(&options).await;
            store.map(|store| Arc::new(store) as Arc<dyn Store>)
        }
    };
    let store = opened.map_err(|source| StoreOpenError { target: target.clone(), source })?;
    tracing::info!(store = %target, "store open");
    Ok(store)
}

/// Applies the store's pending migrations (by opening it) and says at which version it is.
pub async fn migrate(settings: &Settings) -> anyhow::Result<String> {
    let choice = settings.store_choice()?;
    let target = store_target(settings, &choice);
    let failed = |source| StoreOpenError { target: target.clone(), source };
    let version = match choice {
        StoreChoice::Sqlite => {
            std::fs::create_dir_all(&settings.data_dir)?;
            let store = SqliteStore::open(&settings.data_dir, SqliteOptions::default())
                .await
                .map_err(failed)?;
            let version = store.schema_version().await.map_err(failed)?;
            store.close().await;
            version
        }
        StoreChoice::Postgres(options) => {
            let store = PgStore::connect(&options).await.map_err(failed)?;
            let version = store.schema_version().await.map_err(failed)?;
            store.close().await;
            version
        }
    };
    Ok(format!("store {target}: schema at version {}", version.unwrap_or(0)))
}

/// How logs and errors name the store: never with its password.
pub(crate) fn store_target(settings: &Settings, choice: &StoreChoice) -> String {
    match choice {
        StoreChoice::Sqlite => format!("sqlite in {}", settings.data_dir.display()),
        StoreChoice::Postgres(options) => {
            format!("{} (schema {})", url_without_password(&options.url), options.schema)
        }
    }
}

/// Rebuilds what lives in memory from the store (audience indexes, offline inbox), wires the
/// gateway and the dispatcher, and resumes pushes a previous run left unfinished.
async fn build_state(
    store: Arc<dyn Store>,
    settings: Settings,
    admin_token: String,
    vendors: Vendors,
    addr: SocketAddr,
    tasks: &Tasks,
) -> anyhow::Result<AppState> {
    // In a cluster, where this node starts reading the bus is fixed before anything is read
    // from the store: every change after what was read is then on the bus.
    let joined = match &settings.cluster {
        Some(cluster) => Some(join_cluster(&settings, cluster, &store).await?),
        None => None,
    };
    let mut directory =
        Directory::load(store.clone()).await.context("cannot build the audience index")?;
    directory.set_tasks(tasks.clone());
    let directory = Arc::new(directory);
    let live = LiveInbox::load(&store, settings.inbox_cache_bytes).await;
    let live = Arc::new(live.context("cannot load the offline inbox")?);
    let receipts =
        Receipts::spawn(store.clone(), live.clone(), RECEIPTS_FLUSH_INTERVAL, DEVICE_LINGER, tasks);
    let webhooks = Webhooks::spawn(store.clone(), settings.webhooks.clone(), tasks);
    let authenticator = StoreAuthenticator::new(store.clone());
    let app_caches =
        AppCaches { by_key: authenticator.cache(), by_id: Arc::new(AppCache::default()) };
    let inbox = StoreInbox {
        store: store.clone(),
        directory: directory.clone(),
        live: live.clone(),
        receipts: receipts.clone(),
        apps: app_caches.by_id.clone(),
        vendor: vendors.sender.clone(),
    };
    let gateway = Gateway::new(settings.gateway.clone(), Arc::new(authenticator), Arc::new(inbox));
    let registry = gateway.registry().clone();
    let (bus, leases, cluster): (Arc<dyn Bus>, _, _) = match joined {
        Some(joined) => {
            let leases = Arc::new(Leases::cluster());
            let listen = addr.to_string();
            let (bus, from, tasks) = (joined.bus, joined.from, tasks.clone());
            let cluster = Cluster::new(bus, listen, registry.clone(), leases.clone(), from, tasks);
            directory.set_feed(cluster.clone());
            (cluster.clone(), leases, Some((cluster, joined.from, joined.delivered)))
        }
        None => (Arc::new(LocalBus { registry: registry.clone() }), Arc::new(Leases::All), None),
    };
    let dispatcher = Dispatcher::new(DispatchContext {
        store: store.clone(),
        directory: directory.clone(),
        live: live.clone(),
        bus,
        leases: leases.clone(),
        receipts: receipts.clone(),
        webhooks: webhooks.clone(),
        vendors: vendors.clone(),
        tasks: tasks.clone(),
    });
    let nonces = match &cluster {
        Some(_) => Nonces::Shared(SharedNonces::new(store.clone())),
        None => Nonces::Local(NonceCache::default()),
    };
    let cluster = match cluster {
        Some((cluster, from, delivered)) => {
            cluster.spawn_background().await.context("cannot subscribe to the cluster's bus")?;
            Follower {
                cluster: cluster.clone(),
                store: store.clone(),
                directory: directory.clone(),
                live: live.clone(),
                registry,
                caches: app_caches.clone(),
                vendors: vendors.clone(),
                dispatcher: dispatcher.clone(),
                leases: leases.clone(),
                delivered,
            }
            .spawn(from, tasks);
            spawn_lease_keeper(store.clone(), leases, dispatcher.clone(), tasks);
            tracing::info!(node = cluster.node(), "cluster node started");
            Some(cluster)
        }
        None => {
            dispatcher.resume().await.context("cannot resume pushes")?;
            None
        }
    };
    dispatcher.spawn_sweeper();
    let service = Service {
        store,
        directory,
        dispatcher,
        requests: Arc::default(),
        receipts,
        webhooks,
        vendors,
        cluster,
        app_caches,
        live,
    };
    Ok(AppState::new(Shared {
        service,
        gateway,
        settings: Arc::new(settings),
        console: Console::new(admin_token.clone().into()),
        admin_token: admin_token.into(),
        nonces: Arc::new(nonces),
        metrics: telemetry::metrics_handle(),
    }))
}

/// What a node learns when it joins the cluster, before it reads the store.
struct Joined {
    bus: NatsBus,
    /// The stream sequence it starts reading after.
    from: u64,
    /// Per app, the seq of the last push dispatched before it started.
    delivered: HashMap<AppId, u64>,
}

/// Connects to the cluster's bus as this node.
async fn join_cluster(
    settings: &Settings,
    cluster: &ClusterSettings,
    store: &Arc<dyn Store>,
) -> anyhow::Result<Joined> {
    let node = node_id(settings, cluster)?;
    let bus_settings =
        BusSettings { url: cluster.nats.clone(), prefix: cluster.prefix.clone(), node };
    let bus = NatsBus::connect(&bus_settings).await.map_err(|source| BusOpenError { source })?;
    let from = bus.last_sequence().await.map_err(|source| BusOpenError { source })?;
    let mut delivered = HashMap::new();
    for app in store.apps().await.context("cannot list apps")? {
        delivered.insert(app.id, store.last_push_seq(app.id).await.context("cannot read seqs")?);
    }
    Ok(Joined { bus, from, delivered })
}

/// The bus of the cluster could not be reached or set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot join the cluster: {source}")]
pub struct BusOpenError {
    #[source]
    source: herald_bus::BusError,
}

/// This node's name: configured, or kept in the data directory (generated on first start).
fn node_id(settings: &Settings, cluster: &ClusterSettings) -> anyhow::Result<String> {
    if let Some(id) = &cluster.node_id {
        return Ok(id.clone());
    }
    let path = settings.data_dir.join(NODE_ID_FILE);
    let make = || format!("node-{}", token::random_token(10).to_ascii_lowercase());
    Ok(kept_in_file(&path, make)?.0)
}

async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    gateway: Gateway,
    drain_timeout: Duration,
) -> anyhow::Result<()> {
    let (stopping_tx, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, draining requests");
        // Client connections are closed with 1001 so that devices reconnect elsewhere or later.
        gateway.shutdown();
        let _ = stopping_tx.send(true);
    });
    let mut graceful = stopping.clone();
    // Frames are gathered into one write per wake-up already; Nagle's algorithm would only
    // hold a push back until the client's TCP acknowledges the previous one.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "TCP_NODELAY not set");
        }
    });
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = graceful.wait_for(|stop| *stop).await;
        });
    let mut deadline = stopping;
    tokio::select! {
        result = server => result.context("HTTP server failed")?,
        _ = async move {
            let _ = deadline.wait_for(|stop| *stop).await;
            tokio::time::sleep(drain_timeout).await;
        } => tracing::warn!(?drain_timeout, "requests still running after the drain timeout; closing"),
    }
    Ok(())
}

/// The vendor sender, with the key that seals credentials: configured, or kept in the data
/// directory (generated on first start) so that the embedded default works without setup.
async fn vendors(settings: &Settings) -> anyhow::Result<Vendors> {
    let sender = VendorSender::new(settings.vendor.clone()).context("invalid [vendor] settings")?;
    let key = match &settings.vendor.credentials_key {
        Some(key) => key.clone(),
        None => {
            let path = settings.data_dir.join(VENDOR_KEY_FILE);
            match std::fs::read_to_string(&path) {
                Ok(key) if !key.trim().is_empty() => key.trim().to_owned(),
                _ => {
                    let key = SecretBox::generate_key();
                    write_private(&path, &key)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    tracing::warn!(path = %path.display(), "generated the vendor credentials key in the data directory; set vendor.credentials_key to keep it elsewhere");
                    key
                }
            }
        }
    };
    let secrets = SecretBox::new(&key, &settings.vendor.previous_credentials_keys)
        .context("invalid vendor credentials key")?;
    Ok(Vendors {
        sender: Arc::new(sender),
        secrets: Arc::new(secrets),
        redelivery: settings.vendor.redelivery.clone(),
    })
}

/// Binds with a backlog large enough for a reconnect storm: thousands of devices coming back at
/// once would otherwise see SYNs dropped and retried seconds later.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Every client connection is an open file: the soft limit (often 1,024) is raised to the hard
/// limit, which is what caps connections per process.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open files limit raised to the hard limit"),
        Err(err) => tracing::warn!(%err, "cannot raise the open files limit"),
    }
}

/// The admin token: configured, or kept in the data directory, or generated now and shown once.
fn admin_token(settings: &Settings) -> anyhow::Result<String> {
    if let Some(token) = &settings.admin_token {
        return Ok(token.clone());
    }
    let path = settings.data_dir.join(ADMIN_TOKEN_FILE);
    let (token, made) = kept_in_file(&path, || token::random_token(40))?;
    if made {
        println!("admin token (shown once; kept in {}): {token}", path.display());
    }
    Ok(token)
}

/// The value kept in `path`, or one made now and kept there (then `true`).
fn kept_in_file(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<(String, bool)> {
    match std::fs::read_to_string(path) {
        Ok(value) if !value.trim().is_empty() => return Ok((value.trim().to_owned(), false)),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
    let value = make();
    write_private(path, &value).with_context(|| format!("cannot write {}", path.display()))?;
    Ok((value, true))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(content.as_bytes())?;
    file.sync_all()
}
