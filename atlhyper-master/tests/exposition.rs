//! The master's `/metrics` as the fleet view for federation (#15 item 4): every figure the JSON
//! API has, counters where the source is a counter, OpenMetrics when asked, gzip when accepted,
//! `?cluster=` to split a fleet, and `promtool check metrics` clean (Debian's promtool; skipped
//! with a message when missing, a failure when `CI=true`).

use std::io::Read;
use std::sync::Arc;

use atlhyper_master::{Master, MasterConfig};
use atlhyper_model::{ClusterSnapshot, PsiMetrics};
use atlhyper_store::MemoryStore;
use atlhyper_testkit::{promtool_check_metrics, promtool_here};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use tower::ServiceExt;

fn setup() -> Master {
    let store = Arc::new(MemoryStore::new());
    Master::new(MasterConfig::default(), store.clone(), store.clone(), store)
}

async fn send(master: &Master, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let response = master.router().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

async fn push(master: &Master, snapshot: &ClusterSnapshot) {
    let req = Request::post("/agent/snapshot")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("x-cluster-id", &snapshot.cluster_id)
        .body(Body::from(atlhyper_testkit::gzip(
            &serde_json::to_vec(snapshot).unwrap(),
        )))
        .unwrap();
    let (status, _, body) = send(master, req).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

async fn metrics(master: &Master, path: &str, headers: &[(&str, &str)]) -> (HeaderMap, String) {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let (status, headers, body) = send(master, req.body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200, "{path}");
    let text = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut out)
            .unwrap();
        out
    } else {
        String::from_utf8(body.to_vec()).unwrap()
    };
    (headers, text)
}

/// A fleet of two clusters whose nodes carry PSI and per-interface errors.
async fn fleet() -> Master {
    let m = setup();
    for (id, nodes) in [("c1", 2), ("c2", 1)] {
        let mut snapshot = atlhyper_testkit::cluster(id, nodes, 1, Utc::now());
        for node in snapshot.node_metrics.values_mut() {
            node.psi = Some(PsiMetrics {
                cpu_some: 1.5,
                memory_some: 0.25,
                memory_full: 0.125,
                io_some: 3.0,
                io_full: 2.0,
            });
            for net in &mut node.networks {
                net.rx_errors = 7;
                net.tx_dropped = 3;
            }
        }
        push(&m, &snapshot).await;
    }
    m
}

/// The value of the sample line `series` (name and labels exactly as written).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn every_api_figure_is_exported_with_counters_as_counters() {
    let m = fleet().await;
    let (headers, text) = metrics(&m, "/metrics", &[]).await;
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let node = "cluster=\"c1\",node=\"node-000\"";
    let root = format!("{node},device=\"sda1\",mountpoint=\"/\"");
    let snapshot = atlhyper_testkit::cluster("c1", 2, 1, Utc::now());
    let n0 = &snapshot.node_metrics["node-000"];
    let disk = n0.disks.iter().find(|d| d.mount_point == "/").unwrap();
    assert_eq!(
        disk.device, "sda1",
        "fixture changed: adjust the labels above"
    );
    assert_eq!(
        value(
            &text,
            &format!("atlhyper_node_filesystem_avail_bytes{{{root}}}")
        ),
        Some(disk.available as f64)
    );
    assert_eq!(
        value(&text, &format!("atlhyper_node_filesystem_files{{{root}}}")),
        disk.inodes_total.map(|v| v as f64)
    );
    assert_eq!(
        value(
            &text,
            &format!("atlhyper_node_filesystem_files_free{{{root}}}")
        ),
        Some((disk.inodes_total.unwrap() - disk.inodes_used.unwrap()) as f64)
    );
    assert_eq!(
        value(&text, &format!("atlhyper_node_cpu_steal_percent{{{node}}}")),
        n0.cpu.steal_percent
    );
    assert_eq!(
        value(
            &text,
            &format!("atlhyper_node_pressure_percent{{{node},resource=\"io\",kind=\"full\"}}")
        ),
        Some(2.0)
    );
    let iface = &n0.networks[0].interface;
    assert_eq!(
        value(
            &text,
            &format!("atlhyper_node_network_receive_errs_total{{{node},interface=\"{iface}\"}}")
        ),
        Some(7.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("atlhyper_node_network_transmit_drop_total{{{node},interface=\"{iface}\"}}")
        ),
        Some(3.0)
    );
    // Counters are typed as counters, gauges as gauges.
    assert!(text.contains("# TYPE atlhyper_node_network_receive_bytes_total counter\n"));
    assert!(text.contains("# TYPE atlhyper_node_disk_read_bytes_total counter\n"));
    assert!(text.contains("# TYPE atlhyper_node_filesystem_avail_bytes gauge\n"));
    // HELP and TYPE once per family.
    let mut types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let n = types.len();
    types.sort_unstable();
    types.dedup();
    assert_eq!(types.len(), n, "a family is announced twice");
}

#[tokio::test]
async fn cluster_parameter_splits_the_fleet() {
    let m = fleet().await;
    let (_, all) = metrics(&m, "/metrics", &[]).await;
    let (_, c2) = metrics(&m, "/metrics?cluster=c2", &[]).await;
    assert!(all.contains("cluster=\"c1\""));
    assert!(c2.contains("atlhyper_node_up{cluster=\"c2\",node=\"node-000\"} 1"));
    assert!(!c2.contains("cluster=\"c1\""), "{c2}");
    // The master's own figures come with every part.
    assert!(c2.contains("atlhyper_master_clusters 2"));
    let (_, none) = metrics(&m, "/metrics?cluster=nope", &[]).await;
    assert!(!none.contains("atlhyper_node_up"));
}

#[tokio::test]
async fn open_metrics_when_asked_and_gzip_when_accepted() {
    let m = fleet().await;
    let (_, text) = metrics(&m, "/metrics", &[]).await;
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (headers, om) = metrics(&m, "/metrics", &[("accept", accept)]).await;
    assert_eq!(
        headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains(
        "# TYPE atlhyper_master_heartbeats counter\natlhyper_master_heartbeats_total 0\n"
    ));

    let (headers, unzipped) = metrics(&m, "/metrics", &[("accept-encoding", "gzip")]).await;
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["vary"], "accept-encoding");
    // Same figures, apart from the latency histograms the scrapes themselves do not touch.
    assert_eq!(unzipped.lines().count(), text.lines().count());
    let (headers, _) = metrics(&m, "/metrics", &[("accept-encoding", "gzip;q=0")]).await;
    assert!(headers.get("content-encoding").is_none());
}

#[tokio::test]
async fn promtool_check_metrics_passes() {
    if !promtool_here() {
        return;
    }
    let m = fleet().await;
    let (_, text) = metrics(&m, "/metrics", &[]).await;
    if let Err(findings) = promtool_check_metrics(&text) {
        panic!("promtool check metrics: {findings:#?}");
    }
}
