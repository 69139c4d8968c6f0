//! The worker process (`herald-bench worker`, hidden): holds its share of the client
//! connections, does what the orchestrator says on stdin, and reports on stdout (see
//! [`crate::control`]).
//!
//! One thread: the connections spend their lives waiting, and the orchestrator runs several
//! workers next to the server on a 2-core machine, so each worker should take one core at most.
//! Everything lives on a `LocalSet`, shared through `Rc`/`RefCell` without locks.

mod herald;
mod hostile;
mod mqtt;
mod nchan;
mod round;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::LocalSet;

use crate::control::{Command, Event};
use round::Round;

/// How long the worker waits for its connections to close after a disconnect command.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest time one connection attempt may take (TCP, upgrade, hello, welcome).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the worker until stdin closes or it is told to exit.
pub fn main() -> anyhow::Result<()> {
    // Every connection is an open file; the hard limit is what this machine allows.
    let fd_limit =
        rlimit::increase_nofile_limit(u64::MAX).context("raising the open files limit")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    LocalSet::new().block_on(&runtime, serve(fd_limit))
}

/// One client connection's place in the worker.
#[derive(Debug, Default, Clone)]
pub(crate) struct Slot {
    /// Frames received in the current round.
    received: u32,
    /// Highest sequence number received (herald seq, or the publisher's number for MQTT).
    last_seq: u64,
    /// Highest seq acked cumulatively to herald.
    acked: u64,
    /// Seqs skipped over: pushes this connection never received.
    gaps: u64,
    /// Should be connected: false once it failed or the server closed it.
    wanted: bool,
    /// Counted among the current round's members.
    in_round: bool,
}

pub(crate) struct Worker {
    slots: RefCell<Vec<Slot>>,
    round: RefCell<Round>,
    events: mpsc::UnboundedSender<Event>,
    /// Bumped by a disconnect command: every connection task watching it closes.
    stop: watch::Sender<u64>,
    live: Cell<u32>,
    drained: Notify,
    /// What happened to this worker's misbehaving clients, if it runs any.
    hostile: Rc<hostile::Outcomes>,
}

impl Worker {
    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// A frame arrived on connection `index`.
    pub(crate) fn on_frame(&self, index: usize, seq: Option<u64>, stamp: Option<u64>) {
        let mut slots = self.slots.borrow_mut();
        let Some(slot) = slots.get_mut(index) else { return };
        let mut round = self.round.borrow_mut();
        let duplicate = match seq {
            Some(seq) if seq <= slot.last_seq => true,
            Some(seq) => {
                slot.gaps += seq - slot.last_seq - 1;
                slot.last_seq = seq;
                false
            }
            None => false,
        };
        slot.received += 1;
        let events = round.on_frame(slot.received, slot.in_round, duplicate, stamp);
        drop(slots);
        self.emit_round(&mut round, events);
    }

    /// Connection `index` is gone for good (failed to connect, closed by the server).
    pub(crate) fn lost(&self, index: usize, reason: &str) {
        let mut slots = self.slots.borrow_mut();
        let Some(slot) = slots.get_mut(index) else { return };
        slot.wanted = false;
        let mut round = self.round.borrow_mut();
        *round.closes.entry(reason.to_owned()).or_default() += 1;
        if std::mem::take(&mut slot.in_round) {
            let events = round.leave(slot.received);
            drop(slots);
            self.emit_round(&mut round, events);
        }
    }

    /// Connection `index` closed (`reason`) and reconnects: it stays in the round.
    pub(crate) fn reconnecting(&self, reason: &str) {
        *self.round.borrow_mut().closes.entry(reason.to_owned()).or_default() += 1;
    }

    fn emit_round(&self, round: &mut Round, progress: round::Advance) {
        if progress.advanced {
            self.emit(Event::Progress { min_complete: round.min_complete, at_us: progress.at_us });
        }
        if progress.done {
            let stats = round.stats(&self.slots.borrow());
            self.emit(Event::Done(stats));
        }
    }

