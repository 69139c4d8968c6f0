//! Pause points: named places in the server's work (a step of a push's dispatch, a receipts
//! flush) where the process can be made to stop, so that a crash test kills it with SIGKILL at
//! exactly that step instead of at a moment chosen by chance.
//!
//! `HERALD_PAUSE_AT=<point>` names one point. The first task that reaches it prints
//! `herald paused at <point>` on stdout and, like every task reaching it after, waits forever;
//! the rest of the process runs on. Unset (the normal case), a point costs one load of a value
//! read once and a branch.
//!
//! The points, in the order a push meets them:
//!
//! | point | where |
//! |---|---|
//! | `dispatch.begin` | the push is accepted and queued; nothing of its dispatch is stored |
//! | `store.begin_dispatch` | inside the transaction giving the push its seq and audience (the inbox write), before its commit |
//! | `dispatch.fan_out` | the push is in the inbox with its seq; the online fan-out has not begun |
//! | `dispatch.finish` | online devices have the push; its report counts are not recorded |
//! | `vendor.sent` | a page of offline devices was sent through the vendors; the outcomes are not counted |
//! | `receipts.flush` | report counts are about to be written, not yet in the store |

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The environment variable naming the point to pause at.
pub const PAUSE_AT_VAR: &str = "HERALD_PAUSE_AT";

/// What stdout shows when a task pauses, followed by the point's name.
pub const PAUSED_LINE: &str = "herald paused at ";

fn chosen() -> Option<&'static str> {
    static CHOSEN: OnceLock<Option<String>> = OnceLock::new();
    CHOSEN.get_or_init(|| std::env::var(PAUSE_AT_VAR).ok().filter(|p| !p.is_empty())).as_deref()
}

/// Whether `point` is the one `HERALD_PAUSE_AT` names.
pub fn is_chosen(point: &str) -> bool {
    chosen() == Some(point)
}

/// Waits forever if `point` is the chosen one; returns at once otherwise.
pub async fn at(point: &'static str) {
    if !is_chosen(point) {
        return;
    }
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::SeqCst) {
        let mut out = std::io::stdout().lock();
        // Nothing to do if stdout is gone: the pause holds all the same.
        let _ = writeln!(out, "{PAUSED_LINE}{point}").and_then(|()| out.flush());
    }
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;

    #[test]
    fn a_point_not_chosen_passes() {
        // The test process sets no pause point.
        assert!(!is_chosen("dispatch.begin"));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut paused = std::pin::pin!(at("dispatch.begin"));
        assert!(paused.as_mut().poll(&mut cx).is_ready());
    }
}
