//! The behaviour every backend must show. Each backend's tests call [`suite!`] with a function
//! that builds a fresh, empty store, so a new backend runs the same checks unchanged.

use chrono::{Duration, Utc};
use herald_core::account::{AccountId, Device, TokenKind, VendorToken};
use herald_core::push::PushStatus;
use herald_core::{App, LimitBreach, Limits};

use crate::{
    AccountFailure, AppUpdate, AttributeUpdate, BroadcastQuota, BulkAccount, BulkApplied, Cursor,
    DayCount, DeviceSet, Dispatch, IndexSink, MinuteCount, NewApp, NewPush, PlatformReport,
    PushFilter, QuotaBreach, ReceiptsFlush, SlotChange, Store, StoreError, TagChange, TagOp,
    TagUpdate, WebhookAttempt,
};

/// Generates one `#[tokio::test]` per contract check for the store built by `$make`.
macro_rules! suite {
    ($make:path) => {
        $crate::contract::suite!(@tests $make;
            app_round_trip, app_key_is_unique, unknown_app_is_not_found,
            update_changes_only_given_fields, rotate_keeps_previous_secret, delete_removes_app,
            import_is_idempotent_and_ids_are_never_reused, accounts_page_in_name_order,
            tag_batches_apply_or_report_each_account, attribute_names_and_values,
            bulk_import_creates_updates_and_refuses_whole_lines,
            devices_bind_move_and_count, devices_register_in_batches,
            deleting_an_account_removes_its_devices,
            load_index_feeds_everything, load_index_of_reads_back_some_accounts,
            pushes_dispatch_in_seq_order, pushes_are_read_back_by_seq,
            idempotency_key_names_the_same_push, cursors_move_forward, cancel_and_recall,
            pushes_page_newest_first, broadcast_usage_counts, receipts_flush_and_reports,
            reports_of_several_writers_merge,
            webhook_outbox, device_keys_are_dense_and_kept, compat_layers_map_external_ids,
            vendor_credentials_and_tokens, seqs_stay_gapless_under_racing_dispatchers,
            idempotency_holds_under_racing_creates, racing_imports_create_each_account_once,
            racing_logins_of_one_device_leave_one_binding, older_cursor_never_overwrites_newer,
            webhook_claims_never_overlap, broadcast_quota_holds_under_racing_creates,
            broadcast_quota_interval_and_hourly_cap, nonces_are_used_once_within_their_window,
            racing_uses_of_one_nonce_let_one_through);
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

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn device(id: &str, platform: &str) -> Device {
    Device {
        device_id: id.into(),
        platform: platform.into(),
        package: "com.example".into(),
        vendor_token: (platform == "ios")
            .then(|| VendorToken { kind: TokenKind::Apns, token: format!("tok-{id}") }),
        app_version: Some("1.2.3".into()),
        locale: None,
        time_zone: Some("Asia/Shanghai".into()),
    }
}

pub(crate) async fn import_is_idempotent_and_ids_are_never_reused(store: &dyn Store) {
    let app = create_demo_app(store, "accounts").await;
    let first = store.import_accounts(app.id, &names(&["a", "b", "a"])).await.unwrap();
    assert_eq!(first, vec![("a".into(), 0, true), ("b".into(), 1, true)]);
    let again = store.import_accounts(app.id, &names(&["b", "c"])).await.unwrap();
    assert_eq!(again, vec![("b".into(), 1, false), ("c".into(), 2, true)]);
    assert_eq!(store.delete_account(app.id, "c").await.unwrap(), 2);
    let after = store.import_accounts(app.id, &names(&["c"])).await.unwrap();
    assert_eq!(after, vec![("c".into(), 3, true)], "a deleted account's id is not reused");
    let ids = store.account_ids(app.id, &names(&["a", "c", "zz"])).await.unwrap();
    assert_eq!((ids.len(), ids["a"], ids["c"]), (2, 0, 3));
    let other = create_demo_app(store, "other").await;
    assert!(store.account_ids(other.id, &names(&["a"])).await.unwrap().is_empty(), "per app");
    assert!(matches!(
        store.import_accounts(i64::MAX, &names(&["a"])).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub(crate) async fn accounts_page_in_name_order(store: &dyn Store) {
    let app = create_demo_app(store, "paging").await;
    store.import_accounts(app.id, &names(&["c", "a", "d", "b"])).await.unwrap();
    let page = store.accounts_page(app.id, None, 3).await.unwrap();
    let got: Vec<&str> = page.iter().map(|a| a.account.as_str()).collect();
    assert_eq!(got, ["a", "b", "c"]);
    let rest = store.accounts_page(app.id, Some("c"), 3).await.unwrap();
    assert_eq!(rest.iter().map(|a| a.account.as_str()).collect::<Vec<_>>(), ["d"]);
}

pub(crate) async fn tag_batches_apply_or_report_each_account(store: &dyn Store) {
    let app = create_demo_app(store, "tags").await;
    store.import_accounts(app.id, &names(&["u1", "u2"])).await.unwrap();
    let update =
        |accounts: &[&str], op| TagUpdate { accounts: names(accounts), op, tags_per_account: 3 };

    let out = store
        .update_tags(app.id, update(&["u1", "u2", "ghost"], TagOp::Add(names(&["x", "y"]))))
        .await
        .unwrap();
    assert_eq!(out.applied.len(), 2);
    assert_eq!(out.failed, vec![("ghost".into(), AccountFailure::UnknownAccount)]);

    let out =
        store.update_tags(app.id, update(&["u1"], TagOp::Add(names(&["z", "w"])))).await.unwrap();
    let breach = LimitBreach { limit: "tags_per_account", value: 3, actual: 4 };
    assert_eq!(out.failed, vec![("u1".into(), AccountFailure::Limit(breach))]);
    assert!(out.applied.is_empty());

    let out =
        store.update_tags(app.id, update(&["u1"], TagOp::Remove(names(&["x"])))).await.unwrap();
    let change = TagChange { before: names(&["x", "y"]), after: names(&["y"]) };
    assert_eq!((change.added(), change.removed()), (vec![], vec!["x"]));
    assert_eq!(out.applied, vec![(0, "u1".into(), change)]);
    store.update_tags(app.id, update(&["u2"], TagOp::Set(names(&["q"])))).await.unwrap();
    let records = store.accounts_by_name(app.id, &names(&["u1", "u2"])).await.unwrap();
    let mut tags: Vec<(String, Vec<String>)> =
        records.into_iter().map(|r| (r.account, r.tags)).collect();
    tags.sort();
    assert_eq!(tags, vec![("u1".into(), names(&["y"])), ("u2".into(), names(&["q"]))]);
    let out = store.update_tags(app.id, update(&["u2"], TagOp::Clear)).await.unwrap();
    let change = TagChange { before: names(&["q"]), after: vec![] };
    assert_eq!(out.applied, vec![(1, "u2".into(), change)]);
    let out = store
        .update_tags(app.id, update(&["u1"], TagOp::Set(names(&["b", "y", "a", "b"]))))
        .await
        .unwrap();
    let change = &out.applied[0].2;
    assert_eq!(change.after, names(&["a", "b", "y"]));
    assert_eq!((change.added(), change.removed()), (vec!["a", "b"], vec![]));

    // A bulk import: each account gains its own tags, the limit holds per account.
    let each = [("u1", names(&["c"])), ("u2", names(&["k", "l"])), ("ghost", names(&["m"]))];
    let each = each.into_iter().map(|(a, t)| (a.to_owned(), t)).collect();
    let out = store
        .update_tags(app.id, update(&["u1", "u2", "ghost"], TagOp::AddEach(each)))
        .await
        .unwrap();
    let breach = LimitBreach { limit: "tags_per_account", value: 3, actual: 4 };
    let mut failed = out.failed.clone();
    failed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        failed,
        vec![
            ("ghost".into(), AccountFailure::UnknownAccount),
            ("u1".into(), AccountFailure::Limit(breach))
        ]
    );
    assert_eq!(out.applied.len(), 1);
    assert_eq!(out.applied[0].2.after, names(&["k", "l"]));
}

pub(crate) async fn attribute_names_and_values(store: &dyn Store) {
    let app = create_demo_app(store, "attrs").await;
    assert_eq!(store.attribute_names(app.id).await.unwrap(), vec![None; 10]);
    let set = [(0, Some("city".to_string())), (3, Some("tier".to_string()))];
    let named = store.set_attribute_names(app.id, &set).await.unwrap();
    assert_eq!((named[0].as_deref(), named[3].as_deref()), (Some("city"), Some("tier")));
    let clash = store.set_attribute_names(app.id, &[(1, Some("city".into()))]).await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))));

    store.import_accounts(app.id, &names(&["u1"])).await.unwrap();
    let updates = vec![
        AttributeUpdate {
            account: "u1".into(),
            changes: vec![(0, Some("Shenzhen".into())), (3, Some("gold".into()))],
        },
        AttributeUpdate { account: "ghost".into(), changes: vec![(0, Some("x".into()))] },
    ];
    let out = store.update_attributes(app.id, updates).await.unwrap();
    assert_eq!(out.applied.len(), 1);
    assert_eq!(out.failed, vec![("ghost".into(), AccountFailure::UnknownAccount)]);
    let record = store.account(app.id, "u1").await.unwrap();
    assert_eq!(record.attributes[0].as_deref(), Some("Shenzhen"));

    // Each change says the value it replaced; an account named twice ends with its later
    // values, each change reading the one before it.
    let changes = vec![
        AttributeUpdate { account: "u1".into(), changes: vec![(3, None)] },
        AttributeUpdate { account: "u1".into(), changes: vec![(0, Some("Beijing".into()))] },
        AttributeUpdate { account: "u1".into(), changes: vec![(0, Some("Wuhan".into()))] },
    ];
    let out = store.update_attributes(app.id, changes).await.unwrap();
    let change = |slot, before: Option<&str>, after: Option<&str>| SlotChange {
        slot,
        before: before.map(Into::into),
        after: after.map(Into::into),
    };
    let seen: Vec<Vec<SlotChange>> = out.applied.into_iter().map(|(_, _, c)| c).collect();
    assert_eq!(
        seen,
        vec![
            vec![change(3, Some("gold"), None)],
            vec![change(0, Some("Shenzhen"), Some("Beijing"))],
            vec![change(0, Some("Beijing"), Some("Wuhan"))],
        ]
    );
    let record = store.account(app.id, "u1").await.unwrap();
    assert_eq!(
        (record.attributes[0].as_deref(), record.attributes[3].as_deref()),
        (Some("Wuhan"), None)
    );

    // Removing a name clears that attribute for everyone.
    store.set_attribute_names(app.id, &[(0, None)]).await.unwrap();
    assert_eq!(store.attribute_names(app.id).await.unwrap()[0], None);
    assert_eq!(store.account(app.id, "u1").await.unwrap().attributes[0], None);
}

