//! Smoke runs of the load generator: 50 connections for about a second against the real
//! server, and 90 over a cluster of three, every scenario once, no peer. It checks that the bench still speaks the protocol and
//! that its bookkeeping adds up; the benchmark itself runs only when invoked (BENCHMARKS.md).

use std::path::PathBuf;
use std::process::Command;

/// The herald binary: `HERALD_BIN`, or the one cargo built next to this test (the workspace's
/// `cargo test` builds it for herald-server's own tests).
fn herald_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HERALD_BIN") {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    [profile_dir.join("herald"), profile_dir.parent()?.join("release").join("herald")]
        .into_iter()
        .find(|p| p.exists())
}

#[test]
fn fifty_connections_every_scenario() {
    let Some(herald) = herald_binary() else {
        eprintln!(
            "skipped: no herald binary; build it (cargo build -p herald-server) or set HERALD_BIN"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_herald-bench"))
        .args(["fanout", "-n", "50", "--per-worker", "25", "--sources", "2", "--peer", "none"])
        .args(["--one-repeats", "1", "--burst-secs", "1", "--ack-interval-ms", "200"])
        .args(["--phase-timeout", "20", "--herald-bin"])
        .arg(&herald)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("| scenario |"), "no summary table:\n{stdout}");

    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let herald = &results["herald"];
    let one = &herald["one"][0];
    assert_eq!(one["complete"], true, "{one}");
    assert_eq!(one["received"], 50, "{one}");
    let burst = &herald["burst"];
    assert_eq!(burst["complete"], true, "{burst}");
    assert_eq!(burst["failed"], 0, "{burst}");
    let sent = burst["sent"].as_u64().unwrap();
    assert!(sent > 0);
    assert_eq!(burst["frames"].as_u64().unwrap(), sent * 50, "{burst}");
    let storm = &herald["storm"];
    assert_eq!(storm["complete"], true, "{storm}");
    assert_eq!(storm["frames"], 150, "each client exactly 3 stored pushes: {storm}");
    assert_eq!(storm["over"], 0, "{storm}");
    assert_eq!(storm["duplicates"], 0, "{storm}");
    assert!(herald["idle"]["kib_per_connection"].is_number(), "{herald}");
}

/// The cluster mode: three nodes on the machine's PostgreSQL and NATS (a schema and stream
/// prefix of the run's own, removed afterwards), 90 connections spread over them, every
/// scenario once, the node-kill one included.
#[test]
fn three_nodes_every_scenario() {
    let Some(herald) = herald_binary() else {
        eprintln!("skipped: no herald binary");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald-bench"));
    command
        .args(["fanout", "--cluster", "3", "-n", "90", "--per-worker", "15", "--sources", "2"])
        .args(["--peer", "none", "--one-repeats", "1", "--burst-secs", "1"])
        .args(["--ack-interval-ms", "200", "--phase-timeout", "30", "--herald-bin"])
        .arg(&herald)
        .arg("--json")
        .arg(&json);
    if let Ok(url) = std::env::var("HERALD_TEST_POSTGRES") {
        command.args(["--cluster-store", &url]);
    }
    if let Ok(url) = std::env::var("HERALD_TEST_NATS") {
        command.args(["--cluster-nats", &url]);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(results["nodes"], 3);
    let herald = &results["herald"];
    assert_eq!(herald["one"][0]["received"], 90, "{herald}");
    let burst = &herald["burst"];
    assert_eq!(burst["complete"], true, "{burst}");
    assert_eq!(burst["frames"].as_u64().unwrap(), burst["sent"].as_u64().unwrap() * 90);
    let storm = &herald["storm"];
    assert_eq!((storm["frames"].as_u64(), storm["duplicates"].as_u64()), (Some(270), Some(0)));
    let failover = &results["failover"];
    assert_eq!(failover["complete"], true, "{failover}");
    assert_eq!(failover["members"], 90, "the killed node's clients rejoined: {failover}");
    assert_eq!(failover["orphaned"], 30, "{failover}");
    assert_ne!(failover["new_lease_holder"], failover["killed_node"], "{failover}");
    let bus = &results["bus"];
    assert!(bus["messages_received"].as_f64().unwrap() >= 1.0, "each node reads each push: {bus}");
}

/// Both peers beside herald, in one run: Mosquitto (the machine's broker) and Nchan (nginx
/// started by the bench). Every subscriber of each gets every message.
#[test]
fn fifty_connections_with_both_peers() {
    let Some(herald) = herald_binary() else {
        eprintln!("skipped: no herald binary");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_herald-bench"))
        .args(["fanout", "-n", "50", "--per-worker", "25", "--sources", "2"])
        .args(["--peer", "mosquitto,nchan", "--scenarios", "one,burst,idle"])
        .args(["--one-repeats", "1", "--burst-secs", "1", "--phase-timeout", "20"])
        .arg("--herald-bin")
        .arg(&herald)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("herald ÷ mosquitto") && stdout.contains("herald ÷ nchan"), "{stdout}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for peer in ["mosquitto", "nchan"] {
        let side = &results[peer];
        assert_eq!(side["one"][0]["received"], 50, "{peer}: {side}");
        let burst = &side["burst"];
        assert_eq!(burst["complete"], true, "{peer}: {burst}");
        assert_eq!(burst["failed"], 0, "{peer}: {burst}");
        let sent = burst["sent"].as_u64().unwrap();
        assert!(sent > 0, "{peer}: {burst}");
        assert_eq!(burst["frames"].as_u64().unwrap(), sent * 50, "{peer}: {burst}");
        assert!(side["idle"]["kib_per_connection"].is_number(), "{peer}: {side}");
    }
}
