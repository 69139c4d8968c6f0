//! Logs and metrics.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Upper bounds (seconds) of every latency histogram: from a store write to a push fanned
/// out to millions.
const LATENCY_BUCKETS: [f64; 15] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Installs the log subscriber (to stderr). Safe to call more than once; the first call wins.
pub fn init_logs(settings: &Settings) {
    let filter = EnvFilter::try_new(&settings.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The process-wide Prometheus recorder; there can only be one per process.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Buckets rather than quantiles: histograms of several nodes add up, quantiles
            // do not (`histogram_quantile(0.99, sum by (le) (rate(..._bucket[5m])))`).
            let recorder = PrometheusBuilder::new()
                .set_buckets(&LATENCY_BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            describe_metrics();
            handle
        })
        .clone()
}

/// The metrics without labels, with their help text; each is exported from the start (at 0),
/// so that a dashboard's `rate()` has a series before the first event.
const COUNTERS: [(&str, &str); 21] = [
    ("herald_gateway_connections_total", "WebSocket connections accepted"),
    ("herald_gateway_acks_total", "ack frames received from clients"),
    ("herald_gateway_ack_failures_total", "acks that could not be recorded"),
    ("herald_gateway_ack_seqs_dropped_total", "acked seqs above a gap dropped"),
    ("herald_gateway_opened_total", "opened frames received from clients"),
    ("herald_gateway_frames_queued_total", "frames queued for client sockets"),
    ("herald_gateway_frames_sent_total", "frames written to client sockets"),
    ("herald_pushes_dispatched_total", "pushes dispatched (counted by the dispatching node)"),
    ("herald_push_frames_sent_total", "push frames handed to online sessions at fan-out"),
    ("herald_pushes_opened_total", "opens counted in reports"),
    ("herald_inbox_content_reads_total", "push contents read back from the store"),
    ("herald_dispatch_store_retries_total", "dispatch steps repeated while the store was away"),
    ("herald_webhook_failures_total", "webhook posts not accepted (retried later or given up)"),
    ("herald_cluster_gap_reads_total", "pushes read from the store after missed bus events"),
    ("herald_cluster_report_timeouts_total", "fan-outs without every node's report in time"),
    ("herald_cluster_publish_retries_total", "bus publishes repeated while NATS was away"),
    ("herald_cluster_leases_taken_total", "dispatch leases taken by this node"),
    ("herald_bus_messages_sent_total", "messages this node sent on NATS"),
    ("herald_bus_messages_received_total", "messages this node received from NATS"),
    ("herald_bus_sent_bytes_total", "bytes this node sent on NATS"),
    ("herald_bus_received_bytes_total", "bytes this node received from NATS"),
];

const GAUGES: [(&str, &str); 12] = [
    ("herald_heap_allocated_bytes", "bytes of heap the server holds (jemalloc's count)"),
    ("herald_heap_resident_bytes", "bytes of memory the allocator keeps from the system"),
    ("herald_gateway_sessions", "identified client sessions on this node"),
    ("herald_gateway_connections", "open client connections, identified or not"),
    ("herald_gateway_unidentified", "client connections that have not sent their hello yet"),
    ("herald_gateway_queued_frames", "frames waiting in the outgoing queues of all connections"),
    ("herald_gateway_pending_acks", "devices whose acks wait to be recorded"),
    ("herald_dispatch_queued_pushes", "pushes waiting for their app's dispatch worker"),
    ("herald_receipts_queued", "acks, deliveries and opens waiting for the report recorder"),
    ("herald_cluster_nodes", "nodes alive at the last heartbeat"),
    ("herald_cluster_leases", "dispatch leases this node holds"),
    ("herald_cluster_bus_lag_events", "cluster events this node has yet to apply"),
];

fn describe_metrics() {
    for (name, help) in COUNTERS {
        metrics::describe_counter!(name, help);
        metrics::counter!(name).increment(0);
    }
    for (name, help) in GAUGES {
        metrics::describe_gauge!(name, help);
        metrics::gauge!(name).increment(0.0);
    }
    metrics::describe_counter!(
        "herald_http_requests_total",
        "HTTP requests by method, route, status"
    );
    metrics::describe_counter!(
        "herald_gateway_disconnects_total",
        "client connections ended, by reason"
    );
    metrics::describe_counter!(
        "herald_gateway_refused_total",
        "client connections refused before the upgrade, by limit (per_ip, unidentified)"
    );
    metrics::describe_counter!(
        "herald_vendor_notifications_total",
        "APNs / FCM / Web Push notifications by vendor and outcome (sent, unregistered, bad_token, failed)"
    );
    let seconds = metrics::Unit::Seconds;
    metrics::describe_histogram!(
        "herald_http_request_duration_seconds",
        seconds,
        "HTTP request time"
    );
    metrics::describe_histogram!(
        "herald_push_fanout_seconds",
        seconds,
        "from a push being due to every online session having it queued"
    );
    metrics::describe_histogram!(
        "herald_store_operation_seconds",
        seconds,
        "store operations on hot paths, by operation"
    );
}

/// Middleware: counts requests and their durations by route template and status.
pub async fn track_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let labels =
        [("method", method), ("route", route), ("status", response.status().as_u16().to_string())];
    metrics::counter!("herald_http_requests_total", &labels).increment(1);
    metrics::histogram!("herald_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Reads the allocator's counts into the heap gauges: a growing RSS with a flat allocated count
/// is the allocator keeping memory, a growing allocated count is the server holding more.
pub fn record_heap() {
    #[cfg(all(target_os = "linux", not(target_env = "msvc")))]
    {
        // The counts are a snapshot taken when the epoch advances.
        if tikv_jemalloc_ctl::epoch::advance().is_err() {
            return;
        }
        if let Ok(bytes) = tikv_jemalloc_ctl::stats::allocated::read() {
            metrics::gauge!("herald_heap_allocated_bytes").set(bytes as f64);
        }
        if let Ok(bytes) = tikv_jemalloc_ctl::stats::resident::read() {
            metrics::gauge!("herald_heap_resident_bytes").set(bytes as f64);
        }
    }
}
