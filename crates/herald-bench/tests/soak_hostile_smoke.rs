//! Smoke runs of `herald-bench soak` and `herald-bench hostile` against the real server, a few
//! seconds each: the scenarios still speak the protocol, and their bookkeeping (deliveries,
//! cut-offs) adds up. The long runs are in BENCHMARKS.md.

use std::path::PathBuf;
use std::process::Command;

/// The herald binary: `HERALD_BIN`, or the one cargo built next to this test.
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

fn bench(args: &[&str]) -> Option<serde_json::Value> {
    let Some(herald) = herald_binary() else {
        eprintln!(
            "skipped: no herald binary; build it (cargo build -p herald-server) or set HERALD_BIN"
        );
        return None;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = dir.path().join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_herald-bench"))
        .args(args)
        .arg("--herald-bin")
        .arg(&herald)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("herald-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let bytes = std::fs::read(&json).expect("the summary file");
    Some(serde_json::from_slice(&bytes).expect("a JSON summary"))
}

#[test]
fn a_short_soak_with_churn_loses_nothing() {
    // Six samples of 2 s, 5 pushes a second, every client reconnecting every 10 s on average.
    let args = ["soak", "-n", "60", "--per-worker", "30", "--sources", "2", "--minutes", "6"];
    let more = ["--sample-secs", "2", "--fit-from", "2", "--push-interval-ms", "200"];
    let churn = ["--churn-percent", "600", "--ack-interval-ms", "200"];
    let Some(report) = bench(&[&args[..], &more[..], &churn[..]].concat()) else { return };
    let deliveries = &report["deliveries"];
    let pushes = deliveries["pushes"].as_u64().unwrap();
    assert!(pushes >= 30, "{deliveries}");
    assert_eq!(deliveries["last_seq"].as_u64().unwrap(), pushes, "{deliveries}");
    assert_eq!(deliveries["min_last_seq"].as_u64().unwrap(), pushes, "{deliveries}");
    assert_eq!(deliveries["gaps"], 0, "{deliveries}");
    let minutes = report["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 6);
    let churned: u64 = minutes.iter().filter_map(|m| m["closes"]["churned"].as_u64()).sum();
    assert!(churned > 0, "no client churned: {minutes:?}");
    assert!(minutes.iter().all(|m| m["fds"].as_u64().unwrap() > 60), "{minutes:?}");
}

#[test]
fn hostile_clients_are_cut_off_beside_normal_ones() {
    let args = ["hostile", "-n", "40", "--per-worker", "20", "--sources", "2", "--repeats", "1"];
    let more = ["--fill", "20", "--settle-secs", "2", "--phase-timeout", "30"];
    let kinds = ["--never-read", "2", "--slow-read", "2", "--big-frames", "2", "--no-hello", "10"];
    let flood = ["--ack-flood", "2"];
    let Some(results) = bench(&[&args[..], &more[..], &kinds[..], &flood[..]].concat()) else {
        return;
    };
    for phase in ["alone", "beside_hostile"] {
        let phase = &results[phase];
        assert_eq!(phase["fill_complete"], true, "{phase}");
        assert_eq!(phase["runs"][0]["complete"], true, "{phase}");
        assert_eq!(phase["runs"][0]["received"], 40, "{phase}");
    }
    let outcomes = &results["outcomes"];
    assert!(outcomes["big_frames:close_4004"].as_u64().unwrap_or(0) > 0, "{outcomes}");
    assert!(outcomes["ack_flood:close_4013"].as_u64().unwrap_or(0) > 0, "{outcomes}");
    // Each silent client is upgraded, then cut off at the hello timeout and tries again, as
    // often as the run's length allows: how often depends on the machine's speed, not on herald.
    let count = |outcome: &str| outcomes[outcome].as_u64().unwrap_or(0);
    assert!(count("no_hello:upgraded") >= 10, "{outcomes}");
    let no_hello = outcomes.as_object().unwrap().keys().filter(|k| k.starts_with("no_hello:"));
    for outcome in no_hello {
        let expected = ["no_hello:upgraded", "no_hello:close_4003"];
        assert!(expected.contains(&outcome.as_str()), "a silent client got {outcome}: {outcomes}");
    }
}
