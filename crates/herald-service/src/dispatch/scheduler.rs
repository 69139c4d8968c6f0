//! Pushes with a future push time wait here, ordered by time; each is handed to the dispatcher
//! when its time comes. The store is the truth: at start-up every scheduled push is put back.
//!
//! Push times are wall-clock times, but timers run on the monotonic clock, which does not
//! follow a step of the wall clock (NTP correcting it, an operator setting it). So no wait is
//! longer than [`WALL_CLOCK_CHECK`]: after a jump forward, the pushes now due go out within
//! that time; after a jump back, none goes out before its time on the new clock. Each goes
//! out once: firing takes it out of the waiting set, and the dispatch starts only for a push
//! the store still holds as scheduled.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use herald_core::AppId;
use tokio::sync::Notify;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::tasks::Tasks;

/// Longest the scheduler sleeps before it reads the wall clock again.
const WALL_CLOCK_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The waiting pushes and the task that fires them.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

struct Shared {
    waiting: Mutex<BTreeSet<(DateTime<Utc>, AppId, String)>>,
    /// Woken when a push earlier than the current wait is scheduled.
    changed: Notify,
}

impl Scheduler {
    /// Starts the task in `tasks`; `due(app, push_id)` is called for each push whose time has
    /// come, until shutdown (the store keeps what still waits).
    pub fn spawn(tasks: &Tasks, due: impl Fn(AppId, String) + Send + 'static) -> Self {
        let shared = Arc::new(Shared { waiting: Mutex::default(), changed: Notify::new() });
        tasks.spawn(run(shared.clone(), due, tasks.stopping()));
        Self { shared }
    }

    pub fn schedule(&self, at: DateTime<Utc>, app: AppId, push_id: String) {
        self.shared.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert((at, app, push_id));
        self.shared.changed.notify_one();
    }
}

async fn run(
    shared: Arc<Shared>,
    due: impl Fn(AppId, String),
    stopping: WaitForCancellationFutureOwned,
) {
    tokio::pin!(stopping);
    loop {
        let next = shared.waiting.lock().unwrap_or_else(|p| p.into_inner()).first().cloned();
        let Some((at, app, push_id)) = next else {
            tokio::select! {
                () = &mut stopping => return,
                () = shared.changed.notified() => continue,
            }
        };
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        if !wait.is_zero() {
            // Woken early by a new, possibly earlier push, or to read the clock: look again.
            tokio::select! {
                () = &mut stopping => return,
                () = tokio::time::sleep(wait.min(WALL_CLOCK_CHECK)) => continue,
                () = shared.changed.notified() => continue,
            }
        }
        let removed = shared.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&(
            at,
            app,
            push_id.clone(),
        ));
        if removed {
            due(app, push_id);
        }
    }
}
