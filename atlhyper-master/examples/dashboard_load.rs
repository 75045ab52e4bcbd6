//! Load generator: dashboard endpoint latency with 50 clusters, one of them 1000 nodes.
//!
//! Starts a master in this process (its own 2-worker runtime, SQLite in a temp dir unless
//! `--memory`), pushes every cluster's snapshot over HTTP, keeps pushing every 10 s in the
//! background (as agents do), and measures the dashboard endpoints with one client on
//! loopback: p50 / p99 / max per endpoint. Bounded: `--requests N` per endpoint (default 2000).
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release -p atlhyper-master --example dashboard_load
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use atlhyper_master::{Master, MasterConfig, run_master};
use atlhyper_store::{AgentRegistry, CommandQueue, MemoryStore, MetricsStore, SqliteStore};
use chrono::Utc;

const CLUSTERS: usize = 50;
const BIG_NODES: usize = 1000;
const SMALL_NODES: usize = 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let memory = args.iter().any(|a| a == "--memory");
    let gzip_client = args.iter().any(|a| a == "--gzip");
    let requests: usize = args
        .iter()
        .position(|a| a == "--requests")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);

    let dir = tempfile::tempdir().expect("temp dir");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (metrics, commands, agents): (
        Arc<dyn MetricsStore>,
        Arc<dyn CommandQueue>,
        Arc<dyn AgentRegistry>,
    ) = if memory {
        let s = Arc::new(MemoryStore::new());
        (s.clone(), s.clone(), s)
    } else {
        let s = Arc::new(SqliteStore::open(dir.path().join("atlhyper.db")).expect("sqlite"));
        (s.clone(), s.clone(), s)
    };
    let master = Master::new(MasterConfig::default(), metrics, commands, agents);
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = server_rt.spawn(run_master(master, listener, async move {
        let _ = stopped.await;
    }));

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    client_rt.block_on(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let base = format!("http://{addr}");
        let ids: Vec<String> = (0..CLUSTERS).map(|i| format!("cluster-{i:02}")).collect();
        let nodes_of = |i: usize| if i == 0 { BIG_NODES } else { SMALL_NODES };

        // Bodies built once per cluster and seq (as agents would), pushed over HTTP.
        let push_base = base.clone();
        let push = move |http: reqwest::Client, id: String, nodes: usize, seq: u64| {
            let base = push_base.clone();
            async move {
                let s = atlhyper_testkit::cluster(&id, nodes, seq, Utc::now());
                let body = atlhyper_testkit::gzip(&serde_json::to_vec(&s).expect("json"));
                let started = Instant::now();
                let r = http
                    .post(format!("{base}/agent/snapshot"))
                    .header("x-cluster-id", &id)
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .body(body)
                    .send()
                    .await
                    .expect("push");
                assert_eq!(r.status(), 200);
                started.elapsed()
            }
        };
        let t = Instant::now();
        for (i, id) in ids.iter().enumerate() {
            push(http.clone(), id.clone(), nodes_of(i), 1).await;
        }
        println!(
            "ingested {CLUSTERS} clusters ({} nodes) in {:?}",
            BIG_NODES + (CLUSTERS - 1) * SMALL_NODES,
            t.elapsed()
        );

        // Agents keep pushing every 10 s, spread over the interval.
        let background = {
            let http = http.clone();
            let push = push.clone();
            let ids = ids.clone();
            tokio::spawn(async move {
                let mut big_ingest = Vec::new();
                for seq in 2..62 {
                    for (i, id) in ids.iter().enumerate() {
                        let d = push(http.clone(), id.clone(), nodes_of(i), seq).await;
                        if i == 0 {
                            big_ingest.push(d);
                        }
                        tokio::time::sleep(Duration::from_millis(10_000 / CLUSTERS as u64)).await;
                    }
                }
                big_ingest
            })
        };

        let endpoints = [
            "/api/v2/clusters".to_owned(),
            format!("/api/v2/clusters/{}/node-metrics", ids[0]),
            format!("/api/v2/clusters/{}/node-metrics?view=overview", ids[0]),
            format!("/api/v2/clusters/{}/node-metrics", ids[7]),
            format!("/api/v2/clusters/{}/node-metrics/node-500", ids[0]),
            format!("/api/v2/observe/metrics/summary?cluster_id={}", ids[0]),
            format!("/api/v2/observe/metrics/nodes?cluster_id={}", ids[7]),
            format!("/api/v2/observe/metrics/nodes?cluster_id={}", ids[0]),
            format!(
                "/api/v2/observe/metrics/nodes?cluster_id={}&format=v2",
                ids[0]
            ),
            "/health".to_owned(),
        ];
        println!(
            "{:<58} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "endpoint (one client, loopback)", "n", "p50 us", "p99 us", "max us", "bytes"
        );
        for path in &endpoints {
            let url = format!("{base}{path}");
            let mut samples = Vec::with_capacity(requests);
            let mut bytes = 0;
            for _ in 0..requests {
                let started = Instant::now();
                let mut req = http.get(&url);
                if gzip_client {
                    req = req.header("accept-encoding", "gzip");
                }
                let r = req.send().await.expect("request");
                assert_eq!(r.status(), 200, "{path}");
                let body = r.bytes().await.expect("body");
                samples.push(started.elapsed().as_micros() as u64);
                bytes = body.len();
            }
            samples.sort_unstable();
            println!(
                "{:<58} {:>9} {:>9} {:>9} {:>9} {:>10}",
                path,
                samples.len(),
                atlhyper_testkit::percentile(&samples, 50.0),
                atlhyper_testkit::percentile(&samples, 99.0),
                samples.last().copied().unwrap_or(0),
                bytes
            );
        }
        background.abort();
        let _ = background.await;
    });
    let _ = stop.send(());
    let _ = server_rt.block_on(server);
}
