//! The data directory's disk fills up: writes are refused with 503 `storage_full`, reads go
//! on, every push answered with an id is delivered whole, and the server takes writes again
//! once space is freed, without a restart.
//!
//! The data directory is a small tmpfs mounted by the test (it runs as root). Where mounting
//! is not allowed, the test fails saying so, unless `HERALD_TEST_SKIP_TMPFS=1` asks to skip it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, code, next_push, Herald};

/// Size of the tmpfs: room for the database and a few hundred pushes.
const TMPFS_SIZE: &str = "16m";

/// A tmpfs mounted for one test; unmounted when dropped, also when the test fails.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs on `path`; `None` if the environment asked to skip where mounting is
    /// refused.
    fn mount(path: &Path) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE}"), "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { path: path.to_owned() }),
            refused => {
                let why = match refused {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                    Err(err) => err.to_string(),
                };
                if std::env::var("HERALD_TEST_SKIP_TMPFS").is_ok_and(|v| v == "1") {
                    eprintln!("disk-full test skipped (HERALD_TEST_SKIP_TMPFS=1): {why}");
                    return None;
                }
                panic!(
                    "the disk-full test mounts a tmpfs and needs root (or CAP_SYS_ADMIN): \
                     `mount -t tmpfs` said: {why}; set HERALD_TEST_SKIP_TMPFS=1 to skip it"
                );
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process of the test that still holds a file does not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes `path` until the file system has no room left; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut written = 0u64;
    let mut size = chunk.len();
    // Smaller and smaller writes take the last partial block too.
    while size > 0 {
        match file.write(&chunk[..size]) {
            Ok(0) => size /= 2,
            Ok(n) => written += n as u64,
            Err(err) if err.raw_os_error() == Some(28) => size /= 2,
            Err(err) => panic!("filling the disk: {err}"),
        }
    }
    let _ = file.sync_all();
    written
}

/// Repeats a write (numbered, so each is new) until the full store refuses it with 503
/// `storage_full`; any other answer than success or that fails the test.
async fn refused_while_full<F, Fut>(what: &str, write: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    for n in 0..100 {
        match write(n).await {
            (200 | 201, _) => continue,
            (503, body) if code(&body) == "storage_full" => return,
            (status, body) => panic!("{what} on a full disk answered {status}: {body}"),
        }
    }
    panic!("{what} was never refused on a full disk");
}

fn push_body(n: usize) -> Value {
    // Large messages make every push need new pages, so the store hits the full disk soon.
    json!({"audience": {"all": true}, "message": {"n": n, "pad": "x".repeat(8_000)}, "ttl_secs": 3600})
}

#[tokio::test]
async fn a_full_disk_refuses_writes_with_503_keeps_reads_and_recovers_without_restart() {
    if common::on_postgres() {
        // The data directory's disk is the SQLite store's; PostgreSQL's disk is its own.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(&dir.path().join("data")) else { return };
    let herald = Herald::start(&tmpfs.path);
    let app = herald
        .create_app_with(
            json!({"broadcast_min_interval_secs": 0, "broadcast_daily_quota": 100_000}),
        )
        .await;
    let mut online = herald.device(&app, "ann", "phone-1", "android").await;

    let (status, first) = herald.signed(&app, Method::POST, "/v1/pushes", Some(push_body(0))).await;
    assert_eq!(status, 201, "{first}");
    let first_id = first["push_id"].as_str().unwrap().to_owned();
    assert_eq!(next_push(&mut online).await.push_id, first_id);

    let filler = tmpfs.path.join("filler");
    let filled = fill(&filler);
    assert!(filled > 0, "the filler took no space");

    // Pushes until the store runs out of room: each is either accepted whole (201, an id)
    // or refused whole (503 storage_full); never a 500.
    let mut accepted = vec![first_id.clone()];
    let mut refusal = None;
    for n in 1..=2_000 {
        let (status, body) =
            herald.signed(&app, Method::POST, "/v1/pushes", Some(push_body(n))).await;
        match status {
            201 => accepted.push(body["push_id"].as_str().unwrap().to_owned()),
            503 => {
                refusal = Some(body);
                break;
            }
            other => panic!("push {n} on a full disk answered {other}: {body}"),
        }
    }
    let refusal = refusal.expect("a full disk refused a push");
    assert_eq!(code(&refusal), "storage_full", "{refusal}");
    let message = refusal["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no room") && message.contains("nothing was changed"), "{message}");

    // Other writes are refused alike; each is done whole or not at all (a write that fits
    // in pages the store freed may still go through).
    let device = json!({"account": "bob", "platform": "android", "package": "com.shop"});
    let (server, creds) = (&herald, &app);
    refused_while_full("a device registration", |n| {
        let (path, device) = (format!("/v1/devices/extra-{n}"), device.clone());
        async move { server.signed(creds, Method::PUT, &path, Some(device)).await }
    })
    .await;

    // Reads go on.
    let (status, shown) =
        herald.signed(&app, Method::GET, &format!("/v1/pushes/{first_id}"), None).await;
    assert_eq!(status, 200, "{shown}");
    let (status, listed) = herald.signed(&app, Method::GET, "/v1/pushes", None).await;
    assert_eq!(status, 200, "{listed}");
    let (status, _) =
        herald.signed(&app, Method::GET, &format!("/v1/pushes/{first_id}/report"), None).await;
    assert_eq!(status, 200);
    let (status, _) = herald.signed(&app, Method::GET, "/v1/app", None).await;
    assert_eq!(status, 200);

    // Space comes back: the same server takes writes again.
    std::fs::remove_file(&filler).unwrap();
    let mut after = None;
    for _ in 0..100 {
        let (status, body) =
            herald.signed(&app, Method::POST, "/v1/pushes", Some(push_body(9_999))).await;
        if status == 201 {
            after = Some(body["push_id"].as_str().unwrap().to_owned());
            break;
        }
        assert_eq!((status, code(&body)), (503, "storage_full"), "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    accepted.push(after.expect("pushes are taken again once space is freed"));
    let (status, body) =
        herald.signed(&app, Method::PUT, "/v1/devices/phone-2", Some(device)).await;
    assert_eq!(status, 200, "{body}");

    // Every push answered with an id reaches the online device once, in order, and is done.
    let mut received = vec![first_id];
    while received.len() < accepted.len() {
        let push = next_push(&mut online).await;
        assert!(!received.contains(&push.push_id), "push {} received twice", push.push_id);
        received.push(push.push_id);
    }
    assert_eq!(received, accepted);
    let unique: BTreeSet<_> = accepted.iter().collect();
    assert_eq!(unique.len(), accepted.len());
    for push_id in &accepted {
        let (status, push) =
            herald.signed(&app, Method::GET, &format!("/v1/pushes/{push_id}"), None).await;
        assert_eq!(status, 200, "{push}");
        for _ in 0..100 {
            let (_, push) =
                herald.signed(&app, Method::GET, &format!("/v1/pushes/{push_id}"), None).await;
            if push["status"] == "done" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (_, push) =
            herald.signed(&app, Method::GET, &format!("/v1/pushes/{push_id}"), None).await;
        assert_eq!(push["status"], "done", "{push}");
    }
    eprintln!(
        "disk full after {filled} filler bytes: {} pushes accepted, then 503 storage_full",
        accepted.len() - 2
    );
    herald.stop();
    drop(tmpfs);
}