pub(crate) async fn bulk_import_creates_updates_and_refuses_whole_lines(store: &dyn Store) {
    let app = create_demo_app(store, "bulk").await;
    store.import_accounts(app.id, &names(&["old", "full"])).await.unwrap();
    let tag = |accounts: &[&str], tags: &[&str]| TagUpdate {
        accounts: names(accounts),
        op: TagOp::Add(names(tags)),
        tags_per_account: 3,
    };
    store.update_tags(app.id, tag(&["old"], &["x"])).await.unwrap();
    store.update_tags(app.id, tag(&["full"], &["p", "q", "r"])).await.unwrap();
    let set = vec![AttributeUpdate { account: "old".into(), changes: vec![(0, Some("a".into()))] }];
    store.update_attributes(app.id, set).await.unwrap();

    let line = |account: &str, tags: &[&str], attributes: &[(u8, &str)], devices| BulkAccount {
        account: account.into(),
        tags: names(tags),
        attributes: attributes.iter().map(|(slot, v)| (*slot, v.to_string())).collect(),
        devices,
    };
    let batch = [
        line("new1", &["a", "b"], &[(0, "sz"), (3, "gold")], vec![device("d1", "ios")]),
        line("old", &["y"], &[(0, "bj")], vec![]),
        line("full", &["s"], &[(0, "gz")], vec![device("d9", "ios")]),
        line("new2", &[], &[], vec![device("d1", "web")]),
    ];
    let out = store.bulk_import(app.id, &batch, 3).await.unwrap();
    let breach = LimitBreach { limit: "tags_per_account", value: 3, actual: 4 };
    let slot = |slot, before: Option<&str>, after: &str| SlotChange {
        slot,
        before: before.map(Into::into),
        after: Some(after.into()),
    };
    assert_eq!(
        out.accounts,
        vec![
            BulkApplied::Created(2),
            BulkApplied::Updated {
                id: 0,
                tags: TagChange { before: names(&["x"]), after: names(&["x", "y"]) },
                attributes: vec![slot(0, Some("a"), "bj")],
            },
            BulkApplied::Refused(AccountFailure::Limit(breach)),
            BulkApplied::Created(3),
        ]
    );
    let owners: Vec<u32> = out.devices.iter().map(|b| b.account_id).collect();
    assert_eq!(owners, [2, 3], "the refused line's device is not registered");
    assert_eq!(out.devices[1].changed[1], DeviceSet { account_id: 2, devices: vec![] });

    let new1 = store.account(app.id, "new1").await.unwrap();
    assert_eq!(new1.tags, names(&["a", "b"]));
    assert_eq!(
        (new1.attributes[0].as_deref(), new1.attributes[3].as_deref()),
        (Some("sz"), Some("gold"))
    );
    assert!(new1.devices.is_empty(), "d1 moved to new2, the later line");
    let old = store.account(app.id, "old").await.unwrap();
    assert_eq!((old.tags, old.attributes[0].as_deref()), (names(&["x", "y"]), Some("bj")));
    let full = store.account(app.id, "full").await.unwrap();
    assert_eq!((full.tags.len(), full.attributes[0].as_deref()), (3, None));
    assert!(full.devices.is_empty());
    assert_eq!(store.device(app.id, "d1").await.unwrap().0, "new2");
    assert!(matches!(store.device(app.id, "d9").await, Err(StoreError::NotFound { .. })));

    let twice = [line("u", &[], &[], vec![]), line("u", &[], &[], vec![])];
    assert!(matches!(store.bulk_import(app.id, &twice, 3).await, Err(StoreError::Invalid(_))));
    assert_eq!(
        store.import_accounts(app.id, &names(&["u"])).await.unwrap(),
        vec![("u".into(), 4, true)],
        "a refused batch wrote nothing, and ids go on after the bulk's"
    );
    assert!(store.bulk_import(i64::MAX, &[line("z", &[], &[], vec![])], 3).await.is_err());
}