    fn start_round(&self, expect: Option<u32>) {
        let mut slots = self.slots.borrow_mut();
        let mut members = 0;
        for slot in slots.iter_mut() {
            slot.received = 0;
            slot.in_round = slot.wanted;
            members += u32::from(slot.wanted);
        }
        drop(slots);
        let mut round = self.round.borrow_mut();
        *round = Round::new(members, expect);
        let events = round.check();
        self.emit_round(&mut round, events);
    }

    /// The lost slots are wanted again and join the current round with nothing received.
    fn rejoin_lost(&self) -> Vec<usize> {
        let mut slots = self.slots.borrow_mut();
        let mut round = self.round.borrow_mut();
        let mut lost = Vec::new();
        for (index, slot) in slots.iter_mut().enumerate().filter(|(_, s)| !s.wanted) {
            slot.wanted = true;
            slot.received = 0;
            slot.in_round = true;
            round.join();
            lost.push(index);
        }
        lost
    }

    pub(crate) fn slot(&self, index: usize) -> Slot {
        self.slots.borrow().get(index).cloned().unwrap_or_default()
    }

    pub(crate) fn set_acked(&self, index: usize, acked: u64) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(index) {
            slot.acked = slot.acked.max(acked);
        }
    }

    /// Counts a connection task while it runs, so that a disconnect can wait for all of them.
    pub(crate) fn track(self: &Rc<Self>) -> LiveGuard {
        self.live.set(self.live.get() + 1);
        LiveGuard { worker: self.clone() }
    }
}

pub(crate) struct LiveGuard {
    worker: Rc<Worker>,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let live = self.worker.live.get().saturating_sub(1);
        self.worker.live.set(live);
        if live == 0 {
            self.worker.drained.notify_waiters();
        }
    }
}

/// What a connect command shares with its connection tasks.
pub(crate) struct Attempts {
    results: mpsc::UnboundedSender<Result<(), String>>,
    pub(crate) permits: Semaphore,
}

impl Attempts {
    pub(crate) fn report(&self, result: Result<(), String>) {
        let _ = self.results.send(result);
    }
}

