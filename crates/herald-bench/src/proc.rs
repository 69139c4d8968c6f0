//! Process facts from /proc: resident memory of the server and of the peer broker.

use std::process::Command;

/// Resident set size of process `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory of several processes together (a cluster's nodes), in KiB; `None` if
/// there are none or one of them cannot be read.
pub fn rss_kib_sum(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| rss_kib(pid)).sum()
}

/// CPU time several processes have used together, in milliseconds.
pub fn cpu_ms_sum(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| cpu_ms(pid)).sum()
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

/// The processes whose parent is `pid` (an nginx master's workers).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| parent(child) == Some(pid))
        .collect()
}

/// The parent of process `pid`, from /proc/PID/stat.
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    stat[stat.rfind(')')? + 2..].split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) process `pid` has used, in milliseconds.
pub fn cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 1000 / clock_ticks())
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 on Linux unless told otherwise.
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// The 1-minute load average, to tell a quiet machine from a busy one.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Open file descriptors of process `pid` (entries of /proc/PID/fd).
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(cpu_ms(me).is_some());
        assert!(load_average().is_some());
        assert!(rss_kib_sum(&[me, me]).is_some_and(|kib| kib > 0));
        assert!(cpu_ms_sum(&[me]).is_some());
        assert_eq!(rss_kib_sum(&[]), None);
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let found = children(me).contains(&child.id());
        let parent_found = parent(child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found);
        assert_eq!(parent_found, Some(me));
    }
}
