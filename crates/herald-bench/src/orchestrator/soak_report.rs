//! What a soak run concludes from its minute samples: whether memory and file descriptors
//! stay flat after the first minutes (the slope of a least-squares line), whether any client
//! missed a push, and the per-minute table.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

/// The server as seen at the end of one minute.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Minute {
    pub minute: u32,
    pub rss_kib: u64,
    /// `herald_heap_allocated_bytes`: what the server holds of its heap (NaN when not reported).
    pub heap_bytes: f64,
    /// `herald_heap_resident_bytes`: what the allocator keeps in memory for it (NaN when not
    /// reported); RSS rising with this and not with `heap_bytes` is the allocator, not herald.
    pub allocator_bytes: f64,
    pub fds: u64,
    /// `herald_gateway_connections` and `herald_gateway_sessions`.
    pub connections: f64,
    pub sessions: f64,
    /// Queue gauges: frames in connection queues, devices with acks to record, pushes waiting
    /// for dispatch, receipts waiting for the report recorder.
    pub queued_frames: f64,
    pub pending_acks: f64,
    pub dispatch_queued: f64,
    pub receipts_queued: f64,
    /// Pushes answered with an id in this minute, and refused or failed.
    pub pushes: u64,
    pub push_errors: u64,
    /// Pushes received by clients in this minute, and their delivery latency p99.
    pub deliveries: u64,
    pub p99_ms: f64,
    /// Closes in this minute by reason (`churned` is the clients' own choice).
    pub closes: BTreeMap<String, u32>,
}

/// The least-squares line through `points`: (slope, intercept); `None` for fewer than two
/// distinct x.
pub fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    Some((slope, mean_y - slope * mean_x))
}

/// A quantity's trend over the fitted minutes.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    /// Per minute.
    pub slope: f64,
    pub mean: f64,
    /// slope × fitted minutes, as a fraction of the mean: how much the line rises over the window.
    pub drift: f64,
    pub flat: bool,
}

impl Trend {
    /// Flat when the fitted line moves less than `tolerance` (a fraction of the mean) over
    /// the window, or less than `floor` (in the series' unit).
    fn of(points: &[(f64, f64)], tolerance: f64, floor: f64) -> Option<Self> {
        let (slope, _) = fit(points)?;
        let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
        let span = points.last()?.0 - points.first()?.0;
        let drift = if mean > 0.0 { slope * span / mean } else { 0.0 };
        let flat = (slope * span).abs() < (tolerance * mean).max(floor);
        Some(Self { slope, mean, drift, flat })
    }
}

/// Every client's deliveries at the end of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deliveries {
    /// Pushes answered with an id, and the highest seq any client saw.
    pub pushes: u64,
    pub last_seq: u64,
    /// The client that is furthest behind.
    pub min_last_seq: u64,
    /// Seqs clients skipped over.
    pub gaps: u64,
    /// Pushes received again (at-least-once after an unacked reconnect; clients drop them).
    pub duplicates: u64,
}

impl Deliveries {
    /// Pushes some client never got: skipped seqs, and those after the last one the furthest
    /// client behind received.
    pub fn lost(&self) -> u64 {
        self.gaps + self.last_seq.saturating_sub(self.min_last_seq)
    }
}

/// The conclusion of a soak run.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub connections: u32,
    pub minutes: Vec<Minute>,
    /// First minute of the fit (minutes before it are warm-up).
    pub fit_from: u32,
    pub rss: Option<Trend>,
    pub fds: Option<Trend>,
    pub deliveries: Deliveries,
}

/// RSS may drift 5 % over the window (allocator noise); descriptors 1 %, or 2 descriptors:
/// a sample counts a churning client's socket or not depending on when it reconnects, which is
/// more than 1 % of a small run's descriptors.
const RSS_TOLERANCE: f64 = 0.05;
const FD_TOLERANCE: f64 = 0.01;
const FD_FLOOR: f64 = 2.0;

impl SoakReport {
    pub fn new(
        connections: u32,
        minutes: Vec<Minute>,
        fit_from: u32,
        deliveries: Deliveries,
    ) -> Self {
        let window: Vec<&Minute> = minutes.iter().filter(|m| m.minute >= fit_from).collect();
        let series = |value: fn(&Minute) -> u64| -> Vec<(f64, f64)> {
            window.iter().map(|m| (f64::from(m.minute), value(m) as f64)).collect()
        };
        let rss = Trend::of(&series(|m| m.rss_kib), RSS_TOLERANCE, 0.0);
        let fds = Trend::of(&series(|m| m.fds), FD_TOLERANCE, FD_FLOOR);
        Self { connections, minutes, fit_from, rss, fds, deliveries }
    }

    /// Whether memory and descriptors are flat and no push was lost.
    pub fn passed(&self) -> bool {
        let flat = |t: &Option<Trend>| t.as_ref().is_some_and(|t| t.flat);
        flat(&self.rss) && flat(&self.fds) && self.deliveries.lost() == 0
    }

