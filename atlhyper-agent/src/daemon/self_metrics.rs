//! The daemon's own counters and their exposition on `/metrics` (with `/health`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use atlhyper_model::{CollectorStatus, Exposition, ExpositionFormat, MetricKind};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;

use super::node_exposition::NodeSource;
use atlhyper_http::text_response;

/// The daemon's own counters, served on `/metrics` when `metrics_listen` is set.
#[derive(Debug, Default)]
pub struct DaemonStats {
    /// Collections run.
    pub cycles: AtomicU64,
    /// Wall time of the last collection, microseconds.
    pub last_cycle_us: AtomicU64,
    /// Snapshots the agent accepted.
    pub pushes: AtomicU64,
    /// Pushes that failed and will be retried.
    pub push_failures: AtomicU64,
    /// Snapshots the agent refused for good (4xx other than 401/403/408/429); not retried.
    pub rejected: AtomicU64,
    /// Snapshots dropped from the full backfill queue.
    pub dropped: AtomicU64,
    /// Snapshots waiting to be delivered.
    pub queued: AtomicU64,
    /// Whether the last delivery attempt succeeded (false until one did).
    pub last_push_ok: AtomicBool,
    /// The backlog's capacity (`METRICS_QUEUE_CAPACITY`); 0 for a pull-only daemon, which never
    /// pushes.
    pub queue_capacity: AtomicU64,
    parts: Mutex<Vec<CollectorStatus>>,
}

impl DaemonStats {
    /// Readiness, for the probe: a pushing daemon is ready while its last push succeeded or its
    /// backlog is under half the queue (a short agent outage, nothing dropped); a pull-only
    /// daemon always is. Otherwise why not.
    pub fn readiness(&self) -> Result<(), String> {
        let capacity = self.queue_capacity.load(Ordering::Relaxed);
        let queued = self.queued.load(Ordering::Relaxed);
        if capacity == 0 || self.last_push_ok.load(Ordering::Relaxed) || queued * 2 < capacity {
            return Ok(());
        }
        Err(format!(
            "pushes to the agent are failing and {queued} of {capacity} snapshots are queued"
        ))
    }

    /// Records how each part of the last collection went.
    pub(super) fn set_parts(&self, parts: Vec<CollectorStatus>) {
        *self.parts.lock() = parts;
    }

    /// Prometheus text exposition (format 0.0.4) of the daemon's own figures.
    pub fn render(&self) -> String {
        let mut out = Exposition::new(ExpositionFormat::Text);
        self.write(&mut out);
        out.finish()
    }

    /// Writes the daemon's own figures into `out`.
    pub fn write(&self, out: &mut Exposition) {
        use MetricKind::{Counter, Gauge};
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        let parts = self.parts.lock().clone();
        let mut family = out.family(
            "atlhyper_metrics_part_duration_seconds",
            Gauge,
            "Time the last collection spent per part.",
        );
        for p in &parts {
            family.sample(&[("part", &p.name)], p.duration_us as f64 / 1e6);
        }
        let mut family = out.family(
            "atlhyper_metrics_part_ok",
            Gauge,
            "Whether the part worked in the last collection.",
        );
        for p in &parts {
            family.sample(&[("part", &p.name)], f64::from(u8::from(p.ok)));
        }
        out.family(
            "atlhyper_metrics_cycle_duration_seconds",
            Gauge,
            "Wall time of the last collection.",
        )
        .sample(&[], get(&self.last_cycle_us) / 1e6);
        for (name, kind, help, v) in [
            (
                "atlhyper_metrics_cycles_total",
                Counter,
                "Collections run.",
                &self.cycles,
            ),
            (
                "atlhyper_metrics_pushes_total",
                Counter,
                "Snapshots the agent accepted.",
                &self.pushes,
            ),
            (
                "atlhyper_metrics_push_failures_total",
                Counter,
                "Pushes that failed and were retried.",
                &self.push_failures,
            ),
            (
                "atlhyper_metrics_rejected_total",
                Counter,
                "Snapshots the agent refused for good.",
                &self.rejected,
            ),
            (
                "atlhyper_metrics_dropped_points_total",
                Counter,
                "Snapshots dropped from the full backfill queue.",
                &self.dropped,
            ),
            (
                "atlhyper_metrics_queue_length",
                Gauge,
                "Snapshots waiting for delivery.",
                &self.queued,
            ),
        ] {
            out.family(name, kind, help).sample(&[], get(v));
        }
    }
}

