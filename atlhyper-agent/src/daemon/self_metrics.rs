//! The daemon's own counters and their exposition on `/metrics` (with `/health`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use atlhyper_model::CollectorStatus;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::Mutex;

use crate::stats::family;

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
    parts: Mutex<Vec<CollectorStatus>>,
}

impl DaemonStats {
    /// Records how each part of the last collection went.
    pub(super) fn set_parts(&self, parts: Vec<CollectorStatus>) {
        *self.parts.lock() = parts;
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let _ = writeln!(
            out,
            "# HELP atlhyper_metrics_part_duration_seconds Time the last collection spent per part."
        );
        let _ = writeln!(out, "# TYPE atlhyper_metrics_part_duration_seconds gauge");
        let parts = self.parts.lock().clone();
        for p in &parts {
            let _ = writeln!(
                out,
                "atlhyper_metrics_part_duration_seconds{{part=\"{}\"}} {}",
                p.name.escape_default(),
                p.duration_us as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "# HELP atlhyper_metrics_part_ok Whether the part worked in the last collection."
        );
        let _ = writeln!(out, "# TYPE atlhyper_metrics_part_ok gauge");
        for p in &parts {
            let _ = writeln!(
                out,
                "atlhyper_metrics_part_ok{{part=\"{}\"}} {}",
                p.name.escape_default(),
                u8::from(p.ok)
            );
        }
        family(
            &mut out,
            "atlhyper_metrics_cycle_duration_seconds",
            "gauge",
            "Wall time of the last collection.",
            get(&self.last_cycle_us) as f64 / 1e6,
        );
        for (name, kind, help, v) in [
            (
                "atlhyper_metrics_cycles_total",
                "counter",
                "Collections run.",
                &self.cycles,
            ),
            (
                "atlhyper_metrics_pushes_total",
                "counter",
                "Snapshots the agent accepted.",
                &self.pushes,
            ),
            (
                "atlhyper_metrics_push_failures_total",
                "counter",
                "Pushes that failed and were retried.",
                &self.push_failures,
            ),
            (
                "atlhyper_metrics_rejected_total",
                "counter",
                "Snapshots the agent refused for good.",
                &self.rejected,
            ),
            (
                "atlhyper_metrics_dropped_points_total",
                "counter",
                "Snapshots dropped from the full backfill queue.",
                &self.dropped,
            ),
            (
                "atlhyper_metrics_queue_length",
                "gauge",
                "Snapshots waiting for delivery.",
                &self.queued,
            ),
        ] {
            family(&mut out, name, kind, help, get(v) as f64);
        }
        out
    }
}

async fn daemon_metrics(State(stats): State<Arc<DaemonStats>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        stats.render(),
    )
}

/// The daemon's own routes: `GET /metrics`, `GET /health`.
pub fn daemon_router(stats: Arc<DaemonStats>) -> Router {
    Router::new()
        .route("/metrics", get(daemon_metrics))
        .route(
            "/health",
            get(|| async { axum::Json(atlhyper_model::StatusBody::ok()) }),
        )
        .with_state(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

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
