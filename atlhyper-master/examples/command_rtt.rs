//! Load generator: command round trip on loopback, API request -> master queues a command -> the
//! real atlhyper-agent's long poll wakes -> it answers from its NodeTable -> API response.
//!
//! One process: master (store chosen by `--store memory|sqlite|sqlite-normal`, default sqlite,
//! i.e. fsync per commit), the real agent, and a node daemon feeding it 20 synthetic nodes. Then
//! `--requests N` (default 2000) sequential `GET /api/v2/observe/metrics/nodes/{name}` and
//! `.../series` requests, and the same with 8 concurrent clients.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release -p atlhyper-master --example command_rtt -- --store sqlite
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use atlhyper_agent::{AgentConfig, DaemonConfig, NodeTable, run_daemon_with, serve_agent};
use atlhyper_master::{Master, MasterConfig, run_master};
use atlhyper_store::{
    AgentRegistry, CommandQueue, MemoryStore, MetricsStore, SqliteOptions, SqliteStore, Synchronous,
};
use chrono::Utc;

const NODES: usize = 20;

fn report(name: &str, mut samples: Vec<u64>) {
    samples.sort_unstable();
    println!(
        "{:<44} {:>7} {:>9} {:>9} {:>9}",
        name,
        samples.len(),
        atlhyper_testkit::percentile(&samples, 50.0),
        atlhyper_testkit::percentile(&samples, 99.0),
        samples.last().copied().unwrap_or(0)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let store = arg("--store").unwrap_or_else(|| "sqlite".to_owned());
    let requests: usize = arg("--requests")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);

    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (metrics, commands, agents): (
            Arc<dyn MetricsStore>,
            Arc<dyn CommandQueue>,
            Arc<dyn AgentRegistry>,
        ) = match store.as_str() {
            "memory" => {
                let s = Arc::new(MemoryStore::new());
                (s.clone(), s.clone(), s)
            }
            "sqlite" | "sqlite-normal" => {
                let options = SqliteOptions {
                    synchronous: if store == "sqlite" {
                        Synchronous::Full
                    } else {
                        Synchronous::Normal
                    },
                    ..SqliteOptions::default()
                };
                let s = Arc::new(
                    SqliteStore::open_with(dir.path().join("atlhyper.db"), &options)
                        .expect("sqlite"),
                );
                (s.clone(), s.clone(), s)
            }
            other => panic!("unknown store {other}"),
        };
        // A round-trip benchmark answers thousands of queries a second, far past what honest
        // dashboards ask: no budget on the agent's results.
        let config = MasterConfig {
            result_rate_limit: None,
            ..MasterConfig::default()
        };
        let master = Master::new(config, metrics, commands, agents);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(run_master(master, listener, async move {
            let _ = stopped.await;
        }));

        let agent_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let agent_addr = agent_listener.local_addr().expect("addr");
        let agent_config = AgentConfig {
            listen: agent_addr,
            cluster_id: "rtt".into(),
            master_url: base.clone(),
            snapshot_interval: Duration::from_secs(1),
            ..AgentConfig::default()
        };
        let (agent_stop, agent_stopped) = tokio::sync::oneshot::channel::<()>();
        let agent = tokio::spawn(serve_agent(
            agent_listener,
            agent_config.clone(),
            Arc::new(NodeTable::new(agent_config.table_config())),
            async move {
                let _ = agent_stopped.await;
            },
        ));
        let mut daemons = Vec::new();
        let mut daemon_stops = Vec::new();
        for i in 0..NODES {
            let name = format!("node-{i:03}");
            let mut config = DaemonConfig::new(name.clone());
            config.agent_addr = format!("http://{agent_addr}");
            config.interval = Duration::from_secs(1);
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            daemon_stops.push(tx);
            daemons.push(tokio::spawn(run_daemon_with(
                config,
                move || atlhyper_testkit::node(&name, Utc::now(), 0.3),
                async move {
                    let _ = rx.await;
                },
            )));
        }

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        // Wait (bounded) until the master has every node.
        for _ in 0..200 {
            let r = http
                .get(format!("{base}/api/v2/clusters/rtt/node-metrics"))
                .send()
                .await
                .expect("request");
            if r.status() == 200 {
                let v: serde_json::Value = r.json().await.expect("json");
                if v["nodes"].as_array().map_or(0, Vec::len) == NODES {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The agent's ring needs a few points for the series.
        tokio::time::sleep(Duration::from_secs(3)).await;

        println!("store: {store}");
        println!(
            "{:<44} {:>7} {:>9} {:>9} {:>9}",
            "round trip (loopback)", "n", "p50 us", "p99 us", "max us"
        );
        let (one_http, one_base) = (http.clone(), base.clone());
        let one = move |path: String| {
            let http = one_http.clone();
            let url = format!("{one_base}{path}");
            async move {
                let started = Instant::now();
                let r = http.get(&url).send().await.expect("request");
                let status = r.status();
                let _ = r.bytes().await.expect("body");
                assert_eq!(status, 200, "{url}");
                started.elapsed().as_micros() as u64
            }
        };
        // Warm-up.
        for i in 0..50 {
            one(format!(
                "/api/v2/observe/metrics/nodes/node-{:03}?cluster_id=rtt",
                i % NODES
            ))
            .await;
        }
        let mut samples = Vec::with_capacity(requests);
        for i in 0..requests {
            samples.push(
                one(format!(
                    "/api/v2/observe/metrics/nodes/node-{:03}?cluster_id=rtt",
                    i % NODES
                ))
                .await,
            );
        }
        report("node detail, sequential", samples);
        let mut samples = Vec::with_capacity(requests);
        for i in 0..requests {
            samples.push(
                one(format!(
                    "/api/v2/observe/metrics/nodes/node-{:03}/series?cluster_id=rtt&minutes=5&metric=cpu",
                    i % NODES
                ))
                .await,
            );
        }
        report("node series (5 min), sequential", samples);

        let clients = 8;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let one = one.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = Vec::new();
                for i in 0..requests / clients {
                    s.push(
                        one(format!(
                            "/api/v2/observe/metrics/nodes/node-{:03}?cluster_id=rtt",
                            (i + c) % NODES
                        ))
                        .await,
                    );
                }
                s
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("client"));
        }
        let elapsed = started.elapsed();
        let n = all.len();
        report("node detail, 8 concurrent clients", all);
        println!(
            "  throughput with 8 clients: {:.0} round trips/s",
            n as f64 / elapsed.as_secs_f64()
        );

        for tx in daemon_stops {
            let _ = tx.send(());
        }
        for d in daemons {
            let _ = d.await;
        }
        let _ = agent_stop.send(());
        let _ = agent.await;
        let _ = stop.send(());
        let _ = server.await;
    });
}