    /// The Markdown summary and per-minute table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let trend = |t: &Option<Trend>, unit: &str| match t {
            Some(t) => format!(
                "{:+.1} {unit}/min (mean {:.0} {unit}, {:+.2} % over the window): {}",
                t.slope,
                t.mean,
                t.drift * 100.0,
                if t.flat { "flat" } else { "GROWING" }
            ),
            None => "too few minutes to fit".into(),
        };
        let last = self.minutes.last().map_or(0, |m| m.minute);
        let _ = writeln!(out, "soak: {} connections, {last} minutes", self.connections);
        let _ = writeln!(out, "RSS from minute {}: {}", self.fit_from, trend(&self.rss, "KiB"));
        let _ = writeln!(out, "fds from minute {}: {}", self.fit_from, trend(&self.fds, "fds"));
        let d = &self.deliveries;
        let _ = writeln!(
            out,
            "deliveries: {} pushes, last seq {}, furthest client behind at {}, {} skipped, {} lost, {} duplicates dropped: {}",
            d.pushes,
            d.last_seq,
            d.min_last_seq,
            d.gaps,
            d.lost(),
            d.duplicates,
            if d.lost() == 0 { "every client got every push once, in seq order" } else { "LOST PUSHES" }
        );
        let _ = writeln!(out, "verdict: {}", if self.passed() { "PASS" } else { "FAIL" });
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| min | RSS MiB | heap MiB | allocator MiB | fds | connections | sessions | queued frames | pending acks | dispatch queue | receipts queue | pushes (errors) | deliveries | p99 ms | closes |"
        );
        let _ = writeln!(
            out,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for m in &self.minutes {
            let closes: Vec<String> = m.closes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {:.1} | {} |",
                m.minute,
                m.rss_kib as f64 / 1024.0,
                m.heap_bytes / 1_048_576.0,
                m.allocator_bytes / 1_048_576.0,
                m.fds,
                m.connections,
                m.sessions,
                m.queued_frames,
                m.pending_acks,
                m.dispatch_queued,
                m.receipts_queued,
                m.pushes,
                m.push_errors,
                m.deliveries,
                m.p99_ms,
                closes.join(", ")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(minute: u32, rss_kib: u64, fds: u64) -> Minute {
        Minute { minute, rss_kib, fds, ..Minute::default() }
    }

    #[test]
    fn the_fit_finds_the_line() {
        let (slope, intercept) = fit(&[(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]).unwrap();
        assert!((slope - 2.0).abs() < 1e-9 && (intercept - 1.0).abs() < 1e-9);
        assert!(fit(&[(1.0, 1.0)]).is_none());
        assert!(fit(&[(2.0, 1.0), (2.0, 3.0)]).is_none());
    }

    #[test]
    fn warm_up_growth_is_ignored_and_later_growth_is_not() {
        let deliveries =
            Deliveries { pushes: 60, last_seq: 60, min_last_seq: 60, ..Deliveries::default() };
        // Memory grows in the first minutes, then stays within noise.
        let flat: Vec<Minute> = (1..=30)
            .map(|m| {
                minute(
                    m,
                    if m < 5 { 100_000 * u64::from(m) } else { 500_000 + u64::from(m % 2) * 900 },
                    18_050,
                )
            })
            .collect();
        let report = SoakReport::new(18_000, flat, 5, deliveries.clone());
        assert!(report.rss.as_ref().unwrap().flat, "{:?}", report.rss);
        assert!(report.passed(), "{}", report.table());

        // 2 MiB a minute over 25 minutes on 500 MiB (a tenth of it) is a leak.
        let leaking: Vec<Minute> =
            (1..=30).map(|m| minute(m, 500_000 + 2_048 * u64::from(m), 18_050)).collect();
        let report = SoakReport::new(18_000, leaking, 5, deliveries.clone());
        assert!(!report.rss.as_ref().unwrap().flat);
        assert!(!report.passed());
        assert!(report.table().contains("GROWING"));

        // Descriptors that grow by 20 a minute: connections not closed.
        let fd_leak: Vec<Minute> =
            (1..=30).map(|m| minute(m, 500_000, 18_000 + 20 * u64::from(m))).collect();
        assert!(!SoakReport::new(18_000, fd_leak, 5, deliveries.clone()).fds.unwrap().flat);
    }

    #[test]
    fn a_small_run_is_not_failed_by_one_descriptor_and_still_by_a_leak() {
        let deliveries =
            Deliveries { pushes: 60, last_seq: 60, min_last_seq: 60, ..Deliveries::default() };
        // 60 clients reconnecting often: one sample caught one more socket open (as CI saw).
        let one_more: Vec<Minute> = [84, 84, 84, 85, 85, 85]
            .iter()
            .zip(1..)
            .map(|(&fds, m)| minute(m, 49_000, fds))
            .collect();
        let report = SoakReport::new(60, one_more, 2, deliveries.clone());
        assert!(report.fds.as_ref().unwrap().flat, "{}", report.table());
        assert!(report.passed());
        // One descriptor a minute for 25 minutes is a leak, however small the run.
        let leaking: Vec<Minute> = (1..=30).map(|m| minute(m, 49_000, 84 + u64::from(m))).collect();
        assert!(!SoakReport::new(60, leaking, 5, deliveries).fds.unwrap().flat);
    }

    #[test]
    fn a_client_behind_or_a_skipped_seq_is_a_lost_push() {
        let all =
            Deliveries { pushes: 100, last_seq: 100, min_last_seq: 100, gaps: 0, duplicates: 3 };
        assert_eq!(all.lost(), 0, "duplicates are dropped by the client, not lost");
        let behind = Deliveries { min_last_seq: 98, ..all.clone() };
        assert_eq!(behind.lost(), 2);
        let skipped = Deliveries { gaps: 1, ..all };
        assert_eq!(skipped.lost(), 1);
        let minutes: Vec<Minute> = (1..=10).map(|m| minute(m, 1_000, 10)).collect();
        assert!(!SoakReport::new(10, minutes, 5, skipped).passed());
    }
}