/// What the daemon's `/metrics` reads: its own counters, and the node's figures when a
/// collector is attached.
#[derive(Debug, Clone)]
struct Scrape {
    stats: Arc<DaemonStats>,
    node: Option<Arc<NodeSource>>,
}

async fn daemon_metrics(State(scrape): State<Scrape>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = ExpositionFormat::negotiate(accept);
    // Writing the node families may collect first (blocking file reads).
    let job = tokio::task::spawn_blocking(move || {
        let mut out = Exposition::with_capacity(format, 64 * 1024);
        if let Some(node) = &scrape.node {
            node.write(&mut out);
        }
        scrape.stats.write(&mut out);
        out.finish()
    });
    match job.await {
        // Prometheus always asks for gzip: a node's scrape shrinks to about a sixth.
        Ok(text) => text_response(&headers, format.content_type(), text),
        Err(e) => {
            tracing::error!(error = %e, "rendering /metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(atlhyper_model::ErrorBody::new("rendering /metrics failed")),
            )
                .into_response()
        }
    }
}

/// `GET /ready`: 200 while [`DaemonStats::readiness`] holds, else 503 with the reason.
async fn ready(State(scrape): State<Scrape>) -> Response {
    match scrape.stats.readiness() {
        Ok(()) => axum::Json(atlhyper_model::StatusBody::ok()).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(atlhyper_model::ErrorBody::new(why)),
        )
            .into_response(),
    }
}

/// The daemon's own routes: `GET /metrics` (its own counters), `GET /health` (liveness),
/// `GET /ready` (readiness: pushes succeed or the backlog is small).
pub fn daemon_router(stats: Arc<DaemonStats>) -> Router {
    node_router(stats, None)
}

/// The daemon's routes with the node's figures on `/metrics` when `node` is given.
pub fn node_router(stats: Arc<DaemonStats>, node: Option<Arc<NodeSource>>) -> Router {
    Router::new()
        .route("/metrics", get(daemon_metrics))
        .route(
            "/health",
            get(|| async { axum::Json(atlhyper_model::StatusBody::ok()) }),
        )
        .route("/ready", get(ready))
        .with_state(Scrape { stats, node })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_while_pushes_succeed_or_the_backlog_is_small() {
        let stats = DaemonStats::default();
        assert!(stats.readiness().is_ok(), "pull-only");
        stats.queue_capacity.store(720, Ordering::Relaxed);
        stats.queued.store(359, Ordering::Relaxed);
        assert!(stats.readiness().is_ok(), "a short outage");
        stats.queued.store(360, Ordering::Relaxed);
        let why = stats.readiness().unwrap_err();
        assert!(why.contains("360 of 720"), "{why}");
        stats.last_push_ok.store(true, Ordering::Relaxed);
        assert!(stats.readiness().is_ok(), "the last push succeeded");
    }

    #[test]
    fn render_has_a_sample_per_part_with_the_label_escaped() {
        let stats = DaemonStats::default();
        stats.set_parts(vec![
            CollectorStatus {
                name: "cpu".into(),
                ok: true,
                duration_us: 1500,
                error: None,
            },
            CollectorStatus {
                name: "odd\"part".into(),
                ok: false,
                duration_us: 0,
                error: Some("unreadable".into()),
            },
        ]);
        stats.queued.store(3, Ordering::Relaxed);
        let text = stats.render();
        for line in [
            "atlhyper_metrics_part_duration_seconds{part=\"cpu\"} 0.0015",
            "atlhyper_metrics_part_ok{part=\"cpu\"} 1",
            "atlhyper_metrics_part_ok{part=\"odd\\\"part\"} 0",
            "atlhyper_metrics_queue_length 3",
            "atlhyper_metrics_pushes_total 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
    }
}
