//! A local multi-cluster setup in one process, for trying the dashboard and the API: a master
//! (in-memory store, history every 30 s so the charts fill while you watch), two clusters each
//! with its own real agent, this host's real collector in cluster `east`, and node daemons with
//! made-up but moving figures for the other workers.
//!
//! ```sh
//! cargo run --example local_cluster                  # until Ctrl-C
//! cargo run --example local_cluster -- --seconds 30  # bounded
//! ```
//!
//! Then open the printed URL, or ask the API:
//! `curl 'http://127.0.0.1:8080/api/v2/observe/metrics/nodes/west-1?cluster_id=west'`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use atlhyper::agent::{
    AgentConfig, DaemonConfig, NodeTable, run_daemon, run_daemon_with, serve_agent,
};
use atlhyper::master::{Master, MasterConfig, run_master};
use atlhyper::model::NodeMetricsSnapshot;
use atlhyper::store::MemoryStore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A worker whose load follows a slow wave (each node its own phase): the test kit's realistic
/// node snapshot at that load.
fn made_up_node(phase: f64) -> impl FnMut() -> NodeMetricsSnapshot + Send + 'static {
    let started = std::time::Instant::now();
    move || {
        let t = started.elapsed().as_secs_f64() / 30.0 + phase;
        let load = (0.35 + 0.3 * t.sin()).clamp(0.0, 1.0);
        atlhyper_testkit::node("made-up", chrono::Utc::now(), load)
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_ascii_lowercase())
        .ok()
        .filter(|h| atlhyper::agent::validate_node_name(h).is_ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(0);
    let asked = arg("--listen");
    let listen: SocketAddr =
        atlhyper::agent::parse_listen_arg(asked.as_deref().unwrap_or("127.0.0.1:8080"))?;

    let stop = CancellationToken::new();
    let stopped = |stop: &CancellationToken| {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    };
    let mut parts = JoinSet::new();

    let store = Arc::new(MemoryStore::new());
    let config = MasterConfig {
        listen,
        history_interval: Duration::from_secs(30),
        ..MasterConfig::default()
    };
    let master = Master::new(config, store.clone(), store.clone(), store);
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        // The default port is taken (often by `atlhyper up`): take a free one and say so.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && asked.is_none() => {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            eprintln!(
                "{listen} is taken (is `atlhyper up` running?); serving on {} instead",
                l.local_addr()?
            );
            l
        }
        Err(e) => return Err(format!("cannot listen on {listen}: {e}").into()),
    };
    let master_url = format!("http://{}", listener.local_addr()?);
    let run = run_master(master, listener, stopped(&stop));
    parts.spawn(async move { run.await.map_err(|e| e.to_string()) });

    for (cluster, workers) in [("east", 3), ("west", 5)] {
        let agent_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let agent_addr = agent_listener.local_addr()?;
        let config = AgentConfig {
            listen: agent_addr,
            cluster_id: cluster.to_owned(),
            master_url: master_url.clone(),
            snapshot_interval: Duration::from_secs(5),
            node_interval: Duration::from_secs(2),
            ..AgentConfig::default()
        };
        let table = Arc::new(NodeTable::new(config.table_config()));
        let run = serve_agent(agent_listener, config, table, stopped(&stop));
        parts.spawn(async move { run.await.map_err(|e| e.to_string()) });

        for i in 1..=workers {
            let mut daemon = DaemonConfig::new(format!("{cluster}-{i}"));
            daemon.agent_addr = format!("http://{agent_addr}");
            daemon.interval = Duration::from_secs(2);
            let run = run_daemon_with(daemon, made_up_node(f64::from(i) * 1.3), stopped(&stop));
            parts.spawn(async move { run.await.map_err(|e| e.to_string()) });
        }
        if cluster == "east" {
            let mut daemon = DaemonConfig::new(host_name());
            daemon.agent_addr = format!("http://{agent_addr}");
            daemon.interval = Duration::from_secs(2);
            let run = run_daemon(daemon, stopped(&stop));
            parts.spawn(async move { run.await.map_err(|e| e.to_string()) });
        }
    }

    println!("local cluster up: dashboard on {master_url}/ (clusters east and west)");
    let wait = async {
        if seconds == 0 {
            let _ = tokio::signal::ctrl_c().await;
        } else {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
        }
    };
    let mut failed = None;
    tokio::select! {
        () = wait => {}
        Some(joined) = parts.join_next() => {
            failed = Some(match joined {
                Ok(Ok(())) => "a part stopped on its own".to_owned(),
                Ok(Err(e)) => e,
                Err(e) => e.to_string(),
            });
        }
    }
    stop.cancel();
    while let Some(joined) = parts.join_next().await {
        if let Ok(Err(e)) = joined {
            eprintln!("while stopping: {e}");
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => {
            println!("stopped");
            Ok(())
        }
    }
}
