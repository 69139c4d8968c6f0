//! Starting and stopping the server: open the store, bind, serve until told to stop, drain,
//! close the store.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_store::{SqliteOptions, SqliteStore, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{token, NonceCache};
use crate::config::Settings;
use crate::directory::Directory;
use crate::routes;
use crate::state::AppState;
use crate::telemetry;

const ADMIN_TOKEN_FILE: &str = "admin-token";

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
    let store = SqliteStore::open(
        &settings.data_dir,
        SqliteOptions { sync_full: settings.sqlite_sync_full, ..SqliteOptions::default() },
    )
    .await
    .with_context(|| format!("cannot open the store in {}", settings.data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(store);
    let admin_token = admin_token(&settings)?;
    let directory =
        Arc::new(Directory::load(store.clone()).await.context("cannot build the audience index")?);

    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %settings.data_dir.display(), "herald listening");
    println!("herald listening on http://{addr}");

    let drain_timeout = Duration::from_secs(settings.shutdown_timeout_secs);
    let state = AppState {
        store: store.clone(),
        directory,
        settings: Arc::new(settings),
        admin_token: admin_token.into(),
        nonces: Arc::new(NonceCache::default()),
        metrics: telemetry::metrics_handle(),
    };
    serve(listener, routes::router(state), shutdown, drain_timeout).await?;
    store.close().await;
    tracing::info!("herald stopped");
    Ok(())
}

async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> anyhow::Result<()> {
    let (stopping_tx, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, draining requests");
        let _ = stopping_tx.send(true);
    });
    let mut graceful = stopping.clone();
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

/// The admin token: configured, or kept in the data directory, or generated now and shown once.
fn admin_token(settings: &Settings) -> anyhow::Result<String> {
    if let Some(token) = &settings.admin_token {
        return Ok(token.clone());
    }
    let path = settings.data_dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_owned()),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
    let token = token::random_token(40);
    write_private(&path, &token).with_context(|| format!("cannot write {}", path.display()))?;
    println!("admin token (shown once; kept in {}): {token}", path.display());
    Ok(token)
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
