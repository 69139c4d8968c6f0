//! The behaviour every backend must show. Each backend's tests call [`suite!`] with a function
//! that builds a fresh, empty store, so a new backend runs the same checks unchanged.

use chrono::{Duration, Utc};
use herald_core::{App, Limits};

use crate::{AppUpdate, NewApp, Store, StoreError};

/// Generates one `#[tokio::test]` per contract check for the store built by `$make`.
macro_rules! suite {
    ($make:path) => {
        $crate::contract::suite!(@tests $make;
            app_round_trip, app_key_is_unique, unknown_app_is_not_found,
            update_changes_only_given_fields, rotate_keeps_previous_secret, delete_removes_app);
    };
    (@tests $make:path; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $make().await;
                $crate::contract::$name(&store).await;
            }
        )*
    };
}
pub(crate) use suite;

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", Utc::now().timestamp_nanos_opt().unwrap_or_default())
}

pub(crate) async fn create_demo_app(store: &dyn Store, name: &str) -> App {
    store
        .create_app(NewApp {
            name: name.into(),
            key: unique("key"),
            secret: "secret-1".into(),
            limits: Limits::default(),
        })
        .await
        .unwrap()
}

pub(crate) async fn app_round_trip(store: &dyn Store) {
    let app = create_demo_app(store, "demo").await;
    assert_eq!(app.name, "demo");
    assert_eq!(app.limits, Limits::default());
    assert_eq!(store.app(app.id).await.unwrap(), app);
    assert_eq!(store.app_by_key(&app.key).await.unwrap(), app);
    assert!(store.apps().await.unwrap().contains(&app));
}

pub(crate) async fn app_key_is_unique(store: &dyn Store) {
    let app = create_demo_app(store, "one").await;
    let again =
        NewApp { name: "two".into(), key: app.key, secret: "s".into(), limits: Limits::default() };
    assert!(matches!(store.create_app(again).await, Err(StoreError::Conflict(_))));
}

pub(crate) async fn unknown_app_is_not_found(store: &dyn Store) {
    assert!(matches!(store.app(i64::MAX).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.app_by_key("nope").await, Err(StoreError::NotFound { .. })));
    let update = AppUpdate { name: Some("x".into()), limits: None };
    assert!(matches!(store.update_app(i64::MAX, update).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.delete_app(i64::MAX).await, Err(StoreError::NotFound { .. })));
}

pub(crate) async fn update_changes_only_given_fields(store: &dyn Store) {
    let app = create_demo_app(store, "before").await;
    let limits = Limits { tags_per_account: 7, ..Limits::default() };
    let updated =
        store.update_app(app.id, AppUpdate { name: None, limits: Some(limits) }).await.unwrap();
    assert_eq!((updated.name.as_str(), updated.limits), ("before", limits));
    let renamed = store
        .update_app(app.id, AppUpdate { name: Some("after".into()), limits: None })
        .await
        .unwrap();
    assert_eq!((renamed.name.as_str(), renamed.limits), ("after", limits));
    assert_eq!(store.app(app.id).await.unwrap(), renamed);
}

pub(crate) async fn rotate_keeps_previous_secret(store: &dyn Store) {
    let app = create_demo_app(store, "rotating").await;
    let until = Utc::now() + Duration::hours(1);
    let rotated = store.rotate_secret(app.id, "secret-2".into(), until).await.unwrap();
    assert_eq!(rotated.secret, "secret-2");
    assert_eq!(rotated.previous_secret.as_deref(), Some("secret-1"));
    assert_eq!(
        rotated.previous_secret_expires_at.map(|t| t.timestamp_millis()),
        Some(until.timestamp_millis())
    );
    assert_eq!(store.app(app.id).await.unwrap(), rotated);
}

pub(crate) async fn delete_removes_app(store: &dyn Store) {
    let app = create_demo_app(store, "doomed").await;
    store.delete_app(app.id).await.unwrap();
    assert!(matches!(store.app(app.id).await, Err(StoreError::NotFound { .. })));
}