pub(crate) async fn devices_register_in_batches(store: &dyn Store) {
    let app = create_demo_app(store, "device-batches").await;
    let batch = |items: &[(&str, &str, &str)]| -> Vec<(String, Device)> {
        items
            .iter()
            .map(|&(account, id, platform)| (account.into(), device(id, platform)))
            .collect()
    };
    let bound = store
        .register_devices(
            app.id,
            &batch(&[("carol", "c1", "ios"), ("carol", "c2", "android"), ("dave", "c1", "web")]),
        )
        .await
        .unwrap();
    assert_eq!(bound.len(), 3);
    let (carol, dave) = (bound[0].account_id, bound[2].account_id);
    assert_eq!(
        bound.iter().map(|b| b.new_account).collect::<Vec<_>>(),
        [true, false, true],
        "the second device of carol found her account"
    );
    assert_eq!(bound[1].account_id, carol);
    assert_eq!(bound[2].device_key, bound[0].device_key, "c1 moved and kept its key");
    assert_eq!(
        bound[2].changed,
        vec![
            DeviceSet { account_id: dave, devices: vec![("web".into(), "com.example".into())] },
            DeviceSet {
                account_id: carol,
                devices: vec![("android".into(), "com.example".into())]
            },
        ]
    );
    let (owner, c1) = store.device(app.id, "c1").await.unwrap();
    assert_eq!((owner.as_str(), c1), ("dave", device("c1", "web")));
    assert!(store.register_devices(app.id, &[]).await.unwrap().is_empty());
}