async fn serve(fd_limit: u64) -> anyhow::Result<()> {
    let (events, mut outgoing) = mpsc::unbounded_channel::<Event>();
    let writer = tokio::task::spawn_local(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(event) = outgoing.recv().await {
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let worker = Rc::new(Worker {
        slots: RefCell::default(),
        round: RefCell::new(Round::new(0, None)),
        events,
        stop: watch::Sender::new(0),
        live: Cell::new(0),
        drained: Notify::new(),
        hostile: Rc::default(),
    });
    worker.emit(Event::Ready { pid: std::process::id(), fd_limit });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let command: Command = match serde_json::from_str(&line) {
            Ok(command) => command,
            Err(err) => {
                worker.emit(Event::Failed { error: format!("bad command: {err}") });
                continue;
            }
        };
        match command {
            Command::HeraldConnect(config) => {
                let slots = if config.rejoin {
                    Slots::Rejoin
                } else if config.resume {
                    Slots::Resume
                } else {
                    Slots::New(config.count)
                };
                let (attempts, pending, indices) = prepare(&worker, slots, config.concurrency);
                let spawned = herald::spawn_all(&worker, config, attempts, indices);
                if let Err(err) = spawned {
                    worker.emit(Event::Failed { error: format!("{err:#}") });
                    continue;
                }
                tokio::task::spawn_local(report_connected(worker.clone(), pending));
            }
            Command::MqttConnect(config) => {
                let (attempts, pending, _) =
                    prepare(&worker, Slots::New(config.count), config.concurrency);
                mqtt::spawn_all(&worker, config, attempts);
                tokio::task::spawn_local(report_connected(worker.clone(), pending));
            }
            Command::NchanConnect(config) => {
                let (attempts, pending, _) =
                    prepare(&worker, Slots::New(config.count), config.concurrency);
                if let Err(err) = nchan::spawn_all(&worker, config, attempts) {
                    worker.emit(Event::Failed { error: format!("{err:#}") });
                    continue;
                }
                tokio::task::spawn_local(report_connected(worker.clone(), pending));
            }
            Command::Round { expect } => {
                worker.start_round(expect);
                worker.emit(Event::RoundStarted);
            }
            Command::Expect { count } => {
                let mut round = worker.round.borrow_mut();
                round.expect = Some(count);
                let events = round.check();
                worker.emit_round(&mut round, events);
            }
            Command::Stats => {
                let stats = worker.round.borrow().stats(&worker.slots.borrow());
                worker.emit(Event::Stats(stats));
            }
            Command::Disconnect => {
                tokio::task::spawn_local(disconnect(worker.clone()));
            }
            Command::Hostile(attack) => {
                if let Err(err) = hostile::spawn_all(&worker, attack) {
                    worker.emit(Event::Failed { error: format!("{err:#}") });
                }
            }
            Command::HostileReport => {
                let outcomes = worker.hostile.borrow().clone();
                worker.emit(Event::HostileReport { outcomes });
            }
            Command::Exit => break,
        }
    }
    worker.stop.send_modify(|g| *g += 1);
    drop(worker);
    // Let the last events out before the process ends.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    Ok(())
}

/// Which slots a connect command opens.
enum Slots {
    /// `count` new ones, replacing any there were.
    New(u32),
    /// The wanted ones, again (after a disconnect command).
    Resume,
    /// The ones lost (their server died): they join the current round and connect again.
    Rejoin,
}

/// Sets up the slots for a connect command; returns what its attempts share, what reports
/// them, and the slots to open.
fn prepare(
    worker: &Rc<Worker>,
    which: Slots,
    concurrency: u32,
) -> (Rc<Attempts>, Pending, Vec<usize>) {
    let indices: Vec<usize> = match which {
        Slots::New(count) => {
            *worker.slots.borrow_mut() =
                vec![Slot { wanted: true, ..Slot::default() }; count as usize];
            (0..count as usize).collect()
        }
        Slots::Resume => {
            let slots = worker.slots.borrow();
            (0..slots.len()).filter(|&i| slots[i].wanted).collect()
        }
        Slots::Rejoin => worker.rejoin_lost(),
    };
    let (results, receiver) = mpsc::unbounded_channel();
    let permits = Semaphore::new(concurrency.max(1) as usize);
    let expected = indices.len() as u32;
    (Rc::new(Attempts { results, permits }), (receiver, expected, Instant::now()), indices)
}

/// The outcomes of a connect command's attempts still to come: receiver, how many, since when.
type Pending = (mpsc::UnboundedReceiver<Result<(), String>>, u32, Instant);

async fn report_connected(worker: Rc<Worker>, (mut results, expected, started): Pending) {
    let (mut ok, mut failed, mut errors) = (0u32, 0u32, Vec::new());
    while ok + failed < expected {
        match results.recv().await {
            Some(Ok(())) => ok += 1,
            Some(Err(err)) => {
                failed += 1;
                if errors.len() < 5 {
                    errors.push(err);
                }
            }
            None => break,
        }
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    worker.emit(Event::Connected { ok, failed, errors, elapsed_ms });
}

async fn disconnect(worker: Rc<Worker>) {
    let before = worker.live.get();
    worker.stop.send_modify(|g| *g += 1);
    let drained = async {
        loop {
            let notified = worker.drained.notified();
            if worker.live.get() == 0 {
                return;
            }
            notified.await;
        }
    };
    let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, drained).await;
    let closed = before.saturating_sub(worker.live.get());
    worker.emit(Event::Disconnected { closed });
}

/// Opens one connection within the command's handshake limit and the connect time-out, and
/// reports the outcome; `None` when it failed (the slot is then lost).
pub(crate) async fn attempt<T>(
    worker: &Worker,
    attempts: Rc<Attempts>,
    index: usize,
    open: impl std::future::Future<Output = anyhow::Result<T>>,
) -> Option<T> {
    let opened = {
        let _permit = attempts.permits.acquire().await;
        tokio::time::timeout(CONNECT_TIMEOUT, open).await
    };
    let (reason, error) = match opened {
        Ok(Ok(opened)) => {
            attempts.report(Ok(()));
            return Some(opened);
        }
        Ok(Err(err)) => ("connect_failed", format!("{err:#}")),
        Err(_) => ("connect_timeout", "connect timed out".to_owned()),
    };
    worker.lost(index, reason);
    attempts.report(Err(error));
    None
}
