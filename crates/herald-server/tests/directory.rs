//! Accounts, devices, tags, attributes and audience estimates through the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use common::{cli, code, AppCreds, Herald, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

async fn post(herald: &Herald, app: &AppCreds, path: &str, body: Value) -> (u16, Value) {
    herald.signed(app, Method::POST, path, Some(body)).await
}

async fn estimate(herald: &Herald, app: &AppCreds, audience: Value) -> Value {
    let (status, out) =
        post(herald, app, "/v1/audience/estimate", json!({ "audience": audience })).await;
    assert_eq!(status, 200, "{out}");
    out
}

async fn total(herald: &Herald, app: &AppCreds, audience: Value) -> u64 {
    estimate(herald, app, audience).await["total"].as_u64().unwrap()
}

async fn register(herald: &Herald, app: &AppCreds, device: &str, account: &str, platform: &str) {
    let body = json!({"account": account, "platform": platform, "package": "com.shop"});
    let (status, out) =
        herald.signed(app, Method::PUT, &format!("/v1/devices/{device}"), Some(body)).await;
    assert_eq!(status, 200, "{out}");
}

/// The seed scenarios of docs/audience.md: stock followers, platinum members in Shenzhen,
/// everyone except testers.
async fn seed(herald: &Herald, app: &AppCreds) {
    let accounts: Vec<String> = (1..=6).map(|i| format!("u{i}")).collect();
    let (status, out) =
        post(herald, app, "/v1/accounts/import", json!({ "accounts": accounts })).await;
    assert_eq!((status, out["created"].as_array().unwrap().len()), (200, 6), "{out}");
    for (accounts, tags) in [
        (json!(["u1", "u2"]), json!(["stock:AAPL"])),
        (json!(["u2", "u3"]), json!(["stock:TSLA"])),
        (json!(["u6"]), json!(["tester"])),
    ] {
        let (status, out) =
            post(herald, app, "/v1/tags/add", json!({"accounts": accounts, "tags": tags})).await;
        assert_eq!(
            (status, out["updated"].as_u64()),
            (200, Some(accounts.as_array().unwrap().len() as u64)),
            "{out}"
        );
    }
    let names = json!({"names": {"0": "city", "1": "tier"}});
    let (status, out) = herald.signed(app, Method::PUT, "/v1/attributes/names", Some(names)).await;
    assert_eq!((status, &out["names"]), (200, &json!({"0": "city", "1": "tier"})));
    let values = json!({"accounts": [
        {"account": "u1", "attributes": {"city": "Shenzhen", "tier": "platinum"}},
        {"account": "u4", "attributes": {"city": "Shenzhen", "tier": "gold"}},
        {"account": "u5", "attributes": {"city": "Beijing", "tier": "platinum"}},
    ]});
    let (status, out) = post(herald, app, "/v1/attributes/set", values).await;
    assert_eq!((status, out["updated"].as_u64()), (200, Some(3)), "{out}");
    register(herald, app, "d1", "u1", "ios").await;
    register(herald, app, "d2", "u2", "android").await;
    register(herald, app, "d3", "u2", "ios").await;
}

