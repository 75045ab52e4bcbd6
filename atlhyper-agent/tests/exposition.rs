//! The agent's and the daemon's own `/metrics` pass `promtool check metrics` (Debian's promtool;
//! skipped with a message when missing, a failure when `CI=true`), and answer OpenMetrics when
//! asked.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use atlhyper_agent::{
    DaemonStats, NodeTable, NodeTableConfig, ReceiverState, daemon_router, receiver_router,
};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

const PROMTOOL: &str = "/usr/bin/promtool";

fn promtool_here() -> bool {
    if std::path::Path::new(PROMTOOL).exists() {
        return true;
    }
    let reason = "/usr/bin/promtool missing (apt-get install -y prometheus)";
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true and {reason}"
    );
    eprintln!("skipped: {reason}");
    false
}

async fn get(app: Router, accept: Option<&str>) -> (String, String) {
    let mut req = Request::get("/metrics");
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let response = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (content_type, String::from_utf8(body.to_vec()).unwrap())
}

fn promtool(text: &str) {
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
        promtool(&text);
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
