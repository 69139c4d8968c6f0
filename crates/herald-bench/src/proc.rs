//! Process facts from /proc: resident memory of the server and of the peer broker.

use std::process::Command;

/// Resident set size of process `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The soft and hard open-files limits of process `pid`, from /proc/PID/limits.
pub fn open_files_limit(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

/// The pid of the process named exactly `name`, if exactly one runs.
pub fn pgrep(name: &str) -> Option<u32> {
    let output = Command::new("pgrep").arg("-x").arg(name).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut pids = text.split_whitespace().filter_map(|p| p.parse().ok());
    let pid = pids.next()?;
    pids.next().is_none().then_some(pid)
}
