//! The worker processes as the orchestrator sees them: spawned with a share of the
//! connections each, told what to do, and their events gathered.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::control::{Command as WorkerCommand, Event, RoundStats};

pub struct WorkerProc {
    pub pid: u32,
    /// Connections it holds.
    pub count: u32,
    stdin: ChildStdin,
    child: Child,
}

pub struct Workers {
    pub procs: Vec<WorkerProc>,
    events: mpsc::UnboundedReceiver<(usize, Event)>,
    /// Last `min_complete` each worker reported in the current round.
    pub progress: Vec<u32>,
}

/// What a connect command achieved across workers.
#[derive(Debug, Default, Clone)]
pub struct ConnectSummary {
    pub ok: u32,
    pub failed: u32,
    pub errors: Vec<String>,
    /// Slowest worker's time from command to last connection.
    pub elapsed_ms: u64,
}

/// How long workers may take to start a round.
const ROUND_START_TIMEOUT: Duration = Duration::from_secs(30);

impl Workers {
    /// Spawns one worker per share (`this binary worker`) and waits until each is ready.
    pub async fn spawn(shares: &[(u64, u32)]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let (tx, events) = mpsc::unbounded_channel();
        let mut procs = Vec::new();
        for (index, &(_, count)) in shares.iter().enumerate() {
            let mut child = Command::new(&exe)
                .arg("worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .context("spawning a worker")?;
            let pid = child.id().context("worker exited at once")?;
            let stdin = child.stdin.take().context("worker stdin")?;
            let stdout = child.stdout.take().context("worker stdout")?;
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<Event>(&line) {
                        Ok(event) => {
                            if tx.send((index, event)).is_err() {
                                break;
                            }
                        }
                        Err(err) => eprintln!("worker {index}: unreadable event {err}: {line}"),
                    }
                }
            });
            procs.push(WorkerProc { pid, count, stdin, child });
        }
        let mut workers = Self { progress: vec![0; procs.len()], procs, events };
        let mut ready = vec![false; workers.procs.len()];
        let deadline = Instant::now() + Duration::from_secs(20);
        while ready.iter().any(|r| !r) {
            match workers.next(deadline).await {
                Some((i, Event::Ready { fd_limit, .. })) => {
                    if u64::from(workers.procs[i].count) + 16 > fd_limit {
                        bail!(
                            "worker {i} may open {fd_limit} files, fewer than its {} connections",
                            workers.procs[i].count
                        );
                    }
                    ready[i] = true;
                }
                Some(_) => {}
                None => bail!("workers did not start"),
            }
        }
        Ok(workers)
    }

    /// CPU time the workers used so far, ms.
    pub fn cpu_ms(&self) -> u64 {
        self.procs.iter().filter_map(|p| crate::proc::cpu_ms(p.pid)).sum()
    }

    pub async fn send(&mut self, index: usize, command: &WorkerCommand) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(command)?;
        line.push(b'\n');
        let stdin = &mut self.procs[index].stdin;
        stdin.write_all(&line).await?;
        stdin.flush().await?;
        Ok(())
    }

    pub async fn send_all(&mut self, command: &WorkerCommand) -> anyhow::Result<()> {
        for index in 0..self.procs.len() {
            self.send(index, command).await?;
        }
        Ok(())
    }

    /// Starts a round on every worker.
    ///
    /// Returns once every worker has started it: a message sent before a worker read the
    /// command would count in the round before and never in this one.
    pub async fn round(&mut self, expect: Option<u32>) -> anyhow::Result<()> {
        self.progress.iter_mut().for_each(|p| *p = 0);
        self.send_all(&WorkerCommand::Round { expect }).await?;
        let deadline = Instant::now() + ROUND_START_TIMEOUT;
        let mut started = vec![false; self.procs.len()];
        while started.iter().any(|s| !s) {
            match self.next(deadline).await {
                Some((index, Event::RoundStarted)) => started[index] = true,
                Some(_) => {}
                None => {
                    anyhow::bail!("workers did not start the round within {ROUND_START_TIMEOUT:?}")
                }
            }
        }
        Ok(())
    }

    /// The next event before `deadline`; progress is recorded on the way.
    pub async fn next(&mut self, deadline: Instant) -> Option<(usize, Event)> {
        let (index, event) = tokio::time::timeout_at(deadline, self.events.recv()).await.ok()??;
        if let Event::Progress { min_complete, .. } = event {
            self.progress[index] = self.progress[index].max(min_complete);
        }
        if let Event::Failed { error } = &event {
            eprintln!("worker {index}: {error}");
        }
        Some((index, event))
    }

    /// Lowest `min_complete` over workers: every connection has at least this many frames.
    pub fn min_progress(&self) -> u32 {
        self.progress.iter().copied().min().unwrap_or(0)
    }

    /// Waits for every worker's `connected` event.
    pub async fn connected(&mut self, timeout: Duration) -> anyhow::Result<ConnectSummary> {
        let deadline = Instant::now() + timeout;
        let mut seen = vec![false; self.procs.len()];
        let mut summary = ConnectSummary::default();
        while seen.iter().any(|s| !s) {
            match self.next(deadline).await {
                Some((i, Event::Connected { ok, failed, errors, elapsed_ms })) => {
                    seen[i] = true;
                    summary.ok += ok;
                    summary.failed += failed;
                    summary.errors.extend(errors);
                    summary.elapsed_ms = summary.elapsed_ms.max(elapsed_ms);
                }
                Some(_) => {}
                None => bail!("connecting took longer than {timeout:?}"),
            }
        }
        Ok(summary)
    }

    /// Waits until every worker reports its round done; on time-out, asks for the figures
    /// so far. Returns the merged figures and whether every worker was done.
    pub async fn done(&mut self, timeout: Duration) -> anyhow::Result<(RoundStats, bool)> {
        let deadline = Instant::now() + timeout;
        let mut stats: Vec<Option<RoundStats>> = vec![None; self.procs.len()];
        while stats.iter().any(Option::is_none) {
            match self.next(deadline).await {
                Some((i, Event::Done(round))) => stats[i] = Some(round),
                Some(_) => {}
                None => {
                    let partial = self.stats().await?;
                    return Ok((partial, false));
                }
            }
        }
        let merged = RoundStats::merged(stats.iter().flatten()).unwrap_or_default();
        Ok((merged, true))
    }

    /// Every worker's figures of the current round, merged.
    pub async fn stats(&mut self) -> anyhow::Result<RoundStats> {
        self.send_all(&WorkerCommand::Stats).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stats: Vec<Option<RoundStats>> = vec![None; self.procs.len()];
        while stats.iter().any(Option::is_none) {
            match self.next(deadline).await {
                Some((i, Event::Stats(round))) => stats[i] = Some(round),
                Some(_) => {}
                None => bail!("workers did not answer a stats request"),
            }
        }
        Ok(RoundStats::merged(stats.iter().flatten()).unwrap_or_default())
    }

    /// Closes every connection and waits until the workers say they are closed.
    pub async fn disconnect(&mut self) -> anyhow::Result<u32> {
        self.send_all(&WorkerCommand::Disconnect).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = vec![false; self.procs.len()];
        let mut closed = 0;
        while seen.iter().any(|s| !s) {
            match self.next(deadline).await {
                Some((i, Event::Disconnected { closed: n })) => {
                    seen[i] = true;
                    closed += n;
                }
                Some(_) => {}
                None => bail!("workers did not close their connections"),
            }
        }
        Ok(closed)
    }

    /// Tells every worker to exit and reaps them.
    pub async fn exit(mut self) {
        let _ = self.send_all(&WorkerCommand::Exit).await;
        for proc in &mut self.procs {
            if tokio::time::timeout(Duration::from_secs(20), proc.child.wait()).await.is_err() {
                let _ = proc.child.kill().await;
            }
        }
    }
}

impl Workers {
    /// Waits for every worker's `connected` and `done` events, in whatever order they come
    /// (during a reconnect storm the first clients are done before the last connect).
    pub async fn connected_and_done(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<(ConnectSummary, RoundStats, bool)> {
        let deadline = Instant::now() + timeout;
        let count = self.procs.len();
        let mut connected = vec![false; count];
        let mut done: Vec<Option<RoundStats>> = vec![None; count];
        let mut summary = ConnectSummary::default();
        while connected.iter().any(|c| !c) || done.iter().any(Option::is_none) {
            match self.next(deadline).await {
                Some((i, Event::Connected { ok, failed, errors, elapsed_ms })) => {
                    connected[i] = true;
                    summary.ok += ok;
                    summary.failed += failed;
                    summary.errors.extend(errors);
                    summary.elapsed_ms = summary.elapsed_ms.max(elapsed_ms);
                }
                Some((i, Event::Done(round))) => done[i] = Some(round),
                Some(_) => {}
                None => {
                    let partial = self.stats().await?;
                    return Ok((summary, partial, false));
                }
            }
        }
        let merged = RoundStats::merged(done.iter().flatten()).unwrap_or_default();
        Ok((summary, merged, true))
    }
}
