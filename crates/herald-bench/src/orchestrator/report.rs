//! What a run measured, and the summary table it prints (Markdown, ready for BENCHMARKS.md).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::workers::{ConnectSummary, Workers};
use super::FanoutArgs;
use crate::control::RoundStats;
use crate::hist::Histogram;

/// What a run is held to on this 2-core machine.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Targets {
    pub one_p99_ms: f64,
    pub deliveries_per_s: f64,
    pub idle_kib: f64,
    /// Memory per connection once a back-to-back phase is over: what bursts leave behind.
    pub after_burst_kib: f64,
    pub storm_s: f64,
    pub failover_s: f64,
}

impl Targets {
    /// 18,000 connections held by one herald process.
    const SINGLE: Targets = Targets {
        one_p99_ms: 250.0,
        deliveries_per_s: 200_000.0,
        idle_kib: 4.0,
        after_burst_kib: 6.0,
        storm_s: 2.0,
        failover_s: f64::NAN,
    };
    /// 100,000 connections over six nodes, one PostgreSQL and one NATS on the same machine.
    const CLUSTER: Targets = Targets {
        one_p99_ms: 1_000.0,
        deliveries_per_s: 250_000.0,
        idle_kib: 8.0,
        after_burst_kib: 8.0,
        storm_s: 10.0,
        failover_s: 5.0,
    };
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl From<&Histogram> for Latency {
    fn from(h: &Histogram) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.count(),
            p50_ms: ms(h.quantile(0.50)),
            p99_ms: ms(h.quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// CPU time the server (or broker) and the clients spent in a scenario: on a machine shared
/// with other work, this says what a delivery costs better than the elapsed time does.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuUse {
    pub server_ms: Option<u64>,
    pub clients_ms: u64,
    /// Per delivery, µs.
    pub server_us_per_delivery: Option<f64>,
    pub clients_us_per_delivery: f64,
    /// 1-minute load average when the scenario ended.
    pub load_average: Option<f64>,
}

impl CpuUse {
    pub fn start(server: &[u32], workers: &Workers) -> Self {
        Self {
            server_ms: crate::proc::cpu_ms_sum(server),
            clients_ms: workers.cpu_ms(),
            ..Self::default()
        }
    }

    pub fn finish(self, server: &[u32], workers: &Workers, deliveries: u64) -> Self {
        let server_ms = match (self.server_ms, crate::proc::cpu_ms_sum(server)) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        let clients_ms = workers.cpu_ms().saturating_sub(self.clients_ms);
        let per = |ms: u64| ms as f64 * 1000.0 / deliveries.max(1) as f64;
        Self {
            server_ms,
            clients_ms,
            server_us_per_delivery: server_ms.map(per),
            clients_us_per_delivery: per(clients_ms),
            load_average: crate::proc::load_average(),
        }
    }

    fn cell(&self) -> String {
        format!(
            "{} / {:.1} µs (load {})",
            self.server_us_per_delivery.map_or("—".into(), |us| format!("{us:.1}")),
            self.clients_us_per_delivery,
            self.load_average.map_or("—".into(), |l| format!("{l:.1}"))
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OneRun {
    pub members: u32,
    pub received: u64,
    pub latency: Latency,
    /// From just before the send until the last connection had the message.
    pub time_to_all_ms: Option<f64>,
    pub complete: bool,
    pub closes: BTreeMap<String, u32>,
    pub cpu: CpuUse,
    #[serde(skip)]
    histogram: Histogram,
}

impl OneRun {
    pub fn new(
        stats: RoundStats,
        time_to_all_us: Option<u64>,
        complete: bool,
        cpu: CpuUse,
    ) -> Self {
        Self {
            members: stats.members,
            received: stats.frames,
            latency: Latency::from(&stats.latency),
            time_to_all_ms: time_to_all_us.map(|us| us as f64 / 1000.0),
            complete,
            closes: stats.closes,
            cpu,
            histogram: stats.latency,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{}/{} received, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, all after {}",
            self.received,
            self.members,
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
            opt_ms(self.time_to_all_ms)
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Burst {
    pub members: u32,
    pub sent: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub frames: u64,
    pub elapsed_s: f64,
    pub deliveries_per_s: f64,
    pub latency: Latency,
    pub complete: bool,
    pub closes: BTreeMap<String, u32>,
    pub cpu: CpuUse,
}

impl Burst {
    pub fn new(
        stats: RoundStats,
        start_us: u64,
        sent: u64,
        failed: u64,
        first_error: Option<String>,
        complete: bool,
        cpu: CpuUse,
    ) -> Self {
        let elapsed_s = stats.last_recv_us.saturating_sub(start_us) as f64 / 1e6;
        let deliveries_per_s = if elapsed_s > 0.0 { stats.frames as f64 / elapsed_s } else { 0.0 };
        Self {
            members: stats.members,
            sent,
            failed,
            first_error,
            frames: stats.frames,
            elapsed_s,
            deliveries_per_s,
            latency: Latency::from(&stats.latency),
            complete,
            closes: stats.closes,
            cpu,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} messages ({} failed), {} deliveries in {:.2} s = {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
            self.sent,
            self.failed,
            self.frames,
            self.elapsed_s,
            self.deliveries_per_s,
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
            if self.complete { "" } else { " (INCOMPLETE)" }
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    pub disconnected: u32,
    pub reconnected: u32,
    pub connect_failed: u32,
    pub connect_errors: Vec<String>,
    /// Slowest worker: command to last welcome.
    pub connect_ms: u64,
    pub members: u32,
    pub stored: u32,
    /// From the start of the reconnect until the last client had all stored pushes.
    pub time_ms: Option<f64>,
    pub complete: bool,
    /// Clients that got more than the stored pushes, and pushes seen twice.
    pub over: u32,
    pub duplicates: u64,
    pub frames: u64,
    pub closes: BTreeMap<String, u32>,
    /// CPU per reconnected client.
    pub cpu: CpuUse,
}

impl Storm {
    pub fn new(
        disconnected: u32,
        connect: ConnectSummary,
        stats: RoundStats,
        time_us: Option<u64>,
        complete: bool,
        stored: u32,
        cpu: CpuUse,
    ) -> Self {
        Self {
            disconnected,
            reconnected: connect.ok,
            connect_failed: connect.failed,
            connect_errors: connect.errors,
            connect_ms: connect.elapsed_ms,
            members: stats.members,
            stored,
            time_ms: time_us.map(|us| us as f64 / 1000.0),
            complete,
            over: stats.over,
            duplicates: stats.duplicates,
            frames: stats.frames,
            closes: stats.closes,
            cpu,
        }
    }

    /// Every client got exactly the stored pushes.
    pub fn exact(&self) -> bool {
        self.complete
            && self.over == 0
            && self.duplicates == 0
            && self.frames == u64::from(self.members) * u64::from(self.stored)
    }

    pub fn summary(&self) -> String {
        format!(
            "{} reconnected ({} failed) in {} ms; {} clients, {} pushes received, all {} after {}; exactly {}: {}",
            self.reconnected,
            self.connect_failed,
            self.connect_ms,
            self.members,
            self.frames,
            self.stored,
            opt_ms(self.time_ms),
            self.stored,
            if self.exact() { "yes" } else { "NO" }
        )
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Idle {
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub connections: u32,
    pub kib_per_connection: f64,
    /// The peer broker's own heap count per connection, where it publishes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_kib_per_connection: Option<f64>,
    /// RSS again once the back-to-back phase is over and the connections idle again: what
    /// the bursts left behind (buffers that kept their size, allocator caches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_after_burst_kib: Option<u64>,
}

impl Idle {
    fn kib_per_connection_after_burst(&self) -> Option<f64> {
        let after = self.rss_after_burst_kib?;
        Some(after.saturating_sub(self.rss_before_kib) as f64 / f64::from(self.connections.max(1)))
    }
}

/// One system's figures: herald or the peer broker.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    pub connections: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_failed: Option<u32>,
    #[serde(skip)]
    pub connect: Option<ConnectSummary>,
    pub one: Vec<OneRun>,
    pub burst: Option<Burst>,
    pub idle: Option<Idle>,
    pub storm: Option<Storm>,
}

impl Side {
    pub fn set_idle(&mut self, before: Option<u64>, after: Option<u64>, connections: u32) {
        if let (Some(before), Some(after)) = (before, after) {
            let per = after.saturating_sub(before) as f64 / f64::from(connections.max(1));
            self.idle = Some(Idle {
                rss_before_kib: before,
                rss_after_kib: after,
                connections,
                kib_per_connection: per,
                heap_kib_per_connection: None,
                rss_after_burst_kib: None,
            });
        }
    }

    /// Records the RSS after the back-to-back phase beside the idle figures.
    pub fn set_after_burst(&mut self, rss: Option<u64>) {
        if let Some(idle) = &mut self.idle {
            idle.rss_after_burst_kib = rss;
        }
    }

    fn finish(&mut self) {
        if let Some(connect) = &self.connect {
            self.connect_ms = Some(connect.elapsed_ms);
            self.connect_failed = Some(connect.failed);
        }
    }

    /// The single pushes' latencies merged, and the slowest time until all had one.
    fn one_merged(&self) -> Option<(Latency, Option<f64>, bool)> {
        if self.one.is_empty() {
            return None;
        }
        let mut histogram = Histogram::default();
        for run in &self.one {
            histogram.merge(&run.histogram);
        }
        let all = self
            .one
            .iter()
            .map(|r| r.time_to_all_ms)
            .try_fold(0.0f64, |worst, t| t.map(|t| worst.max(t)));
        Some((Latency::from(&histogram), all, self.one.iter().all(|r| r.complete)))
    }
}

/// Bus traffic of a cluster: counters of every node added up, or per push and node.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BusTraffic {
    pub messages_sent: f64,
    pub bytes_sent: f64,
    pub messages_received: f64,
    pub bytes_received: f64,
}

impl BusTraffic {
    pub fn since(&self, before: &BusTraffic) -> BusTraffic {
        BusTraffic {
            messages_sent: self.messages_sent - before.messages_sent,
            bytes_sent: self.bytes_sent - before.bytes_sent,
            messages_received: self.messages_received - before.messages_received,
            bytes_received: self.bytes_received - before.bytes_received,
        }
    }

    pub fn per_push_per_node(&self, pushes: u64, nodes: usize) -> BusTraffic {
        let per = (pushes.max(1) * nodes.max(1) as u64) as f64;
        BusTraffic {
            messages_sent: self.messages_sent / per,
            bytes_sent: self.bytes_sent / per,
            messages_received: self.messages_received / per,
            bytes_received: self.bytes_received / per,
        }
    }
}

/// A node killed: how long until its clients, reconnected to the others, and everyone else
/// had the push sent right after the kill.
#[derive(Debug, Clone, Serialize)]
pub struct Failover {
    pub killed_node: usize,
    /// The node holding the app's dispatch lease afterwards.
    pub new_lease_holder: Option<usize>,
    /// Clients that were on the killed node.
    pub orphaned: u32,
    /// From the kill until the workers saw every orphaned connection drop.
    pub dropped_ms: u64,
    pub members: u32,
    pub time_ms: Option<f64>,
    pub complete: bool,
    pub over: u32,
    pub duplicates: u64,
    pub closes: BTreeMap<String, u32>,
}

impl Failover {
    pub fn new(
        killed_node: usize,
        new_lease_holder: Option<usize>,
        orphaned: u32,
        dropped_ms: u64,
        stats: RoundStats,
        time_us: Option<u64>,
        complete: bool,
    ) -> Self {
        Self {
            killed_node,
            new_lease_holder,
            orphaned,
            dropped_ms,
            members: stats.members,
            time_ms: time_us.map(|us| us as f64 / 1000.0),
            complete,
            over: stats.over,
            duplicates: stats.duplicates,
            closes: stats.closes,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "node {} (the lease holder) killed, {} clients on it dropped after {} ms; {} clients, all had the push after {} (lease now on {:?}); over {}, duplicates {}",
            self.killed_node,
            self.orphaned,
            self.dropped_ms,
            self.members,
            opt_ms(self.time_ms),
            self.new_lease_holder,
            self.over,
            self.duplicates
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub connections: u32,
    pub workers: u32,
    pub sources: u8,
    /// Nodes of the cluster (1: a single node).
    pub nodes: u32,
    pub targets: Targets,
    pub herald: Side,
    pub failover: Option<Failover>,
    /// Per dispatched push and node, during the back-to-back phase.
    pub bus: Option<BusTraffic>,
    pub mosquitto: Option<Side>,
    pub nchan: Option<Side>,
    /// Connections the peer held when it could not hold `connections`.
    pub notes: Vec<String>,
}

fn opt_ms(ms: Option<f64>) -> String {
    ms.map_or_else(|| "—".to_owned(), |ms| format!("{ms:.0} ms"))
}

fn ratio(herald: f64, peer: f64) -> String {
    if peer > 0.0 && herald.is_finite() {
        format!("{:.2}×", herald / peer)
    } else {
        "—".into()
    }
}

impl Results {
    pub fn new(args: &FanoutArgs) -> Self {
        let shares = args.shares(args.connections);
        Self {
            connections: args.connections,
            workers: shares.len() as u32,
            sources: args.sources,
            nodes: args.cluster.max(1),
            targets: if args.cluster > 0 { Targets::CLUSTER } else { Targets::SINGLE },
            herald: Side { connections: args.connections, ..Side::default() },
            failover: None,
            bus: None,
            mosquitto: None,
            nchan: None,
            notes: Vec::new(),
        }
    }

    /// The summary: one row per figure, herald beside its target and each peer with the
    /// ratio herald ÷ peer.
    pub fn table(&mut self) -> String {
        self.herald.finish();
        for peer in [&mut self.mosquitto, &mut self.nchan].into_iter().flatten() {
            peer.finish();
        }
        let h = &self.herald;
        let peers: Vec<(&str, &Side)> = [("mosquitto", &self.mosquitto), ("nchan", &self.nchan)]
            .into_iter()
            .filter_map(|(name, side)| Some((name, side.as_ref()?)))
            .collect();
        let t = self.targets;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{} connections, {} worker processes, {} source addresses, {} herald node(s)\n",
            self.connections, self.workers, self.sources, self.nodes
        );
        let mut header = String::from("| scenario | figure | herald | target |");
        let mut rule = String::from("|---|---|---:|---:|");
        for (name, side) in &peers {
            let _ =
                write!(header, " {name} ({} connections) | herald ÷ {name} |", side.connections);
            rule.push_str("---:|---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        // Each peer's cell and ratio cell for one figure.
        let cells = |f: &dyn Fn(&Side) -> (String, String)| -> Vec<(String, String)> {
            peers.iter().map(|(_, side)| f(side)).collect()
        };
        let none = |text: &str| cells(&|_| (text.to_owned(), String::new()));
        let mut row = |scenario: &str,
                       figure: &str,
                       herald: String,
                       target: &str,
                       peer: Vec<(String, String)>| {
            let _ = write!(out, "| {scenario} | {figure} | {herald} | {target} |");
            for (cell, r) in peer {
                let _ = write!(out, " {cell} | {r} |");
            }
            let _ = writeln!(out);
        };
        let dash = || ("—".to_owned(), String::new());
        if let Some(c) = &h.connect {
            let secs = |c: &ConnectSummary| {
                format!("{:.1} s ({})", c.elapsed_ms as f64 / 1000.0, c.failed)
            };
            row(
                "connect",
                "time to connect all (failed)",
                secs(c),
                "",
                cells(&|p| p.connect.as_ref().map_or_else(dash, |c| (secs(c), String::new()))),
            );
        }
        if let Some((lat, all, complete)) = h.one_merged() {
            let runs = h.one.len();
            let label = format!("one push to all (×{runs})");
            let flag = if complete { "" } else { " INCOMPLETE" };
            let triple =
                |l: &Latency| format!("{:.1} / {:.1} / {:.1} ms", l.p50_ms, l.p99_ms, l.max_ms);
            row(
                &label,
                "latency p50 / p99 / max",
                format!("{}{flag}", triple(&lat)),
                &format!("p99 ≤ {:.0} ms", t.one_p99_ms),
                cells(&|p| {
                    p.one_merged().map_or_else(dash, |(l, _, _)| {
                        (triple(&l), format!("p99 {}", ratio(lat.p99_ms, l.p99_ms)))
                    })
                }),
            );
            let cpu = |side: &Side| side.one.last().map_or("—".into(), |r| r.cpu.cell());
            row(
                &label,
                "CPU per delivery: server / clients (last run)",
                cpu(h),
                "",
                cells(&|p| (cpu(p), String::new())),
            );
            row(
                &label,
                "time until all had it (worst run)",
                opt_ms(all),
                "",
                cells(&|p| {
                    p.one_merged().map_or_else(dash, |(_, t, _)| (opt_ms(t), String::new()))
                }),
            );
        }
        if let Some(b) = &h.burst {
            let flag = if b.complete { "" } else { " INCOMPLETE" };
            let of = |p: &Side, f: &dyn Fn(&Burst) -> (String, String)| {
                p.burst.as_ref().map_or_else(dash, f)
            };
            row(
                "back to back",
                "deliveries/s",
                format!("{:.0}{flag}", b.deliveries_per_s),
                &format!("≥ {:.0}", t.deliveries_per_s),
                cells(&|p| {
                    of(p, &|pb| {
                        let flag = if pb.complete { "" } else { " INCOMPLETE" };
                        (
                            format!("{:.0}{flag}", pb.deliveries_per_s),
                            ratio(b.deliveries_per_s, pb.deliveries_per_s),
                        )
                    })
                }),
            );
            let triple =
                |l: &Latency| format!("{:.1} / {:.1} / {:.1} ms", l.p50_ms, l.p99_ms, l.max_ms);
            row(
                "back to back",
                "latency p50 / p99 / max",
                triple(&b.latency),
                "",
                cells(&|p| {
                    of(p, &|pb| {
                        let r = format!("p99 {}", ratio(b.latency.p99_ms, pb.latency.p99_ms));
                        (triple(&pb.latency), r)
                    })
                }),
            );
            row(
                "back to back",
                "CPU per delivery: server / clients",
                b.cpu.cell(),
                "",
                cells(&|p| of(p, &|pb| (pb.cpu.cell(), String::new()))),
            );
            let counts = |b: &Burst| format!("{} ({}) / {}", b.sent, b.failed, b.frames);
            row(
                "back to back",
                "messages sent (failed) / deliveries",
                counts(b),
                "",
                cells(&|p| of(p, &|pb| (counts(pb), String::new()))),
            );
        }
        if let Some(i) = &h.idle {
            let of = |p: &Side, f: &dyn Fn(&Idle) -> (String, String)| {
                p.idle.as_ref().map_or_else(dash, f)
            };
            row(
                "idle",
                "server memory per connection (RSS Δ / N)",
                format!("{:.2} KiB", i.kib_per_connection),
                &format!("≤ {:.0} KiB", t.idle_kib),
                cells(&|p| {
                    of(p, &|pi| {
                        let r = ratio(i.kib_per_connection, pi.kib_per_connection);
                        (format!("{:.2} KiB", pi.kib_per_connection), r)
                    })
                }),
            );
            if peers
                .iter()
                .any(|(_, p)| p.idle.as_ref().is_some_and(|i| i.heap_kib_per_connection.is_some()))
            {
                row(
                    "idle",
                    "broker heap per connection ($SYS/broker/heap/current Δ / N)",
                    "—".into(),
                    "",
                    cells(&|p| {
                        p.idle
                            .as_ref()
                            .and_then(|pi| pi.heap_kib_per_connection)
                            .map_or_else(dash, |heap| {
                                (format!("{heap:.2} KiB"), ratio(i.kib_per_connection, heap))
                            })
                    }),
                );
            }
            if let Some(per) = i.kib_per_connection_after_burst() {
                row(
                    "idle",
                    "the same after the back-to-back phase (RSS Δ / N)",
                    format!("{per:.2} KiB"),
                    &format!("≤ {:.0} KiB", t.after_burst_kib),
                    cells(&|p| {
                        p.idle
                            .as_ref()
                            .and_then(Idle::kib_per_connection_after_burst)
                            .map_or_else(dash, |pp| (format!("{pp:.2} KiB"), ratio(per, pp)))
                    }),
                );
            }
            let mib = |i: &Idle| {
                format!(
                    "{:.1} → {:.1} MiB",
                    i.rss_before_kib as f64 / 1024.0,
                    i.rss_after_kib as f64 / 1024.0
                )
            };
            row(
                "idle",
                "RSS before → after",
                mib(i),
                "",
                cells(&|p| of(p, &|pi| (mib(pi), String::new()))),
            );
        }
        if let Some(s) = &h.storm {
            let time = if s.connect_failed == 0 {
                opt_ms(s.time_ms)
            } else {
                format!(
                    "MISSED: {} of {} back within the connect time-out; they had all {} after {}",
                    s.reconnected,
                    s.disconnected,
                    s.stored,
                    opt_ms(s.time_ms)
                )
            };
            row(
                "reconnect storm",
                &format!(
                    "all {} reconnect at once; time until each has its {} stored pushes",
                    s.disconnected, s.stored
                ),
                time,
                &format!("≤ {:.0} ms", t.storm_s * 1000.0),
                none("n/a"),
            );
            row(
                "reconnect storm",
                "CPU per reconnect (handshakes, login, 3 pushes): server / clients",
                s.cpu.cell(),
                "",
                none("n/a"),
            );
            row(
                "reconnect storm",
                "exactly the stored pushes (over / duplicates / failed)",
                format!(
                    "{} ({} / {} / {})",
                    if s.exact() { "yes" } else { "NO" },
                    s.over,
                    s.duplicates,
                    s.connect_failed
                ),
                "yes",
                none("n/a"),
            );
        }
        if let Some(f) = &self.failover {
            row(
                "node killed",
                &format!(
                    "lease holder node-{} killed ({} clients on it); time until all {} clients have the push sent after the kill",
                    f.killed_node, f.orphaned, f.members
                ),
                format!("{}{}", opt_ms(f.time_ms), if f.complete { "" } else { " INCOMPLETE" }),
                &format!("≤ {:.0} ms", t.failover_s * 1000.0),
                none("n/a"),
            );
            row(
                "node killed",
                "its connections dropped after / over / duplicates",
                format!("{} ms / {} / {}", f.dropped_ms, f.over, f.duplicates),
                "",
                none("n/a"),
            );
        }
        if let Some(b) = &self.bus {
            row(
                "bus cost",
                "per push and node: messages sent / received, bytes sent / received",
                format!(
                    "{:.2} / {:.2}, {:.0} / {:.0} B",
                    b.messages_sent, b.messages_received, b.bytes_sent, b.bytes_received
                ),
                "",
                none("n/a"),
            );
        }
        let mut closes: BTreeMap<String, u32> = BTreeMap::new();
        for run in &h.one {
            merge(&mut closes, &run.closes);
        }
        if let Some(b) = &h.burst {
            merge(&mut closes, &b.closes);
        }
        if let Some(s) = &h.storm {
            merge(&mut closes, &s.closes);
        }
        if !closes.is_empty() {
            let _ = writeln!(out, "\nherald connections lost during measurements: {closes:?}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "\n{note}");
        }
        out
    }
}

fn merge(into: &mut BTreeMap<String, u32>, from: &BTreeMap<String, u32>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}