#[tokio::test]
async fn audiences_select_exactly_the_right_accounts_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("scenarios").await;
    seed(&herald, &app).await;

    let stocks = json!({"or": [{"tag": "stock:AAPL"}, {"tag": "stock:TSLA"}]});
    let platinum_shenzhen = json!({"and": [
        {"attr": {"name": "tier", "eq": "platinum"}}, {"attr": {"name": "city", "eq": "Shenzhen"}}]});
    let except_testers = json!({"not": {"tag": "tester"}});
    let gold_or_platinum = json!({"attr": {"name": "tier", "in": ["gold", "platinum"]}});

    let out = estimate(&herald, &app, stocks.clone()).await;
    assert_eq!(out["total"], 3);
    assert_eq!(out["by_platform"], json!({"ios": 2, "android": 1}));
    assert_eq!(out["without_device"], 1);
    assert_eq!(total(&herald, &app, platinum_shenzhen.clone()).await, 1);
    assert_eq!(total(&herald, &app, except_testers.clone()).await, 5);
    assert_eq!(total(&herald, &app, gold_or_platinum.clone()).await, 3);
    assert_eq!(total(&herald, &app, json!({"all": true})).await, 6);
    assert_eq!(total(&herald, &app, json!({"accounts": ["u1", "nobody"]})).await, 1);
    assert_eq!(total(&herald, &app, json!({"platform": "ios"})).await, 2);

    herald.stop();
    let herald = Herald::start(dir.path());
    assert_eq!(total(&herald, &app, stocks).await, 3, "index rebuilt from the store");
    assert_eq!(total(&herald, &app, platinum_shenzhen).await, 1);
    assert_eq!(total(&herald, &app, except_testers).await, 5);
    assert_eq!(total(&herald, &app, gold_or_platinum).await, 3);
    assert_eq!(
        estimate(&herald, &app, json!({"all": true})).await["by_platform"],
        json!({"ios": 2, "android": 1})
    );
}

#[tokio::test]
async fn invalid_audiences_point_at_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("invalid").await;
    let (status, err) = post(
        &herald,
        &app,
        "/v1/audience/estimate",
        json!({"audience": {"and": [{"tag": "a"}, {"attr": {"name": "nope", "eq": "x"}}]}}),
    )
    .await;
    assert_eq!((status, code(&err)), (400, "invalid_audience"), "{err}");
    assert_eq!(err["error"]["path"], "$.and[1].attr.name");
    let (_, err) =
        post(&herald, &app, "/v1/audience/estimate", json!({"audience": {"tag": "x".repeat(51)}}))
            .await;
    assert_eq!(
        (code(&err), err["error"]["limit"].as_str()),
        ("invalid_audience", Some("tag_bytes")),
        "{err}"
    );
    let (_, err) =
        post(&herald, &app, "/v1/audience/estimate", json!({"audience": {"tags": "x"}})).await;
    assert_eq!(code(&err), "invalid_audience");
}

