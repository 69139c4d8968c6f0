//! The server's background tasks, spawned through [`Tasks`] so that shutdown can tell them to
//! stop and wait, bounded, until each has ended.
//!
//! Signal by cancelling, wait by tracking: a task that runs until told to stop selects on
//! [`Tasks::stopping`]; a task that does one thing (a vendor send, a batch of registrations)
//! just ends. Shutdown cancels, then waits until the tracker is empty or the timeout passes.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;

/// Background tasks in two stages. Workers (dispatch, scheduling, sweeps, webhooks, vendor
/// sends, registrations, cluster heartbeats and leases) stop first; recorders (the receipts
/// writer) stop after them, so that what the workers did last is written before the store
/// closes. Cheap to clone.
#[derive(Clone, Default)]
pub struct Tasks {
    workers: Stage,
    recorders: Stage,
}

#[derive(Clone, Default)]
struct Stage {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Stage {
    /// Cancels the stage and waits up to `timeout` for its tasks; returns how many still run.
    async fn stop(&self, timeout: Duration) -> usize {
        self.stop.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(timeout, self.tracker.wait()).await;
        self.tracker.len()
    }
}

impl Tasks {
    /// Spawns a worker task.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.workers.tracker.spawn(task);
    }

    /// Completes when workers are told to stop.
    pub fn stopping(&self) -> WaitForCancellationFutureOwned {
        self.workers.stop.clone().cancelled_owned()
    }

    /// Whether workers were told to stop.
    pub fn is_stopping(&self) -> bool {
        self.workers.stop.is_cancelled()
    }

    /// Spawns a recorder task: one that writes down what workers report.
    pub fn spawn_recorder<F>(&self, task: F)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.recorders.tracker.spawn(task);
    }

    /// Completes when recorders are told to stop, after every worker has ended (or the
    /// shutdown timeout passed).
    pub fn recorders_stopping(&self) -> WaitForCancellationFutureOwned {
        self.recorders.stop.clone().cancelled_owned()
    }

    /// Stops the workers and waits for them, then the recorders; each stage waits at most
    /// `timeout`. Returns whether every task ended.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        let workers = self.workers.stop(timeout).await;
        if workers > 0 {
            tracing::warn!(workers, ?timeout, "background tasks still running; going on");
        }
        let recorders = self.recorders.stop(timeout).await;
        if recorders > 0 {
            tracing::warn!(recorders, ?timeout, "recorders still running; going on");
        }
        workers == 0 && recorders == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn recorders_stop_after_workers_and_see_their_last_work() {
        let tasks = Tasks::default();
        let worker_done = Arc::new(AtomicBool::new(false));
        let seen_by_recorder = Arc::new(AtomicBool::new(false));
        let (done, stopping) = (worker_done.clone(), tasks.stopping());
        tasks.spawn(async move {
            stopping.await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.store(true, Ordering::SeqCst);
        });
        let (done, seen, stopping) =
            (worker_done.clone(), seen_by_recorder.clone(), tasks.recorders_stopping());
        tasks.spawn_recorder(async move {
            stopping.await;
            seen.store(done.load(Ordering::SeqCst), Ordering::SeqCst);
        });
        assert!(tasks.shutdown(Duration::from_secs(5)).await);
        assert!(seen_by_recorder.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_never_ends_is_left_after_the_timeout() {
        let tasks = Tasks::default();
        tasks.spawn(std::future::pending::<()>());
        assert!(!tasks.shutdown(Duration::from_secs(1)).await);
        assert!(tasks.is_stopping());
    }
}
