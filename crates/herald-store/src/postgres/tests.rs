//! The contract suite on a real PostgreSQL server (`HERALD_TEST_POSTGRES`, by default the
//! machine's `postgres://postgres@127.0.0.1:5432/test`). Every test gets a schema of its own,
//! named uniquely and dropped at the end, so parallel tests and runs never see each other.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::contract::create_demo_app;

/// The server tests connect to.
pub(crate) fn test_url() -> String {
    std::env::var("HERALD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Drops its schema when the test ends.
pub(crate) struct Schema {
    name: String,
}

impl Schema {
    fn new() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        Self { name: format!("herald_store_test_{}_{nanos}_{n}", std::process::id()) }
    }

    fn options(&self) -> PgOptions {
        PgOptions {
            schema: self.name.clone(),
            application_name: self.name.clone(),
            pool_size: 8,
            ..PgOptions::new(test_url())
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot run async code: a thread of its
        // own. The test's runtime is blocked meanwhile, so its pool cannot finish returning
        // connections (a dropped transaction's rollback is sent then): `drop` ends the
        // schema's sessions first.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            let dropped = runtime.block_on(super::test_schemas::drop(&test_url(), &name));
            dropped.map_err(|err| err.to_string())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}", self.name);
        }
    }
}

async fn store() -> (Schema, PgStore) {
    let schema = Schema::new();
    let store = PgStore::connect(&schema.options()).await.unwrap_or_else(|err| {
        panic!("PostgreSQL at {} (set HERALD_TEST_POSTGRES): {err}", test_url())
    });
    (schema, store)
}

crate::contract::suite!(store);

#[tokio::test]
async fn a_probe_reads_the_schema_and_the_clock_and_changes_nothing() {
    let schema = Schema::new();
    let before = PgStore::probe(&schema.options()).await.unwrap();
    assert_eq!(before.schema_version, None, "the schema is not created by a probe");
    let skew = (Utc::now() - before.server_time.unwrap()).num_seconds().abs();
    assert!(skew < 60, "the server's clock: {skew} s away");
    let store = PgStore::connect(&schema.options()).await.unwrap();
    let after = PgStore::probe(&schema.options()).await.unwrap();
    assert_eq!(after.schema_version, Some(after.known_version));
    store.close().await;
}

#[tokio::test]
async fn data_survives_reconnect_and_migrations_are_idempotent() {
    let (schema, store) = store().await;
    let app = create_demo_app(&store, "kept").await;
    store.close().await;
    let store = PgStore::connect(&schema.options()).await.unwrap();
    assert_eq!(store.app(app.id).await.unwrap(), app);
}

#[tokio::test]
async fn a_schema_from_a_newer_herald_is_refused() {
    let (schema, store) = store().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    match PgStore::connect(&schema.options()).await {
        Err(StoreError::SchemaTooNew { found, known }) => {
            assert_eq!((found, known), (99_990_101_000_000, 2));
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // A port nothing listens on: the error says the store cannot be reached.
    let options = PgOptions {
        acquire_timeout: Duration::from_secs(2),
        ..PgOptions::new("postgres://postgres@127.0.0.1:9/test")
    };
    match PgStore::connect(&options).await {
        Err(err) => assert!(err.is_unavailable(), "{err:?}"),
        Ok(_) => panic!("connected to nothing"),
    }
}

#[tokio::test]
async fn terminated_sessions_are_replaced() {
    let (schema, store) = store().await;
    let app = create_demo_app(&store, "resilient").await;
    let admin = PgPoolOptions::new().max_connections(1).connect(&test_url()).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&schema.name)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "the store had sessions to terminate");
    // A call on a dead session fails as unavailable, never otherwise; the pool then opens new
    // sessions by itself.
    let mut answered = 0;
    for _ in 0..20 {
        match store.app(app.id).await {
            Ok(found) => {
                assert_eq!(found.id, app.id);
                answered += 1;
            }
            Err(err) => assert!(err.is_unavailable(), "{err:?}"),
        }
    }
    assert!(answered >= 19, "service resumed after the sessions were killed ({answered}/20)");
}

#[tokio::test]
async fn a_dispatch_lease_has_one_holder_until_its_session_ends() {
    let (schema, first) = store().await;
    let second = PgStore::connect(&schema.options()).await.unwrap();
    // Without a session nothing is taken; opening one says no lease was held before.
    assert!(first.take_dispatch_lease(7).await.unwrap_err().is_unavailable());
    assert!(!first.renew_dispatch_leases().await.unwrap());
    assert!(!second.renew_dispatch_leases().await.unwrap());
    assert!(first.take_dispatch_lease(7).await.unwrap());
    assert!(first.take_dispatch_lease(7).await.unwrap(), "the holder takes it again");
    assert!(!second.take_dispatch_lease(7).await.unwrap());
    assert!(second.take_dispatch_lease(8).await.unwrap(), "another app's lease is free");
    assert!(first.renew_dispatch_leases().await.unwrap());
    // Another schema is another deployment: its leases are its own.
    let (_other_schema, other) = store().await;
    assert!(!other.renew_dispatch_leases().await.unwrap());
    assert!(other.take_dispatch_lease(7).await.unwrap());
    // The holder goes away (as a killed process's session does): the lease is free at once.
    first.close().await;
    assert!(second.take_dispatch_lease(7).await.unwrap());
    assert!(second.renew_dispatch_leases().await.unwrap());
}