pub(crate) async fn devices_bind_move_and_count(store: &dyn Store) {
    let app = create_demo_app(store, "devices").await;
    let bound = store.register_device(app.id, "alice", &device("d1", "ios")).await.unwrap();
    assert!(bound.new_account, "registering a device creates its account");
    let alice = bound.account_id;
    assert_eq!(
        bound.changed,
        vec![DeviceSet { account_id: alice, devices: vec![("ios".into(), "com.example".into())] }]
    );
    store.register_device(app.id, "alice", &device("d2", "android")).await.unwrap();
    let (owner, d1) = store.device(app.id, "d1").await.unwrap();
    assert_eq!((owner.as_str(), d1), ("alice", device("d1", "ios")));

    let moved = store.register_device(app.id, "bob", &device("d1", "ios")).await.unwrap();
    let bob = moved.account_id;
    assert_eq!(moved.changed.len(), 2, "new owner and previous owner");
    assert_eq!(
        moved.changed[1],
        DeviceSet { account_id: alice, devices: vec![("android".into(), "com.example".into())] }
    );
    assert_eq!(store.device(app.id, "d1").await.unwrap().0, "bob");
    assert_eq!(
        store.account(app.id, "alice").await.unwrap().devices,
        vec![device("d2", "android")]
    );

    let bound = store.bound_device(app.id, "d1").await.unwrap().unwrap();
    assert_eq!((bound.account.as_str(), bound.account_id), ("bob", bob));
    assert_eq!(bound.device, device("d1", "ios"));
    assert_eq!(store.bound_device(app.id, "nope").await.unwrap(), None);
    let counts = store.device_counts(app.id).await.unwrap();
    assert_eq!((counts.total, counts.by_platform["ios"], counts.by_platform["android"]), (2, 1, 1));

    let left = store.unregister_device(app.id, "d1").await.unwrap();
    assert_eq!(left, DeviceSet { account_id: bob, devices: vec![] });
    assert!(matches!(store.device(app.id, "d1").await, Err(StoreError::NotFound { .. })));
    assert!(matches!(
        store.unregister_device(app.id, "d1").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub(crate) async fn deleting_an_account_removes_its_devices(store: &dyn Store) {
    let app = create_demo_app(store, "delete-account").await;
    store.register_device(app.id, "carol", &device("d9", "web")).await.unwrap();
    store.delete_account(app.id, "carol").await.unwrap();
    assert!(matches!(store.device(app.id, "d9").await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.device_counts(app.id).await.unwrap().total, 0);
    assert!(matches!(store.account(app.id, "carol").await, Err(StoreError::NotFound { .. })));
    assert!(matches!(
        store.delete_account(app.id, "carol").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[derive(Default)]
struct Collected {
    accounts: Vec<(AccountId, Vec<String>, Vec<Option<String>>)>,
    devices: Vec<(AccountId, String, String)>,
}

impl IndexSink for Collected {
    fn account(&mut self, id: AccountId, tags: &[&str], attributes: &[Option<&str>]) {
        let tags = tags.iter().map(|t| t.to_string()).collect();
        let attrs = attributes.iter().map(|a| a.map(str::to_owned)).collect();
        self.accounts.push((id, tags, attrs));
    }

    fn device(&mut self, account: AccountId, platform: &str, package: &str) {
        self.devices.push((account, platform.into(), package.into()));
    }
}

pub(crate) async fn load_index_feeds_everything(store: &dyn Store) {
    let app = create_demo_app(store, "index").await;
    store.set_attribute_names(app.id, &[(2, Some("city".into()))]).await.unwrap();
    store.import_accounts(app.id, &names(&["a", "b"])).await.unwrap();
    let tags = TagUpdate {
        accounts: names(&["a"]),
        op: TagOp::Add(names(&["t1", "t2"])),
        tags_per_account: 10,
    };
    store.update_tags(app.id, tags).await.unwrap();
    let attrs =
        vec![AttributeUpdate { account: "b".into(), changes: vec![(2, Some("Shenzhen".into()))] }];
    store.update_attributes(app.id, attrs).await.unwrap();
    store.register_device(app.id, "b", &device("db", "ios")).await.unwrap();

    let mut sink = Collected::default();
    store.load_index(app.id, &mut sink).await.unwrap();
    let mut city = vec![None; 10];
    city[2] = Some("Shenzhen".to_string());
    assert_eq!(sink.accounts, vec![(0, names(&["t1", "t2"]), vec![None; 10]), (1, vec![], city)]);
    assert_eq!(sink.devices, vec![(1, "ios".into(), "com.example".into())]);
}

pub(crate) async fn load_index_of_reads_back_some_accounts(store: &dyn Store) {
    let app = create_demo_app(store, "index-of").await;
    store.set_attribute_names(app.id, &[(0, Some("tier".into()))]).await.unwrap();
    store.import_accounts(app.id, &names(&["a", "b", "c"])).await.unwrap();
    let tags = TagUpdate {
        accounts: names(&["a", "c"]),
        op: TagOp::Add(names(&["t"])),
        tags_per_account: 10,
    };
    store.update_tags(app.id, tags).await.unwrap();
    let attrs =
        vec![AttributeUpdate { account: "c".into(), changes: vec![(0, Some("gold".into()))] }];
    store.update_attributes(app.id, attrs).await.unwrap();
    store.register_device(app.id, "c", &device("dc1", "ios")).await.unwrap();
    store.register_device(app.id, "c", &device("dc2", "android")).await.unwrap();
    store.register_device(app.id, "b", &device("db", "web")).await.unwrap();
    store.delete_account(app.id, "a").await.unwrap();

    let mut sink = Collected::default();
    // 0 (a) is gone, 1 (b) is not asked for, 2 (c) is read, 99 never existed.
    store.load_index_of(app.id, &[0, 2, 99], &mut sink).await.unwrap();
    let mut gold = vec![None; 10];
    gold[0] = Some("gold".to_string());
    assert_eq!(sink.accounts, vec![(2, names(&["t"]), gold)]);
    sink.devices.sort();
    assert_eq!(
        sink.devices,
        vec![(2, "android".into(), "com.example".into()), (2, "ios".into(), "com.example".into())]
    );
    let mut none = Collected::default();
    store.load_index_of(app.id, &[], &mut none).await.unwrap();
    assert!(none.accounts.is_empty() && none.devices.is_empty());
}

pub(crate) async fn pushes_are_read_back_by_seq(store: &dyn Store) {
    let app = create_demo_app(store, "by-seq").await;
    assert_eq!(store.last_push_seq(app.id).await.unwrap(), 0);
    let dispatch = Dispatch { recipients: Some(vec![1]), targeted: 1, expires_at: None };
    for id in ["p1", "p2", "p3", "p4"] {
        store.create_push(new_push(app.id, id, None)).await.unwrap();
        store.begin_dispatch(app.id, id, dispatch.clone()).await.unwrap();
    }
    store.create_push(new_push(app.id, "waiting", None)).await.unwrap();
    store.cancel_push(app.id, "p3").await.unwrap();
    assert_eq!(store.last_push_seq(app.id).await.unwrap(), 4);
    let read = store.pushes_by_seq(app.id, 1, 3).await.unwrap();
    let seen: Vec<_> = read.iter().map(|p| (p.id.as_str(), p.seq, p.status)).collect();
    assert_eq!(
        seen,
        [("p2", Some(2), PushStatus::Dispatching), ("p3", Some(3), PushStatus::Cancelled)]
    );
    assert_eq!(store.pushes_by_seq(app.id, 0, u64::MAX).await.unwrap().len(), 4);
    assert!(store.pushes_by_seq(app.id, 4, 10).await.unwrap().is_empty());
    assert!(matches!(store.last_push_seq(app.id + 1000).await, Err(StoreError::NotFound { .. })));
}

fn new_push(app: i64, id: &str, key: Option<&str>) -> NewPush {
    NewPush {
        app,
        id: id.into(),
        audience: r#"{"all":true}"#.into(),
        message: r#"{"text":"hi"}"#.into(),
        notification: None,
        sender: Some("admin".into()),
        platforms: Some(vec!["ios".into()]),
        ttl_secs: 3600,
        idempotency_key: key.map(str::to_owned),
        push_at: Utc::now(),
        broadcast: true,
        source: "native".into(),
        vendor_push: true,
        quota: None,
    }
}

pub(crate) async fn pushes_dispatch_in_seq_order(store: &dyn Store) {
    let app = create_demo_app(store, "pushes").await;
    let (first, created) = store.create_push(new_push(app.id, "p1", None)).await.unwrap();
    assert!(created);
    assert_eq!(
        (first.status, first.seq, first.platforms.clone()),
        (PushStatus::Scheduled, None, Some(vec!["ios".to_string()]))
    );
    store.create_push(new_push(app.id, "p2", None)).await.unwrap();
    let scheduled = store.pushes_with_status(PushStatus::Scheduled).await.unwrap();
    assert!(scheduled.iter().any(|p| p.id == "p1") && scheduled.iter().any(|p| p.id == "p2"));

    let expires = Utc::now() + Duration::hours(1);
    let stored =
        Dispatch { recipients: Some(vec![1, 2, 3]), targeted: 3, expires_at: Some(expires) };
    let online_only = Dispatch { recipients: None, targeted: 5, expires_at: None };
    assert_eq!(store.begin_dispatch(app.id, "p2", stored).await.unwrap(), 1);
    assert_eq!(store.begin_dispatch(app.id, "p1", online_only.clone()).await.unwrap(), 2);
    assert!(matches!(
        store.begin_dispatch(app.id, "p1", online_only).await,
        Err(StoreError::Conflict(_))
    ));

    let p2 = store.push(app.id, "p2").await.unwrap();
    assert_eq!((p2.status, p2.seq, p2.targeted), (PushStatus::Dispatching, Some(1), Some(3)));
    assert_eq!(p2.recipients, Some(vec![1, 2, 3]));
    let live = store.live_pushes(app.id, Utc::now()).await.unwrap();
    assert_eq!(
        live.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["p2"],
        "online-only pushes are not stored"
    );
    assert!(
        store.live_pushes(app.id, expires + Duration::seconds(1)).await.unwrap().is_empty(),
        "expired"
    );

    store.finish_push(app.id, "p2", PushStatus::Done, None).await.unwrap();
    let p2 = store.push(app.id, "p2").await.unwrap();
    assert_eq!(p2.status, PushStatus::Done);
    assert!(p2.finished_at.is_some());
    assert_eq!(
        store.live_pushes(app.id, Utc::now()).await.unwrap().len(),
        1,
        "done pushes stay in the inbox"
    );
    assert!(matches!(store.push(app.id, "nope").await, Err(StoreError::NotFound { .. })));
}

pub(crate) async fn idempotency_key_names_the_same_push(store: &dyn Store) {
    let app = create_demo_app(store, "idempotent").await;
    let (first, created) =
        store.create_push(new_push(app.id, "k1", Some("campaign-7"))).await.unwrap();
    assert!(created);
    let (again, created) =
        store.create_push(new_push(app.id, "k2", Some("campaign-7"))).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, first.id);
    let found = store.push_by_idempotency_key(app.id, "campaign-7").await.unwrap();
    assert_eq!(found.map(|p| p.id), Some(first.id.clone()));
    assert_eq!(store.push_by_idempotency_key(app.id, "other").await.unwrap(), None);
    assert!(matches!(store.push(app.id, "k2").await, Err(StoreError::NotFound { .. })));
    let other = create_demo_app(store, "other-idempotent").await;
    assert!(
        store.create_push(new_push(other.id, "k1", Some("campaign-7"))).await.unwrap().1,
        "keys are per app"
    );
}

pub(crate) async fn cursors_move_forward(store: &dyn Store) {
    let app = create_demo_app(store, "cursors").await;
    assert_eq!(store.cursor(app.id, "d1").await.unwrap(), Cursor::default());
    let cursor = Cursor { acked: 5, acked_above: vec![7] };
    let flush = ReceiptsFlush {
        cursors: vec![(app.id, "d1".into(), cursor.clone())],
        ..Default::default()
    };
    store.flush_receipts(&flush).await.unwrap();
    assert_eq!(store.cursor(app.id, "d1").await.unwrap(), cursor);
    assert_eq!(store.cursor(app.id, "d2").await.unwrap(), Cursor::default());

    // A flush after a reconnect storm: many devices, some seen before.
    let many = |acked: u64| -> Vec<(i64, String, Cursor)> {
        let cursor = |i: u64| Cursor { acked: acked + i, acked_above: vec![acked + i + 2] };
        (0..1_200).map(|i| (app.id, format!("d{i}"), cursor(i))).collect()
    };
    for acked in [10, 20] {
        let flush = ReceiptsFlush { cursors: many(acked), ..Default::default() };
        store.flush_receipts(&flush).await.unwrap();
    }
    for i in [0, 1, 499, 500, 1_199] {
        let stored = store.cursor(app.id, &format!("d{i}")).await.unwrap();
        assert_eq!(stored, Cursor { acked: 20 + i, acked_above: vec![22 + i] });
    }

    // Receipts of an app deleted meanwhile are dropped; the others are written.
    let gone = create_demo_app(store, "gone").await;
    store.delete_app(gone.id).await.unwrap();
    let moved = Cursor { acked: 99, acked_above: vec![] };
    let flush = ReceiptsFlush {
        cursors: vec![(gone.id, "d1".into(), moved.clone()), (app.id, "d1".into(), moved.clone())],
        ..Default::default()
    };
    store.flush_receipts(&flush).await.unwrap();
    assert_eq!(store.cursor(app.id, "d1").await.unwrap(), moved);
}

async fn dispatched(store: &dyn Store, app: i64, id: &str, ttl: bool) -> u64 {
    store.create_push(new_push(app, id, None)).await.unwrap();
    let expires_at = ttl.then(|| Utc::now() + Duration::hours(1));
    let dispatch = Dispatch { recipients: Some(vec![0]), targeted: 1, expires_at };
    store.begin_dispatch(app, id, dispatch).await.unwrap()
}

pub(crate) async fn cancel_and_recall(store: &dyn Store) {
    let app = create_demo_app(store, "cancel").await;
    store.create_push(new_push(app.id, "s1", None)).await.unwrap();
    let (before, after) = store.cancel_push(app.id, "s1").await.unwrap();
    assert_eq!(
        (before, after.status, after.recalled_at),
        (PushStatus::Scheduled, PushStatus::Cancelled, None)
    );
    assert!(matches!(store.cancel_push(app.id, "s1").await, Err(StoreError::Conflict(_))));
    assert!(
        matches!(store.recall_push(app.id, "s1").await, Err(StoreError::Conflict(_))),
        "never sent"
    );

    dispatched(store, app.id, "d1", true).await;
    let (before, after) = store.cancel_push(app.id, "d1").await.unwrap();
    assert_eq!((before, after.status), (PushStatus::Dispatching, PushStatus::Cancelled));
    assert!(after.recalled_at.is_some(), "what was not delivered leaves the inboxes");
    store.finish_push(app.id, "d1", PushStatus::Done, None).await.unwrap();
    assert_eq!(
        store.push(app.id, "d1").await.unwrap().status,
        PushStatus::Cancelled,
        "cancel wins"
    );

    dispatched(store, app.id, "r1", true).await;
    store.finish_push(app.id, "r1", PushStatus::Done, None).await.unwrap();
    assert_eq!(store.live_pushes(app.id, Utc::now()).await.unwrap().len(), 1);
    let recalled = store.recall_push(app.id, "r1").await.unwrap();
    assert!(recalled.recalled_at.is_some());
    assert!(store.live_pushes(app.id, Utc::now()).await.unwrap().is_empty());
    assert!(matches!(store.recall_push(app.id, "r1").await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.cancel_push(app.id, "r1").await, Err(StoreError::Conflict(_))), "done");
    assert!(matches!(store.recall_push(app.id, "nope").await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.cancel_push(app.id, "nope").await, Err(StoreError::NotFound { .. })));
}

pub(crate) async fn pushes_page_newest_first(store: &dyn Store) {
    let app = create_demo_app(store, "page").await;
    for id in ["a", "b", "c"] {
        store.create_push(new_push(app.id, id, None)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    store.cancel_push(app.id, "b").await.unwrap();
    let ids = |pushes: Vec<crate::PushRecord>| pushes.into_iter().map(|p| p.id).collect::<Vec<_>>();
    let first =
        store.pushes_page(app.id, &PushFilter { limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(ids(first), ["c", "b"]);
    let next = PushFilter { limit: 2, after: Some("b".into()), ..Default::default() };
    assert_eq!(ids(store.pushes_page(app.id, &next).await.unwrap()), ["a"]);
    let cancelled =
        PushFilter { limit: 10, status: Some(PushStatus::Cancelled), ..Default::default() };
    assert_eq!(ids(store.pushes_page(app.id, &cancelled).await.unwrap()), ["b"]);
    let future =
        PushFilter { limit: 10, from: Some(Utc::now() + Duration::hours(1)), ..Default::default() };
    assert!(store.pushes_page(app.id, &future).await.unwrap().is_empty());
}

pub(crate) async fn broadcast_usage_counts(store: &dyn Store) {
    let app = create_demo_app(store, "usage").await;
    let since = Utc::now() - Duration::seconds(1);
    assert_eq!(store.broadcast_usage(app.id, "native", since).await.unwrap().count, 0);
    store.create_push(new_push(app.id, "b1", None)).await.unwrap();
    let mut targeted = new_push(app.id, "t1", None);
    targeted.broadcast = false;
    store.create_push(targeted).await.unwrap();
    let mut compat = new_push(app.id, "c1", None);
    compat.source = "tencent".into();
    store.create_push(compat).await.unwrap();
    let usage = store.broadcast_usage(app.id, "native", since).await.unwrap();
    assert_eq!(usage.count, 1);
    assert!(usage.latest.is_some());
    assert_eq!(
        store.broadcast_usage(app.id, "tencent", since).await.unwrap().count,
        1,
        "per source"
    );
    assert_eq!(store.push(app.id, "c1").await.unwrap().source, "tencent");
}

pub(crate) async fn reports_of_several_writers_merge(store: &dyn Store) {
    let app = create_demo_app(store, "merge").await;
    let bitmap = |ids: &[u32]| {
        let mut bytes = Vec::new();
        ids.iter().copied().collect::<roaring::RoaringBitmap>().serialize_into(&mut bytes).unwrap();
        bytes
    };
    let row = |targeted, failed: u64, delivered: &[u32], opened: &[u32]| PlatformReport {
        app: app.id,
        push_id: "p".into(),
        platform: "android".into(),
        targeted,
        sent_online: targeted / 2,
        stored_offline: 0,
        vendor_sent: 0,
        vendor_failed: [("Unregistered".to_string(), failed)].into(),
        delivered: bitmap(delivered),
        opened: bitmap(opened),
    };
    let flush = |report| ReceiptsFlush {
        cursors: vec![],
        reports: vec![report],
        minutes: vec![],
        days: vec![],
    };
    // The dispatching node, then two other nodes that only saw acks, then the dispatcher again
    // with an older state: nothing is lost, no count goes back.
    store.flush_receipts(&flush(row(10, 2, &[1, 2], &[1]))).await.unwrap();
    store.flush_receipts(&flush(row(0, 0, &[3], &[]))).await.unwrap();
    store.flush_receipts(&flush(row(0, 0, &[4, 5], &[5]))).await.unwrap();
    store.flush_receipts(&flush(row(8, 1, &[1], &[]))).await.unwrap();
    let stored = store.push_report(app.id, "p").await.unwrap();
    assert_eq!(stored, vec![row(10, 2, &[1, 2, 3, 4, 5], &[1, 5])]);
}

pub(crate) async fn receipts_flush_and_reports(store: &dyn Store) {
    let app = create_demo_app(store, "reports").await;
    let report = PlatformReport {
        app: app.id,
        push_id: "p1".into(),
        platform: "ios".into(),
        targeted: 10,
        sent_online: 4,
        stored_offline: 6,
        vendor_sent: 5,
        vendor_failed: [("Unregistered".to_string(), 1)].into(),
        delivered: vec![1, 2],
        opened: vec![3],
    };
    let minute =
        MinuteCount { app: app.id, push_id: "p1".into(), minute: 100, delivered: 2, opened: 1 };
    let day =
        DayCount { app: app.id, day: "2026-11-21".into(), pushes: 1, delivered: 2, opened: 1 };
    let flush = ReceiptsFlush {
        cursors: vec![],
        reports: vec![report.clone()],
        minutes: vec![minute.clone()],
        days: vec![day.clone()],
    };
    store.flush_receipts(&flush).await.unwrap();
    store.flush_receipts(&flush).await.unwrap();
    assert_eq!(store.push_report(app.id, "p1").await.unwrap(), vec![report], "rows are replaced");
    let minutes = store.push_minutes(app.id, "p1").await.unwrap();
    assert_eq!((minutes[0].delivered, minutes[0].opened), (4, 2), "minutes add up");
    let days = store.app_days(app.id, "2026-11-01", "2026-11-30").await.unwrap();
    assert_eq!((days[0].pushes, days[0].delivered, days[0].opened), (2, 4, 2), "days add up");
    assert!(store.app_days(app.id, "2026-12-01", "2026-12-31").await.unwrap().is_empty());
}

pub(crate) async fn webhook_outbox(store: &dyn Store) {
    let app = create_demo_app(store, "hooks").await;
    assert_eq!(store.webhook(app.id).await.unwrap(), None);
    let hook = store
        .set_webhook(app.id, "http://127.0.0.1:1/hook", &names(&["push.finished"]))
        .await
        .unwrap();
    assert_eq!(
        (hook.url.as_str(), hook.events.clone()),
        ("http://127.0.0.1:1/hook", names(&["push.finished"]))
    );
    let id = store.enqueue_webhook_event(app.id, "push.finished", "{}").await.unwrap();
    let lease = Utc::now() + Duration::minutes(5);
    let claimed = store.claim_webhook_events(Utc::now(), 10, lease).await.unwrap();
    assert!(claimed.iter().any(|e| e.id == id && e.attempts == 0));
    assert!(
        !store
            .claim_webhook_events(Utc::now(), 10, lease)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == id),
        "a claimed event is not claimed again while its claim holds"
    );
    let later = Utc::now() + Duration::minutes(1);
    store
        .webhook_attempted(id, &WebhookAttempt::Retry { next: later, error: "500".into() })
        .await
        .unwrap();
    let claim = |at| store.claim_webhook_events(at, 10, at + Duration::minutes(5));
    assert!(!claim(Utc::now()).await.unwrap().iter().any(|e| e.id == id));
    let due = claim(later).await.unwrap();
    assert_eq!(due.iter().find(|e| e.id == id).map(|e| e.attempts), Some(1));
    assert!(
        claim(lease + Duration::minutes(10)).await.unwrap().iter().any(|e| e.id == id),
        "a claimer that stopped before recording its attempt leaves the event due again"
    );
    store.webhook_attempted(id, &WebhookAttempt::Delivered).await.unwrap();
    assert!(!claim(later + Duration::hours(1)).await.unwrap().iter().any(|e| e.id == id));
    store.delete_webhook(app.id).await.unwrap();
    assert!(matches!(store.delete_webhook(app.id).await, Err(StoreError::NotFound { .. })));
}

pub(crate) async fn device_keys_are_dense_and_kept(store: &dyn Store) {
    let app = create_demo_app(store, "keys").await;
    let first = store.register_device(app.id, "a", &device("k1", "ios")).await.unwrap();
    let second = store.register_device(app.id, "a", &device("k2", "ios")).await.unwrap();
    assert_eq!((first.device_key, second.device_key), (0, 1));
    let moved = store.register_device(app.id, "b", &device("k1", "android")).await.unwrap();
    assert_eq!(moved.device_key, 0, "a device keeps its key when it moves");
    store.unregister_device(app.id, "k2").await.unwrap();
    let third = store.register_device(app.id, "a", &device("k3", "web")).await.unwrap();
    assert_eq!(third.device_key, 2, "keys are never reused");
}

pub(crate) async fn compat_layers_map_external_ids(store: &dyn Store) {
    let app = create_demo_app(store, "compat").await;
    assert_eq!(store.compat_layer(app.id, "tencent").await.unwrap(), None);
    let external = unique("sdkappid");
    store.set_compat_layer(app.id, "tencent", Some(&external), r#"{"a":1}"#).await.unwrap();
    assert_eq!(store.compat_layer(app.id, "tencent").await.unwrap().as_deref(), Some(r#"{"a":1}"#));
    let (found, settings) = store.app_by_compat_id("tencent", &external).await.unwrap();
    assert_eq!((found.id, settings.as_str()), (app.id, r#"{"a":1}"#));
    let other = create_demo_app(store, "compat-other").await;
    let clash = store.set_compat_layer(other.id, "tencent", Some(&external), "{}").await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))));
    assert!(matches!(
        store.app_by_compat_id("rongcloud", &external).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub(crate) async fn vendor_credentials_and_tokens(store: &dyn Store) {
    let app = create_demo_app(store, "vendors").await;
    assert_eq!(store.vendor_credentials(app.id, "apns").await.unwrap(), None);
    let set = store
        .set_vendor_credentials(app.id, "apns", &[1, 2, 3], r#"{"key_id":"K"}"#)
        .await
        .unwrap();
    assert_eq!((set.sealed.clone(), set.redacted.as_str()), (vec![1, 2, 3], r#"{"key_id":"K"}"#));
    store.set_vendor_credentials(app.id, "apns", &[4], "{}").await.unwrap();
    assert_eq!(
        store.vendor_credentials(app.id, "apns").await.unwrap().map(|c| c.sealed),
        Some(vec![4])
    );
    store.delete_vendor_credentials(app.id, "apns").await.unwrap();
    assert!(matches!(
        store.delete_vendor_credentials(app.id, "apns").await,
        Err(StoreError::NotFound { .. })
    ));

    store.register_device(app.id, "a", &device("ios-1", "ios")).await.unwrap();
    store.register_device(app.id, "a", &device("web-1", "web")).await.unwrap();
    store.register_device(app.id, "b", &device("ios-2", "ios")).await.unwrap();
    let first = store.device_tokens(app.id, None, 1).await.unwrap();
    assert_eq!(
        (first.len(), first[0].device_id.as_str(), first[0].token.as_str()),
        (1, "ios-1", "tok-ios-1")
    );
    let rest = store.device_tokens(app.id, Some(first[0].cursor), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|t| t.device_id.as_str()).collect::<Vec<_>>(),
        ["ios-2"],
        "only devices with tokens"
    );
    assert!(!store.clear_device_token(app.id, "ios-1", "an-older-token").await.unwrap());
    assert!(store.clear_device_token(app.id, "ios-1", "tok-ios-1").await.unwrap());
    assert_eq!(store.device(app.id, "ios-1").await.unwrap().1.vendor_token, None);
    assert_eq!(store.device_tokens(app.id, None, 10).await.unwrap().len(), 1);
}

/// Many dispatchers (threads of one node, or several nodes) take seqs at once.
pub(crate) async fn seqs_stay_gapless_under_racing_dispatchers(store: &dyn Store) {
    let app = create_demo_app(store, "racing-seqs").await;
    let ids: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
    for id in &ids {
        store.create_push(new_push(app.id, id, None)).await.unwrap();
    }
    // Every push twice: the second attempt finds it dispatching and takes no seq.
    let attempts = ids.iter().chain(&ids).map(|id| {
        let dispatch = Dispatch { recipients: Some(vec![0]), targeted: 1, expires_at: None };
        store.begin_dispatch(app.id, id, dispatch)
    });
    let results = futures_util::future::join_all(attempts).await;
    let mut seqs: Vec<u64> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    assert!(results.iter().all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_)))));
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<u64>>(), "no gaps, no duplicates");
}

pub(crate) async fn idempotency_holds_under_racing_creates(store: &dyn Store) {
    let app = create_demo_app(store, "racing-keys").await;
    let creates = (0..20).map(|i| store.create_push(new_push(app.id, &format!("i{i}"), Some("k"))));
    let results: Vec<_> =
        futures_util::future::join_all(creates).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1, "one push stored");
    let first = &results[0].0.id;
    assert!(results.iter().all(|(push, _)| &push.id == first), "every caller gets that push");
}

pub(crate) async fn racing_imports_create_each_account_once(store: &dyn Store) {
    let app = create_demo_app(store, "racing-imports").await;
    let batch = names(&["a", "b", "c", "d"]);
    let imports = (0..8).map(|_| store.import_accounts(app.id, &batch));
    let results = futures_util::future::join_all(imports).await;
    let mut ids = std::collections::HashMap::new();
    let mut created = 0;
    for result in results {
        for (name, id, new) in result.unwrap() {
            assert_eq!(*ids.entry(name).or_insert(id), id, "one id per account");
            created += usize::from(new);
        }
    }
    assert_eq!(created, 4, "each account created once");
}

pub(crate) async fn racing_logins_of_one_device_leave_one_binding(store: &dyn Store) {
    let app = create_demo_app(store, "racing-logins").await;
    let accounts: Vec<String> = (0..8).map(|i| format!("owner{i}")).collect();
    store.import_accounts(app.id, &accounts).await.unwrap();
    let shared = device("shared", "ios");
    let logins = accounts.iter().map(|a| store.register_device(app.id, a, &shared));
    let bindings: Vec<_> =
        futures_util::future::join_all(logins).await.into_iter().map(|b| b.unwrap()).collect();
    assert!(bindings.iter().all(|b| b.device_key == bindings[0].device_key), "one key");
    let (owner, _) = store.device(app.id, "shared").await.unwrap();
    for account in &accounts {
        let devices = store.account(app.id, account).await.unwrap().devices;
        assert_eq!(devices.len(), usize::from(account == &owner), "{account}: {devices:?}");
    }
    assert_eq!(store.device_counts(app.id).await.unwrap().total, 1);
}

pub(crate) async fn older_cursor_never_overwrites_newer(store: &dyn Store) {
    let app = create_demo_app(store, "cursor-order").await;
    let flush = |acked, above: Vec<u64>| ReceiptsFlush {
        cursors: vec![(app.id, "d1".into(), Cursor { acked, acked_above: above })],
        ..Default::default()
    };
    store.flush_receipts(&flush(20, vec![22])).await.unwrap();
    store.flush_receipts(&flush(10, vec![12])).await.unwrap();
    let stored = store.cursor(app.id, "d1").await.unwrap();
    assert_eq!(stored.acked, 20, "an older cursor does not move it back");
    assert!(stored.has(22) && !stored.has(21));
    store.flush_receipts(&flush(25, vec![])).await.unwrap();
    assert_eq!(
        store.cursor(app.id, "d1").await.unwrap(),
        Cursor { acked: 25, acked_above: vec![] }
    );
}

/// Two posters (nodes) claiming at once never get the same event.
pub(crate) async fn webhook_claims_never_overlap(store: &dyn Store) {
    let app = create_demo_app(store, "racing-claims").await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            store.enqueue_webhook_event(app.id, "push.finished", &format!("{i}")).await.unwrap(),
        );
    }
    let until = Utc::now() + Duration::minutes(5);
    let claims = (0..4).map(|_| store.claim_webhook_events(Utc::now(), 10, until));
    let mut claimed: Vec<i64> = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .flat_map(|events| events.unwrap())
        .filter(|e| e.app == app.id)
        .map(|e| e.id)
        .collect();
    claimed.sort_unstable();
    assert_eq!(claimed, ids, "every event claimed exactly once");
}

pub(crate) async fn nonces_are_used_once_within_their_window(store: &dyn Store) {
    let app = create_demo_app(store, "nonces").await;
    let other = create_demo_app(store, "nonces-other").await;
    assert!(store.first_use_nonce(app.id, "n-1", 100, 0).await.unwrap());
    assert!(!store.first_use_nonce(app.id, "n-1", 150, 50).await.unwrap(), "a replay");
    assert!(store.first_use_nonce(other.id, "n-1", 100, 50).await.unwrap(), "per app");
    assert!(store.first_use_nonce(app.id, "n-1", 300, 101).await.unwrap(), "expired: new again");
    assert!(!store.first_use_nonce(app.id, "n-1", 400, 200).await.unwrap(), "and kept anew");
    store.first_use_nonce(app.id, "n-2", 10, 0).await.unwrap();
    assert!(store.sweep_nonces(250).await.unwrap() >= 2, "n-2 and the other app's n-1");
    assert!(!store.first_use_nonce(app.id, "n-1", 400, 250).await.unwrap(), "swept only expired");
    assert!(matches!(
        store.first_use_nonce(i64::MAX, "n-1", 100, 0).await,
        Err(StoreError::NotFound { what: "app", .. })
    ));
}

/// Two nodes that receive one replayed request at the same moment: one of them takes it.
pub(crate) async fn racing_uses_of_one_nonce_let_one_through(store: &dyn Store) {
    let app = create_demo_app(store, "racing-nonces").await;
    let uses = (0..8).map(|_| store.first_use_nonce(app.id, "same", 100, 0));
    let taken = futures_util::future::join_all(uses).await;
    assert_eq!(taken.iter().filter(|t| matches!(t, Ok(true))).count(), 1, "{taken:?}");
}

fn broadcast_with(app: i64, id: &str, quota: BroadcastQuota) -> NewPush {
    NewPush { quota: Some(quota), ..new_push(app, id, None) }
}

pub(crate) async fn broadcast_quota_holds_under_racing_creates(store: &dyn Store) {
    let app = create_demo_app(store, "racing-quota").await;
    let quota = BroadcastQuota { per_day: 3, per_hour: None, min_interval_secs: 0 };
    let creates =
        (0..10).map(|i| store.create_push(broadcast_with(app.id, &format!("q{i}"), quota)));
    let results = futures_util::future::join_all(creates).await;
    let stored = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Quota(QuotaBreach::PerDay { .. }))))
        .count();
    assert_eq!((stored, refused), (3, 7));
    let mut tencent = broadcast_with(app.id, "other-source", quota);
    tencent.source = "tencent".into();
    assert!(store.create_push(tencent).await.is_ok(), "each source has its own quota");
}

pub(crate) async fn broadcast_quota_interval_and_hourly_cap(store: &dyn Store) {
    let app = create_demo_app(store, "quota-rules").await;
    let interval = BroadcastQuota { per_day: 100, per_hour: None, min_interval_secs: 60 };
    store.create_push(broadcast_with(app.id, "m1", interval)).await.unwrap();
    let again = store.create_push(broadcast_with(app.id, "m2", interval)).await;
    assert!(matches!(again, Err(StoreError::Quota(QuotaBreach::MinInterval { .. }))), "{again:?}");
    let hourly = BroadcastQuota { per_day: 100, per_hour: Some(1), min_interval_secs: 0 };
    let capped = store.create_push(broadcast_with(app.id, "h1", hourly)).await;
    assert!(matches!(capped, Err(StoreError::Quota(QuotaBreach::PerHour { .. }))), "{capped:?}");
    assert!(matches!(store.push(app.id, "h1").await, Err(StoreError::NotFound { .. })));
    let unlimited = BroadcastQuota { per_day: 100, per_hour: None, min_interval_secs: 0 };
    assert!(store.create_push(broadcast_with(app.id, "u1", unlimited)).await.is_ok());
}
