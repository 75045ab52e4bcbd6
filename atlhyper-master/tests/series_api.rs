//! The series routes end to end: snapshots pushed through the agent route, series read back
//! through the API with exact min/avg/max, on the memory store and on SQLite.

// The shared helpers this file does not use stay in the other tests.
#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::time::Duration;

use atlhyper_master::{Master, MasterConfig};
use atlhyper_model::{ClusterSnapshot, NodeMetricsSnapshot};
use atlhyper_store::{MemoryStore, SeriesStore, SqliteStore};
use chrono::{DateTime, TimeDelta, Utc};
use common::{get, push};
use serde_json::{Value, json};

const MIN5: i64 = 300_000;
const HOUR: i64 = 3_600_000;

fn config() -> MasterConfig {
    MasterConfig {
        // Tier 0 is kept 2 h, so a query reaching 3 h back reads tier 1.
        retention: Duration::from_secs(2 * 3600),
        ..MasterConfig::default()
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// A node whose CPU is `cpu` and whose disk `sda1` writes `cpu * 10` B/s.
fn node(name: &str, ms: i64, cpu: f64) -> NodeMetricsSnapshot {
    let mut n = atlhyper_testkit::node(name, at(ms), 0.5);
    n.cpu.usage_percent = cpu;
    n.disks[0].write_rate = cpu * 10.0;
    n
}

struct Pusher {
    seq: u64,
}

impl Pusher {
    /// Pushes one snapshot of `a` (cpu) and `b` (cpu + 100 on its own scale: cpu / 2).
    async fn push(&mut self, m: &Master, ms: i64, cpu: f64) {
        self.seq += 1;
        let mut s = ClusterSnapshot {
            cluster_id: "c1".to_owned(),
            timestamp: at(ms),
            seq: self.seq,
            agent_version: "test".to_owned(),
            ..ClusterSnapshot::default()
        };
        s.node_metrics.insert("a".into(), node("a", ms, cpu));
        s.node_metrics.insert("b".into(), node("b", ms, cpu / 2.0));
        push(m, &s).await;
    }
}

async fn ok(m: &Master, path: &str) -> Value {
    let (status, body) = get(m, path).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

async fn error(m: &Master, path: &str, status: u16) -> String {
    let (got, body) = get(m, path).await;
    assert_eq!(got, status, "{path}: {}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["error"].as_str().unwrap().to_owned()
}

async fn series_round_trip(m: Master) {
    let now = Utc::now().timestamp_millis();
    // The previous whole hour: inside tier 0's 2 h, and over by the time the test rolls up.
    let h = now.div_euclid(HOUR) * HOUR - HOUR;
    let mut p = Pusher { seq: 0 };
    // Interval A (h): 10, 20, 60. Interval B (h + 5 min): nothing. Interval C: 40, 50.
    // Interval D: 70, which ends C.
    for (offset, cpu) in [(0, 10.0), (10_000, 20.0), (20_000, 60.0)] {
        p.push(&m, h + offset, cpu).await;
    }
    for (offset, cpu) in [(2 * MIN5, 40.0), (2 * MIN5 + 10_000, 50.0)] {
        p.push(&m, h + offset, cpu).await;
    }
    p.push(&m, h + 3 * MIN5, 70.0).await;

    let base = "/api/v2/clusters/c1/node-metrics/a/series";
    let range = format!("from={h}&to={}", h + HOUR - 1);
    let v = ok(&m, &format!("{base}?figure=cpu.usage&{range}&step=300")).await;
    assert_eq!(v["cluster_id"], "c1");
    assert_eq!(v["node"], "a");
    assert_eq!(v["unit"], "%");
    assert_eq!(
        (v["step"].as_i64(), v["tier"].as_i64()),
        (Some(300), Some(0))
    );
    assert_eq!(v["from"].as_i64(), Some(h));
    // A, then C: B is a gap (absent); D is still open, served from memory and marked partial.
    let d = h + 3 * MIN5;
    assert_eq!(
        v["series"],
        json!([{"device": "", "points": [[h, 10.0, 30.0, 60.0], [h + 2 * MIN5, 40.0, 45.0, 50.0], [d, 70.0, 70.0, 70.0]], "partial_ts": d}])
    );

    // One device of a per-device figure; without `device`, every device.
    let v = ok(
        &m,
        &format!("{base}?figure=disk.write_rate&device=sda1&{range}"),
    )
    .await;
    assert_eq!(v["unit"], "B/s");
    assert_eq!(
        v["series"],
        json!([{"device": "sda1", "points": [[h, 100.0, 300.0, 600.0], [h + 2 * MIN5, 400.0, 450.0, 500.0], [d, 700.0, 700.0, 700.0]], "partial_ts": d}])
    );
    let v = ok(&m, &format!("{base}?figure=disk.write_rate&{range}")).await;
    let devices: Vec<&str> = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["device"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["sda1", "sda2"]);
    // A 10 min step merges A and B's gap into one point, C and the open D into another;
    // RFC 3339 works as unix ms does.
    let from = at(h).to_rfc3339();
    let v = ok(
        &m,
        &format!(
            "{base}?figure=cpu.usage&from={}&to={}&step=600",
            from.replace('+', "%2B"),
            h + HOUR - 1
        ),
    )
    .await;
    assert_eq!(
        v["series"][0]["points"],
        json!([
            [h, 10.0, 30.0, 60.0],
            [h + 2 * MIN5, 40.0, 160.0 / 3.0, 70.0]
        ])
    );
    assert_eq!(v["series"][0]["partial_ts"], h + 2 * MIN5);

    // The catalog.
    let v = ok(&m, base).await;
    let figures = v["figures"].as_array().unwrap();
    let find = |name: &str| figures.iter().find(|f| f["figure"] == name).cloned();
    assert_eq!(
        find("cpu.usage").unwrap(),
        json!({"figure": "cpu.usage", "unit": "%", "devices": []})
    );
    assert_eq!(
        find("disk.write_rate").unwrap()["devices"],
        json!(["sda1", "sda2"])
    );
    assert_eq!(
        find("fs.usage").unwrap()["devices"],
        json!(["/", "/var/lib/kubelet"])
    );
    assert_eq!(
        find("cpu.core").unwrap()["devices"],
        json!(["cpu0", "cpu1", "cpu2", "cpu3"])
    );
    assert!(
        find("psi.cpu_some").is_none(),
        "no PSI reported, none listed"
    );
    assert_eq!(figures[0]["figure"], "cpu.usage", "catalog order");

    // The cluster trend: node a's CPU avg 30 and b's 15 in A; max 60 and 30.
    let v = ok(
        &m,
        &format!("/api/v2/clusters/c1/series?figure=cpu.usage&{range}&step=300"),
    )
    .await;
    assert_eq!(v["cluster_id"], "c1");
    assert_eq!(v["series"][0]["device"], "avg");
    assert_eq!(v["series"][0]["points"][0], json!([h, 15.0, 22.5, 30.0]));
    assert_eq!(v["series"][1]["device"], "max");
    assert_eq!(v["series"][1]["points"][0], json!([h, 30.0, 45.0, 60.0]));
    let v = ok(
        &m,
        &format!("/api/v2/clusters/c1/series?figure=net.rx_rate&{range}"),
    )
    .await;
    // Two interfaces of 62,500 B/s each (stored to 10 significant bits: 62,528), summed per
    // node.
    assert_eq!(
        v["series"][0]["points"][0],
        json!([h, 125056.0, 125056.0, 125056.0])
    );

    // Bad parameters name themselves; unknown cluster and node are 404.
    for (query, name) in [
        ("figure=disk.nope", "figure"),
        ("figure=cpu.usage&from=yesterday", "from"),
        ("figure=cpu.usage&to=12:00", "to"),
        ("figure=cpu.usage&step=0", "step"),
        ("figure=cpu.usage&step=ten", "step"),
        ("figure=cpu.usage&from=2000&to=1000", "from"),
        ("figure=cpu.usage&from=0&step=300", "step"),
    ] {
        let e = error(&m, &format!("{base}?{query}"), 400).await;
        assert!(e.contains(name), "{query}: {e}");
    }
    // A step raised to the tier's and still too fine for the range names both.
    let e = error(
        &m,
        &format!("{base}?figure=cpu.usage&from=0&to={now}&step=1"),
        400,
    )
    .await;
    assert!(
        e.starts_with("step 1 s asked, 3600 s used for this range: more than 10000 points"),
        "{e}"
    );
    let e = error(&m, "/api/v2/clusters/c1/series?figure=cpu.core", 400).await;
    assert!(e.contains("figure"), "{e}");
    let e = error(&m, "/api/v2/clusters/c1/series", 400).await;
    assert!(e.contains("figure"), "{e}");
    let e = error(
        &m,
        "/api/v2/clusters/zz/node-metrics/a/series?figure=cpu.usage",
        404,
    )
    .await;
    assert!(e.contains("cluster"), "{e}");
    let e = error(&m, "/api/v2/clusters/c1/node-metrics/zz/series", 404).await;
    assert!(e.contains("node"), "{e}");
    error(&m, "/api/v2/clusters/zz/series?figure=cpu.usage", 404).await;

    // Upkeep as of 10 minutes into the next hour (roll-up waits two intervals past an hour;
    // "now" would not do in the first 10 minutes of an hour): D is written (ended over an
    // interval ago), hour h rolls up into tier 1: samples 3 + 2 + 1, avg (90 + 90 + 70) / 6 =
    // 41.67 (stored to the hundredth).
    m.series_maintenance(at(h + HOUR + 2 * MIN5)).await;
    let three_h = now - 3 * HOUR;
    let v = ok(
        &m,
        &format!("{base}?figure=cpu.usage&from={three_h}&to={now}"),
    )
    .await;
    assert_eq!(v["tier"], 1);
    assert_eq!(v["step"], 3600);
    assert_eq!(v["series"][0]["points"], json!([[h, 10.0, 41.67, 70.0]]));
    let v = ok(&m, &format!("{base}?figure=cpu.usage&{range}&step=300")).await;
    assert_eq!(
        v["series"][0]["points"][2],
        json!([h + 3 * MIN5, 70.0, 70.0, 70.0])
    );
    assert!(
        v["series"][0].get("partial_ts").is_none(),
        "D is stored now"
    );

    // The fleet: one cluster, two nodes online, CPU now 70 and 35.
    let v = ok(&m, "/api/v2/fleet").await;
    let c = &v["clusters"][0];
    assert_eq!(c["cluster_id"], "c1");
    assert_eq!(
        (c["nodes_total"].as_u64(), c["nodes_online"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(c["agent_online"], true);
    assert_eq!(c["cpu"], 52.5);
    assert_eq!(
        c["alerts_firing"],
        json!({"critical": 0, "warning": 0, "info": 0})
    );
    let spark = c["sparkline"]["cpu"].as_array().unwrap();
    assert!(
        spark.iter().any(|p| p[0] == h),
        "the rolled-up hour is in the sparkline: {spark:?}"
    );

    // Prune, three hours on: tier 0 (kept 2 h) is gone, tier 1 stays.
    m.series_maintenance(Utc::now() + TimeDelta::hours(3)).await;
    let v = ok(&m, &format!("{base}?figure=cpu.usage&{range}")).await;
    assert_eq!(v["series"], json!([]));
    let v = ok(
        &m,
        &format!("{base}?figure=cpu.usage&from={three_h}&to={now}"),
    )
    .await;
    assert_eq!(v["series"][0]["points"], json!([[h, 10.0, 41.67, 70.0]]));
}

#[tokio::test]
async fn series_on_the_memory_store() {
    let store = Arc::new(MemoryStore::new());
    let m =
        Master::new(config(), store.clone(), store.clone(), store.clone()).with_series_store(store);
    series_round_trip(m).await;
}

#[tokio::test]
async fn series_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("m.db")).unwrap());
    let series: Arc<dyn SeriesStore> = store.clone();
    let m = Master::new(config(), store.clone(), store.clone(), store).with_series_store(series);
    series_round_trip(m).await;
}

fn master_on_memory() -> Master {
    let store = Arc::new(MemoryStore::new());
    Master::new(config(), store.clone(), store.clone(), store.clone()).with_series_store(store)
}

fn one_node(seq: u64, ms: i64, n: NodeMetricsSnapshot) -> ClusterSnapshot {
    let mut s = ClusterSnapshot {
        cluster_id: "c1".to_owned(),
        timestamp: at(ms),
        seq,
        agent_version: "test".to_owned(),
        ..ClusterSnapshot::default()
    };
    s.node_metrics.insert(n.node_name.clone(), n);
    s
}

#[tokio::test]
async fn a_new_node_has_figures_from_its_first_snapshot() {
    let m = master_on_memory();
    let now = Utc::now().timestamp_millis();
    let open = now.div_euclid(MIN5) * MIN5;
    push(&m, &one_node(1, now, node("fresh", now, 12.0))).await;
    let base = "/api/v2/clusters/c1/node-metrics/fresh/series";
    // The catalog lists the open interval's figures before any row is stored.
    let v = ok(&m, base).await;
    let names: Vec<&str> = v["figures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["figure"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"cpu.usage") && names.contains(&"disk.write_rate"),
        "{names:?}"
    );
    let v = ok(
        &m,
        &format!("{base}?figure=cpu.usage&from={}&to={now}", now - HOUR),
    )
    .await;
    assert_eq!(
        v["series"],
        json!([{"device": "", "points": [[open, 12.0, 12.0, 12.0]], "partial_ts": open}])
    );
    // The cluster trend has it too, marked partial on both series.
    let v = ok(
        &m,
        &format!(
            "/api/v2/clusters/c1/series?figure=cpu.usage&from={}&to={now}&step=300",
            now - HOUR
        ),
    )
    .await;
    assert_eq!(v["series"][0]["points"], json!([[open, 12.0, 12.0, 12.0]]));
    assert_eq!(v["series"][0]["partial_ts"], open);
    assert_eq!(v["series"][1]["partial_ts"], open);
    // Tier 1 reads (older than tier 0 keeps) leave the open interval out.
    let v = ok(
        &m,
        &format!("{base}?figure=cpu.usage&from={}&to={now}", now - 3 * HOUR),
    )
    .await;
    assert_eq!((v["tier"].as_i64(), &v["series"]), (Some(1), &json!([])));
}

#[tokio::test]
async fn a_snapshot_from_the_future_opens_no_future_interval() {
    let m = master_on_memory();
    let now = Utc::now().timestamp_millis();
    let ahead = now + 24 * HOUR;
    // The node's clock is a day ahead: ingest takes the receive time instead.
    push(&m, &one_node(1, now, node("skewed", ahead, 33.0))).await;
    let base = "/api/v2/clusters/c1/node-metrics/skewed/series";
    let v = ok(
        &m,
        &format!(
            "{base}?figure=cpu.usage&from={}&to={}&step=300",
            now - HOUR,
            now + 2 * 24 * HOUR
        ),
    )
    .await;
    let points = v["series"][0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{points:?}");
    let ts = points[0][0].as_i64().unwrap();
    let after = Utc::now().timestamp_millis();
    assert!(
        ts <= after && ts > now - MIN5,
        "the open interval is the current one ({ts}), not one a day ahead ({ahead})"
    );
    assert_eq!(v["series"][0]["partial_ts"], ts);
    // Upkeep an hour on writes the row where it was accumulated: nothing lands in the future.
    m.series_maintenance(Utc::now() + TimeDelta::hours(1)).await;
    let v = ok(
        &m,
        &format!(
            "{base}?figure=cpu.usage&from={}&to={}",
            now + MIN5,
            now + 2 * 24 * HOUR
        ),
    )
    .await;
    assert_eq!(v["series"], json!([]));
}

#[tokio::test]
async fn the_agents_backfill_fills_a_gap_without_counting_an_interval_twice() {
    let m = master_on_memory();
    let now = Utc::now().timestamp_millis();
    let current = now.div_euclid(MIN5) * MIN5;
    let (x1, x2, x3) = (current - 6 * MIN5, current - 5 * MIN5, current - 3 * MIN5);
    // X1 and X2 arrive live; X2's snapshot ends X1, so X1 has its row.
    push(&m, &one_node(1, x1 + 1_000, node("a", x1 + 1_000, 10.0))).await;
    push(&m, &one_node(2, x2 + 1_000, node("a", x2 + 1_000, 20.0))).await;
    // Then a gap; the agent's next push carries its ring: points in X1 (stored already) and X3.
    let point = |ms: i64, cpu: f64| atlhyper_model::MetricsDataPoint {
        timestamp: at(ms),
        node_name: "a".to_owned(),
        cpu_usage: cpu,
        memory_usage: cpu / 2.0,
        load_1: cpu / 10.0,
        ..Default::default()
    };
    let mut s = one_node(3, now, node("a", now, 50.0));
    s.backfill = vec![
        point(x1 + 20_000, 99.0),
        point(x3 + 5_000, 30.0),
        point(x3 + 10_000, 40.0),
        point(x3 + 15_000, 50.0),
        // The open interval's points are the accumulator's to count.
        point(current + 1, 77.0),
    ];
    push(&m, &s).await;
    let base = "/api/v2/clusters/c1/node-metrics/a/series";
    let range = format!("from={x1}&to={}&step=300", current - 1);
    let v = ok(&m, &format!("{base}?figure=cpu.usage&{range}")).await;
    assert_eq!(
        v["series"][0]["points"],
        json!([
            [x1, 10.0, 10.0, 10.0],
            [x2, 20.0, 20.0, 20.0],
            [x3, 30.0, 40.0, 50.0]
        ]),
        "X1 keeps its live row, X3 comes from the backfill"
    );
    let v = ok(&m, &format!("{base}?figure=memory.usage&{range}")).await;
    assert_eq!(v["series"][0]["points"][2], json!([x3, 15.0, 20.0, 25.0]));
    let v = ok(&m, &format!("{base}?figure=load.1&{range}")).await;
    assert_eq!(v["series"][0]["points"][2], json!([x3, 3.0, 4.0, 5.0]));
    // Figures the backfill does not carry have no point in X3.
    let v = ok(
        &m,
        &format!("{base}?figure=disk.write_rate&device=sda1&{range}"),
    )
    .await;
    let starts: Vec<i64> = v["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_i64().unwrap())
        .collect();
    assert_eq!(starts, [x1, x2]);
    // The open interval holds the live snapshot alone.
    let v = ok(
        &m,
        &format!("{base}?figure=cpu.usage&from={current}&to={now}"),
    )
    .await;
    assert_eq!(
        v["series"][0]["points"],
        json!([[current, 50.0, 50.0, 50.0]])
    );
}
