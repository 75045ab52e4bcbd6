//! The agent's and the daemon's own `/metrics` pass `promtool check metrics` (Debian's promtool;
//! skipped with a message when missing, a failure when `CI=true`), answer OpenMetrics when asked,
//! and gzip when the scraper accepts it (Prometheus always does).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atlhyper_agent::{
    DaemonStats, NodeSource, NodeTable, NodeTableConfig, ReceiverState, daemon_router, node_router,
    receiver_router,
};
use atlhyper_collect::{CollectConfig, Collector, HostRoot};
use atlhyper_http::gunzip_limited;
use atlhyper_testkit::{promtool_check_metrics, promtool_here};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// GET /metrics with the request headers given; the answer's headers and body as sent.
async fn scrape(app: Router, request_headers: &[(&str, &str)]) -> (HeaderMap, Vec<u8>) {
    let mut req = Request::get("/metrics");
    for (name, value) in request_headers {
        req = req.header(*name, *value);
    }
    let response = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (headers, body.to_vec())
}

async fn get(app: Router, accept: Option<&str>) -> (String, String) {
    let accept: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
    let (headers, body) = scrape(app, &accept).await;
    let content_type = headers["content-type"].to_str().unwrap().to_owned();
    (content_type, String::from_utf8(body).unwrap())
}

fn apps() -> [Router; 2] {
    let table = Arc::new(NodeTable::new(NodeTableConfig::default()));
    [
        receiver_router(ReceiverState::new(table)),
        daemon_router(Arc::new(DaemonStats::default())),
    ]
}

#[tokio::test]
async fn agent_and_daemon_expositions_pass_promtool() {
    if !promtool_here() {
        return;
    }
    for app in apps() {
        let (content_type, text) = get(app, None).await;
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        if let Err(findings) = promtool_check_metrics(&text) {
            panic!("promtool check metrics: {findings:#?}\n{text}");
        }
    }
}

#[tokio::test]
async fn open_metrics_when_asked() {
    for app in apps() {
        let (content_type, text) =
            get(app, Some("application/openmetrics-text;version=1.0.0")).await;
        assert_eq!(
            content_type,
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert!(text.ends_with("# EOF\n"));
        // Counter families are named without _total, their samples with it.
        let counter = text
            .lines()
            .find(|l| l.starts_with("# TYPE ") && l.ends_with(" counter"))
            .expect("a counter family");
        assert!(!counter.contains("_total "), "{counter}");
    }
}

/// The daemon's `/metrics` with the node's figures from a collector over `root`; a sample is
/// reused for an hour, so every scrape of one test reads the same sample.
fn node_daemon(root: HostRoot) -> Router {
    let collector = Collector::new(root, CollectConfig::from_host());
    let node = NodeSource::new(collector, Duration::from_secs(3600));
    node_router(Arc::new(DaemonStats::default()), Some(Arc::new(node)))
}

/// Metric family names declared in an exposition, in order.
fn families(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect()
}

#[tokio::test]
async fn the_daemon_scrape_is_gzip_only_when_asked_with_the_same_families() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../atlhyper-collect/tests/fixtures/vm/t0");
    let hosts = [
        ("fixture vm/t0", HostRoot::under(&fixture)),
        ("this host", HostRoot::new("/proc", "/sys", "/")),
    ];
    for (host, root) in hosts {
        let app = node_daemon(root);
        let (headers, plain) = scrape(app.clone(), &[]).await;
        assert!(headers.get("content-encoding").is_none(), "{host}");
        assert_eq!(headers["vary"], "accept-encoding", "{host}");
        let plain = String::from_utf8(plain).unwrap();
        let names = families(&plain);
        assert!(
            names.contains(&"node_cpu_seconds_total"),
            "{host}: {names:?}"
        );
        assert!(names.contains(&"atlhyper_metrics_cycles_total"), "{host}");

        // What Prometheus sends.
        let prometheus = "gzip";
        let (headers, zipped) = scrape(app.clone(), &[("accept-encoding", prometheus)]).await;
        assert_eq!(headers["content-encoding"], "gzip", "{host}");
        assert_eq!(headers["vary"], "accept-encoding", "{host}");
        let unzipped = gunzip_limited(&zipped, 64 << 20).expect("a gzip body");
        let unzipped = String::from_utf8(unzipped).unwrap();
        assert_eq!(families(&unzipped), names, "{host}");
        assert_eq!(unzipped, plain, "{host}: the same sample, byte for byte");

        for refused in ["identity", "gzip;q=0", "br"] {
            let (headers, body) = scrape(app.clone(), &[("accept-encoding", refused)]).await;
            assert!(
                headers.get("content-encoding").is_none(),
                "{host}: {refused}"
            );
            assert_eq!(body, plain.as_bytes(), "{host}: {refused}");
        }
        println!(
            "{host}: /metrics {} families, {} bytes plain, {} bytes gzip ({:.1} %)",
            names.len(),
            plain.len(),
            zipped.len(),
            zipped.len() as f64 * 100.0 / plain.len() as f64
        );
    }
}