#[tokio::test]
async fn accounts_import_list_get_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("accounts").await;
    seed(&herald, &app).await;

    let (_, again) =
        post(&herald, &app, "/v1/accounts/import", json!({"accounts": ["u1", "u7"]})).await;
    assert_eq!(
        (again["created"].clone(), again["existing"].clone()),
        (json!(["u7"]), json!(["u1"]))
    );

    let (status, page) = herald.signed(&app, Method::GET, "/v1/accounts?limit=4", None).await;
    assert_eq!(status, 200, "{page}");
    let names: Vec<&str> = page["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account"].as_str().unwrap())
        .collect();
    assert_eq!((names, page["next"].as_str()), (vec!["u1", "u2", "u3", "u4"], Some("u4")));
    let (_, rest) = herald.signed(&app, Method::GET, "/v1/accounts?limit=4&after=u4", None).await;
    assert_eq!((rest["accounts"].as_array().unwrap().len(), &rest["next"]), (3, &Value::Null));

    let (status, u2) = herald.signed(&app, Method::GET, "/v1/accounts/u2", None).await;
    assert_eq!(status, 200, "{u2}");
    assert_eq!(u2["tags"], json!(["stock:AAPL", "stock:TSLA"]));
    let (_, u1) = herald.signed(&app, Method::GET, "/v1/accounts/u1", None).await;
    assert_eq!(u1["attributes"], json!({"city": "Shenzhen", "tier": "platinum"}));
    assert_eq!(u1["devices"][0]["device_id"], "d1");

    let (status, _) = herald.signed(&app, Method::DELETE, "/v1/accounts/u1", None).await;
    assert_eq!(status, 204);
    let (status, err) = herald.signed(&app, Method::GET, "/v1/accounts/u1", None).await;
    assert_eq!((status, code(&err)), (404, "not_found"));
    assert_eq!(total(&herald, &app, json!({"tag": "stock:AAPL"})).await, 1, "left its tags");
    assert_eq!(total(&herald, &app, json!({"attr": {"name": "city", "eq": "Shenzhen"}})).await, 1);
    assert_eq!(total(&herald, &app, json!({"platform": "ios"})).await, 1, "its devices went");
    let (status, _) = herald.signed(&app, Method::GET, "/v1/devices/d1", None).await;
    assert_eq!(status, 404);
    let (status, _) = herald.signed(&app, Method::DELETE, "/v1/accounts/u1", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn devices_bind_rebind_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("devices").await;
    let body = json!({"account": "alice", "platform": "ios", "package": "com.shop",
        "vendor_token": {"kind": "apns", "token": "abc123"}, "app_version": "2.0", "locale": "zh_CN", "time_zone": "Asia/Shanghai"});
    let (status, out) = herald.signed(&app, Method::PUT, "/v1/devices/phone-1", Some(body)).await;
    assert_eq!(status, 200, "{out}");
    register(&herald, &app, "tablet-1", "alice", "android").await;
    assert_eq!(
        total(&herald, &app, json!({"all": true})).await,
        1,
        "registration created the account"
    );

    let (_, device) = herald.signed(&app, Method::GET, "/v1/devices/phone-1", None).await;
    assert_eq!(
        (device["account"].as_str(), device["vendor_token"]["kind"].as_str()),
        (Some("alice"), Some("apns"))
    );
    assert_eq!(device["time_zone"], "Asia/Shanghai");

    register(&herald, &app, "phone-1", "bob", "ios").await;
    let (_, device) = herald.signed(&app, Method::GET, "/v1/devices/phone-1", None).await;
    assert_eq!(device["account"], "bob", "the last bind wins");
    let ios = estimate(&herald, &app, json!({"platform": "ios"})).await;
    assert_eq!(ios["total"], 1);
    assert_eq!(
        total(&herald, &app, json!({"and": [{"platform": "ios"}, {"accounts": ["alice"]}]})).await,
        0
    );

    let (status, stats) = herald.signed(&app, Method::GET, "/v1/stats/devices", None).await;
    assert_eq!(status, 200);
    assert_eq!(stats, json!({"total": 2, "by_platform": {"android": 1, "ios": 1}}));

    let (status, _) = herald.signed(&app, Method::DELETE, "/v1/devices/phone-1", None).await;
    assert_eq!(status, 204);
    assert_eq!(total(&herald, &app, json!({"platform": "ios"})).await, 0);
    let (status, err) = herald.signed(&app, Method::DELETE, "/v1/devices/phone-1", None).await;
    assert_eq!((status, code(&err)), (404, "not_found"));

    for (body, what) in [
        (json!({"account": "a", "platform": "iOS", "package": "p"}), "platform"),
        (json!({"account": "", "platform": "ios", "package": "p"}), "account"),
        (
            json!({"account": "a", "platform": "ios", "package": "p", "vendor_token": {"kind": "xmpp", "token": "t"}}),
            "xmpp",
        ),
        (json!({"account": "a", "platform": "ios", "package": "p", "colour": "red"}), "colour"),
    ] {
        let (status, err) = herald.signed(&app, Method::PUT, "/v1/devices/x", Some(body)).await;
        assert_eq!(status, 400, "{err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(what), "{err}");
    }
}

#[tokio::test]
async fn tags_batches_and_every_limit() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let limits =
        json!({"tags_per_account": 3, "distinct_tags": 5, "tag_bytes": 8, "accounts_per_batch": 3});
    let app = herald.create_app_with(limits).await;
    post(&herald, &app, "/v1/accounts/import", json!({"accounts": ["a", "b", "c"]})).await;

    let (status, out) = post(
        &herald,
        &app,
        "/v1/tags/add",
        json!({"accounts": ["a", "b", "ghost"], "tags": ["x", "y"]}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["updated"], 2);
    assert_eq!(
        out["failed"],
        json!([{"account": "ghost", "code": "unknown_account", "message": "account does not exist"}])
    );

    let (_, out) =
        post(&herald, &app, "/v1/tags/add", json!({"accounts": ["a", "c"], "tags": ["z", "w"]}))
            .await;
    assert_eq!(out["updated"], 1, "{out}");
    assert_eq!(out["failed"][0]["account"], "a");
    assert_eq!(
        (out["failed"][0]["limit"].as_str(), out["failed"][0]["value"].as_u64()),
        (Some("tags_per_account"), Some(3))
    );

    let (status, err) =
        post(&herald, &app, "/v1/tags/add", json!({"accounts": ["b"], "tags": ["n1", "n2"]})).await;
    assert_eq!(
        (status, code(&err), err["error"]["limit"].as_str()),
        (422, "limit_exceeded", Some("distinct_tags")),
        "{err}"
    );
    let (status, err) =
        post(&herald, &app, "/v1/tags/add", json!({"accounts": ["b"], "tags": ["toolongtag"]}))
            .await;
    assert_eq!(
        (status, err["error"]["limit"].as_str(), err["error"]["value"].as_u64()),
        (422, Some("tag_bytes"), Some(8))
    );
    let (status, err) = post(
        &herald,
        &app,
        "/v1/tags/add",
        json!({"accounts": ["a", "b", "c", "d"], "tags": ["x"]}),
    )
    .await;
    assert_eq!((status, err["error"]["limit"].as_str()), (422, Some("accounts_per_batch")));
    let (status, err) =
        post(&herald, &app, "/v1/tags/add", json!({"accounts": ["b"], "tags": [""]})).await;
    assert_eq!((status, code(&err)), (400, "invalid_request"));
    let (status, err) =
        post(&herald, &app, "/v1/tags/add", json!({"accounts": ["b"], "tags": ["a\tb"]})).await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"].as_str().unwrap().contains("control character"), "{err}");

    let (_, out) =
        post(&herald, &app, "/v1/tags/remove", json!({"accounts": ["b"], "tags": ["x"]})).await;
    assert_eq!(out["updated"], 1);
    post(&herald, &app, "/v1/tags/set", json!({"accounts": ["c"], "tags": ["q"]})).await;
    let (_, got) =
        post(&herald, &app, "/v1/tags/get", json!({"accounts": ["a", "c", "ghost"]})).await;
    assert_eq!(got, json!({"accounts": {"a": ["x", "y"], "c": ["q"]}, "unknown": ["ghost"]}));
    assert_eq!(total(&herald, &app, json!({"tag": "q"})).await, 1);
    assert_eq!(total(&herald, &app, json!({"tag": "x"})).await, 1);

    let (_, out) = post(&herald, &app, "/v1/tags/clear", json!({"accounts": ["a"]})).await;
    assert_eq!(out["updated"], 1);
    assert_eq!(total(&herald, &app, json!({"tag": "y"})).await, 1);
}

#[tokio::test]
async fn attributes_names_values_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app =
        herald.create_app_with(json!({"attribute_slots": 2, "attribute_value_bytes": 5})).await;
    seed_min(&herald, &app).await;

    let (status, err) = herald
        .signed(&app, Method::PUT, "/v1/attributes/names", Some(json!({"names": {"2": "zone"}})))
        .await;
    assert_eq!((status, err["error"]["limit"].as_str()), (422, Some("attribute_slots")), "{err}");
    let (status, err) = herald
        .signed(&app, Method::PUT, "/v1/attributes/names", Some(json!({"names": {"1": "city"}})))
        .await;
    assert_eq!((status, code(&err)), (409, "conflict"), "{err}");

    let (status, err) = post(
        &herald,
        &app,
        "/v1/attributes/set",
        json!({"accounts": [{"account": "a", "attributes": {"colour": "red"}}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"].as_str().unwrap().contains("colour"), "{err}");
    let (status, err) = post(
        &herald,
        &app,
        "/v1/attributes/set",
        json!({"accounts": [{"account": "a", "attributes": {"city": "Shenzhen"}}]}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["limit"].as_str()),
        (422, Some("attribute_value_bytes")),
        "{err}"
    );

    let (_, out) = post(
        &herald,
        &app,
        "/v1/attributes/set",
        json!({"accounts": [
        {"account": "a", "attributes": {"city": "SZ", "tier": "gold"}},
        {"account": "ghost", "attributes": {"city": "SZ"}}]}),
    )
    .await;
    assert_eq!(
        (out["updated"].as_u64(), out["failed"][0]["code"].as_str()),
        (Some(1), Some("unknown_account"))
    );
    let (_, got) =
        post(&herald, &app, "/v1/attributes/get", json!({"accounts": ["a", "ghost"]})).await;
    assert_eq!(
        got,
        json!({"accounts": {"a": {"city": "SZ", "tier": "gold"}}, "unknown": ["ghost"]})
    );

    post(
        &herald,
        &app,
        "/v1/attributes/remove",
        json!({"accounts": [{"account": "a", "names": ["tier"]}]}),
    )
    .await;
    assert_eq!(total(&herald, &app, json!({"attr": {"name": "tier", "eq": "gold"}})).await, 0);
    assert_eq!(total(&herald, &app, json!({"attr": {"name": "city", "eq": "SZ"}})).await, 1);

    // Removing a name clears that attribute for everyone.
    let (status, names) = herald
        .signed(&app, Method::PUT, "/v1/attributes/names", Some(json!({"names": {"0": null}})))
        .await;
    assert_eq!((status, &names["names"]), (200, &json!({"1": "tier"})));
    herald
        .signed(&app, Method::PUT, "/v1/attributes/names", Some(json!({"names": {"0": "city"}})))
        .await;
    assert_eq!(total(&herald, &app, json!({"attr": {"name": "city", "eq": "SZ"}})).await, 0);
    let (_, got) = post(&herald, &app, "/v1/attributes/get", json!({"accounts": ["a"]})).await;
    assert_eq!(got["accounts"]["a"], json!({}));
}

async fn seed_min(herald: &Herald, app: &AppCreds) {
    post(herald, app, "/v1/accounts/import", json!({"accounts": ["a", "b"]})).await;
    let (status, _) = herald
        .signed(
            app,
            Method::PUT,
            "/v1/attributes/names",
            Some(json!({"names": {"0": "city", "1": "tier"}})),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn cli_drives_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let admin = [("HERALD_SERVER", herald.base.as_str()), ("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)];
    let (ok, out, err) = cli(&["app", "create", "--name", "cli", "--json"], &admin);
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let env = [
        ("HERALD_SERVER", herald.base.as_str()),
        ("HERALD_APP_KEY", created["key"].as_str().unwrap()),
        ("HERALD_APP_SECRET", created["secret"].as_str().unwrap()),
    ];
    let run = |args: &[&str]| {
        let (ok, out, err) = cli(args, &env);
        assert!(ok, "{args:?}: {err}");
        out
    };
    assert!(run(&["account", "import", "u1", "u2", "u3"]).contains("created 3"));
    run(&[
        "device",
        "register",
        "--account",
        "u1",
        "--device",
        "d1",
        "--platform",
        "ios",
        "--package",
        "com.x",
        "--apns-token",
        "ab12",
    ]);
    assert!(run(&["tag", "add", "--account", "u1", "--account", "u2", "--tag", "vip"])
        .contains("updated 2"));
    run(&["attr", "names", "--set", "0=city"]);
    run(&["attr", "set", "--account", "u1", "--attr", "city=Shenzhen"]);
    let got: Value =
        serde_json::from_str(&run(&["attr", "get", "--account", "u1", "--json"])).unwrap();
    assert_eq!(got["accounts"]["u1"]["city"], "Shenzhen");
    let tags: Value =
        serde_json::from_str(&run(&["tag", "get", "--account", "u2", "--json"])).unwrap();
    assert_eq!(tags["accounts"]["u2"], json!(["vip"]));
    let est: Value = serde_json::from_str(&run(&[
        "audience",
        "estimate",
        "--audience",
        r#"{"and":[{"tag":"vip"},{"not":{"attr":{"name":"city","eq":"Shenzhen"}}}]}"#,
        "--json",
    ]))
    .unwrap();
    assert_eq!(est["total"], 1);
    assert!(run(&["audience", "estimate", "--audience", r#"{"tag":"vip"}"#]).contains("ios"));
    let account: Value = serde_json::from_str(&run(&["account", "get", "u1", "--json"])).unwrap();
    assert_eq!(account["devices"][0]["vendor_token"]["token"], "ab12");
    assert!(run(&["device", "stats"]).contains("ios"));
    run(&["tag", "clear", "--account", "u2"]);
    run(&["account", "delete", "u3"]);
    let (ok, _, err) = cli(&["audience", "estimate", "--audience", r#"{"nope":1}"#], &env);
    assert!(!ok && err.contains("invalid_audience"), "{err}");
}

/// Registrations that arrive together are written together; each still gets its own answer
/// and the index and the store agree, also across a restart.
#[tokio::test]
async fn concurrent_registrations_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut herald = Herald::start(dir.path());
    let app = herald.create_app("burst").await;
    let registrations = (0..200).map(|i| {
        let (herald, app) = (&herald, &app);
        async move {
            let platform = if i % 2 == 0 { "ios" } else { "android" };
            register(herald, app, &format!("d{i}"), &format!("a{}", i % 50), platform).await;
        }
    });
    futures_util::future::join_all(registrations).await;
    // And one device moved by a later registration.
    register(&herald, &app, "d0", "late", "web").await;

    check_burst(&herald, &app).await;
    herald.stop();
    herald = Herald::start(dir.path());
    check_burst(&herald, &app).await;
}

async fn check_burst(herald: &Herald, app: &AppCreds) {
    let (_, stats) = herald.signed(app, Method::GET, "/v1/stats/devices", None).await;
    let by_platform = json!({"android": 100, "ios": 99, "web": 1});
    assert_eq!(stats, json!({"total": 200, "by_platform": by_platform}));
    assert_eq!(total(herald, app, json!({"all": true})).await, 51);
    // a0 kept its other devices (d50, d100, d150: all ios).
    assert_eq!(total(herald, app, json!({"platform": "ios"})).await, 25);
    assert_eq!(total(herald, app, json!({"platform": "web"})).await, 1);
}

/// A migration's file: accounts with tags and attributes, good lines and bad ones, imported
/// with the CLI (NDJSON, then CSV) and read back through the API and the index.
#[tokio::test]
async fn a_file_of_accounts_is_imported_in_bulk_and_bad_lines_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(json!({"accounts_per_batch": 3, "tags_per_account": 4})).await;
    let names = json!({"names": {"0": "city", "1": "tier"}});
    let (status, _) = herald.signed(&app, Method::PUT, "/v1/attributes/names", Some(names)).await;
    assert_eq!(status, 200);

    let mut ndjson = String::new();
    for i in 1..=10 {
        let line = json!({"account": format!("u{i}"), "tags": ["migrated", format!("g{}", i % 3)],
                          "attributes": {"city": if i % 2 == 0 { "sz" } else { "bj" }}});
        ndjson.push_str(&format!("{line}\n"));
        if i == 4 {
            ndjson.push_str("{\"account\": \"broken\"\n\n"); // line 5, then a blank line 6
        }
    }
    ndjson.push_str(&format!("{}\n", json!({"account": "u11", "attributes": {"planet": "mars"}})));
    ndjson.push_str(&format!("{}\n", json!({"account": "u12", "tags": ["a", "b", "c", "d", "e"]})));
    let file = dir.path().join("users.ndjson");
    std::fs::write(&file, ndjson).unwrap();
    let env = [
        ("HERALD_SERVER", herald.base.as_str()),
        ("HERALD_APP_KEY", app.key.as_str()),
        ("HERALD_APP_SECRET", app.secret.as_str()),
    ];
    let args = ["account", "import", "--file", file.to_str().unwrap(), "--lines-per-call", "4"];
    let (ok, out, err) = cli(&args, &env);
    assert!(!ok, "rejected lines fail the command: {out}");
    assert!(err.contains("3 lines were not imported"), "{err}");
    assert!(out.contains("line 5: invalid JSON"), "{out}");
    assert!(out.contains("line 13: unknown attribute `planet`"), "{out}");
    assert!(out.contains("line 14: 5 tags, at most 4"), "{out}");
    assert!(out.contains("13 lines") && out.contains("10 accounts created"), "{out}");

    assert_eq!(total(&herald, &app, json!({"tag": "migrated"})).await, 10);
    assert_eq!(total(&herald, &app, json!({"tag": "g1"})).await, 4);
    assert_eq!(total(&herald, &app, json!({"attr": {"name": "city", "eq": "sz"}})).await, 5);
    let (_, u4) = herald.signed(&app, Method::GET, "/v1/accounts/u4", None).await;
    assert_eq!(
        (u4["tags"].clone(), u4["attributes"].clone()),
        (json!(["g1", "migrated"]), json!({"city": "sz"}))
    );
    let (status, _) = herald.signed(&app, Method::GET, "/v1/accounts/u11", None).await;
    assert_eq!(status, 404, "a rejected line writes nothing");

    // Again as CSV: existing accounts gain tags (kept ones stay), new ones are created.
    let csv = "account,tags,tier,city\nu1,vip;gold,platinum,\nu13,,,gz\n\"u14\",x;y,silver,sz\n";
    let file = dir.path().join("more.csv");
    std::fs::write(&file, csv).unwrap();
    let args = ["account", "import", "--file", file.to_str().unwrap(), "--json"];
    let (ok, out, err) = cli(&args, &env);
    assert!(ok, "{out} {err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (summary["lines"].as_u64(), summary["created"].as_u64(), summary["existing"].as_u64()),
        (Some(3), Some(2), Some(1))
    );
    let (_, u1) = herald.signed(&app, Method::GET, "/v1/accounts/u1", None).await;
    assert_eq!(u1["tags"], json!(["g1", "gold", "migrated", "vip"]));
    assert_eq!(u1["attributes"], json!({"city": "bj", "tier": "platinum"}));
    assert_eq!(total(&herald, &app, json!({"attr": {"name": "tier", "eq": "silver"}})).await, 1);

    // The API itself numbers lines from `first_line`.
    let body = "{\"account\":\"u20\"}\nnot json\n";
    let path = "/v1/accounts/bulk?first_line=41";
    let req = common::Signer::new(&app).sign(
        herald.request(Method::POST, path),
        "POST",
        path,
        body.as_bytes(),
    );
    let (status, out) = herald.raw(req.body(body)).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["rejected"], json!([{"line": 42, "reason": out["rejected"][0]["reason"]}]));
    assert_eq!((out["lines"].as_u64(), out["created"].as_u64()), (Some(2), Some(1)));
}

/// Posts NDJSON to the bulk import as an app back end would.
async fn bulk(herald: &Herald, app: &AppCreds, body: &str) -> (u16, Value) {
    let path = "/v1/accounts/bulk";
    let req = common::Signer::new(app).sign(
        herald.request(Method::POST, path),
        "POST",
        path,
        body.as_bytes(),
    );
    herald.raw(req.body(body.to_owned())).await
}

/// Lines carry devices, bound as `PUT /v1/devices/{id}` binds them; a line refused by the
/// store (an existing account over its tag limit) writes none of its tags, values or devices.
#[tokio::test]
async fn bulk_lines_bind_devices_and_a_refused_line_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(json!({"tags_per_account": 2})).await;
    let names = json!({"names": {"0": "city"}});
    let (status, _) = herald.signed(&app, Method::PUT, "/v1/attributes/names", Some(names)).await;
    assert_eq!(status, 200);
    register(&herald, &app, "old-phone", "carol", "android").await;
    let (status, _) =
        post(&herald, &app, "/v1/tags/add", json!({"accounts": ["carol"], "tags": ["a", "b"]}))
            .await;
    assert_eq!(status, 200);

    let lines = [
        json!({"account": "ann", "tags": ["vip"], "devices": [
            {"device_id": "p1", "platform": "ios", "package": "com.shop",
             "vendor_token": {"kind": "apns", "token": "a1b2"}},
            {"device_id": "old-phone", "platform": "android", "package": "com.shop"}]}),
        json!({"account": "carol", "tags": ["c"], "attributes": {"city": "sz"},
               "devices": [{"device_id": "p3", "platform": "web", "package": "com.shop"}]}),
        json!({"account": "dan", "devices": [{"device_id": "p4", "platform": "Android", "package": "x"}]}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let (status, out) = bulk(&herald, &app, &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (out["created"].as_u64(), out["existing"].as_u64(), out["devices"].as_u64()),
        (Some(1), Some(0), Some(2)),
        "{out}"
    );
    let rejected = out["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{out}");
    assert_eq!(rejected[0]["line"], 2);
    assert!(rejected[0]["reason"].as_str().unwrap().contains("tags_per_account"), "{out}");
    assert_eq!(rejected[1]["line"], 3);
    assert!(rejected[1]["reason"].as_str().unwrap().starts_with("devices[0]: platform"), "{out}");

    let (_, ann) = herald.signed(&app, Method::GET, "/v1/accounts/ann", None).await;
    let ids: Vec<&str> = ann["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["old-phone", "p1"], "{ann}");
    assert_eq!(ann["devices"][1]["vendor_token"], json!({"kind": "apns", "token": "a1b2"}));
    let (_, carol) = herald.signed(&app, Method::GET, "/v1/accounts/carol", None).await;
    assert_eq!(
        (carol["tags"].clone(), carol["attributes"].clone()),
        (json!(["a", "b"]), json!({}))
    );
    assert_eq!(carol["devices"], json!([]), "old-phone moved to ann, p3 was never bound");
    let (status, _) = herald.signed(&app, Method::GET, "/v1/devices/p3", None).await;
    assert_eq!(status, 404);
    // The index agrees: ann is on both platforms, carol on none.
    assert_eq!(total(&herald, &app, json!({"platform": "android"})).await, 1);
    assert_eq!(
        total(&herald, &app, json!({"and": [{"platform": "ios"}, {"tag": "vip"}]})).await,
        1
    );
    assert_eq!(total(&herald, &app, json!({"platform": "web"})).await, 0);
}

/// A server killed in the middle of an import keeps whole batches: after a restart every
/// account stored has all of its tags and values, and their number is a multiple of the batch.
#[tokio::test]
async fn a_crash_mid_import_keeps_whole_batches() {
    const LINES: usize = 60_000;
    const BATCH: u64 = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(json!({"accounts_per_batch": BATCH})).await;
    let names = json!({"names": {"0": "city"}});
    let (status, _) = herald.signed(&app, Method::PUT, "/v1/attributes/names", Some(names)).await;
    assert_eq!(status, 200);
    let body: String = (0..LINES)
        .map(|i| {
            let line = json!({"account": format!("user{i:06}"), "tags": ["all", format!("t{}", i % 7)],
                              "attributes": {"city": format!("c{}", i % 5)}});
            format!("{line}\n")
        })
        .collect();
    let path = "/v1/accounts/bulk";
    let req = common::Signer::new(&app).sign(
        herald.request(Method::POST, path),
        "POST",
        path,
        body.as_bytes(),
    );
    let import = tokio::spawn(req.body(body).send());
    loop {
        if total(&herald, &app, json!({"all": true})).await > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    drop(herald); // SIGKILL
    let _ = import.await;

    let herald = Herald::start(dir.path());
    let stored = total(&herald, &app, json!({"all": true})).await;
    assert!(stored > 0 && stored < LINES as u64, "killed mid-way: {stored} accounts");
    assert_eq!(stored % BATCH, 0, "whole batches only: {stored}");
    assert_eq!(total(&herald, &app, json!({"tag": "all"})).await, stored);
    let cities = json!({"or": (0..5).map(|c| json!({"attr": {"name": "city", "eq": format!("c{c}")}})).collect::<Vec<_>>()});
    assert_eq!(total(&herald, &app, cities).await, stored);
    let (status, last) = herald
        .signed(&app, Method::GET, &format!("/v1/accounts/user{:06}", stored - 1), None)
        .await;
    assert_eq!((status, last["tags"].as_array().map(Vec::len)), (200, Some(2)), "{last}");
}
