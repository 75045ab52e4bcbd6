//! `atlhyper`: the whole system in one command.
//!
//! - `atlhyper up`: master + agent + this host's collector in one process, SQLite under
//!   `./atlhyper-data`, dashboard on http://127.0.0.1:8080 (loopback only: no tokens).
//! - `atlhyper master|agent|metrics ...`: the separate programs (`atlhyper-master`,
//!   `atlhyper-agent`, `atlhyper-metrics`), same flags and environment variables.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use atlhyper_agent::{
    AgentArgs, AgentConfig, DaemonArgs, DaemonConfig, NodeTable, init_logging, run_agent,
    run_daemon, run_main, serve_agent, terminated, validate_node_name,
};
use atlhyper_master::{Master, MasterArgs, MasterConfig, open_sqlite, run_from_args, run_master};
use clap::{Parser, Subcommand};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "atlhyper",
    version,
    about = "atlhyper-rs: node and cluster metrics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (tracing EnvFilter syntax; RUST_LOG wins when set).
    #[arg(
        long,
        global = true,
        env = "ATLHYPER_LOG_LEVEL",
        default_value = "info"
    )]
    log_level: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Master, agent and this host's collector in one process.
    Up(UpArgs),
    /// The master alone (as `atlhyper-master`).
    Master(MasterArgs),
    /// The cluster agent alone (as `atlhyper-agent`).
    Agent(AgentArgs),
    /// The node daemon alone (as `atlhyper-metrics`).
    Metrics(DaemonArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct UpArgs {
    /// Dashboard and API address (loopback only: `up` configures no tokens).
    #[arg(long, env = "ATLHYPER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory of the SQLite database.
    #[arg(long, env = "ATLHYPER_DATA_DIR", default_value = "atlhyper-data")]
    data_dir: PathBuf,
    /// Cluster id this host is shown under.
    #[arg(long, env = "ATLHYPER_CLUSTER_ID", default_value = "local")]
    cluster_id: String,
    /// Node name of this host (default: the host name).
    #[arg(long, env = "ATLHYPER_NODE_NAME")]
    node_name: Option<String>,
    /// Collection interval (e.g. 5s).
    #[arg(long, env = "ATLHYPER_COLLECT_INTERVAL", default_value = "5s", value_parser = duration_arg)]
    collect_interval: Duration,
    /// Interval of the agent's snapshots to the master (e.g. 10s).
    #[arg(long, env = "ATLHYPER_SNAPSHOT_INTERVAL", default_value = "10s", value_parser = duration_arg)]
    snapshot_interval: Duration,
    /// One stored history point per node per this interval.
    #[arg(long, env = "ATLHYPER_HISTORY_INTERVAL", default_value = "5m", value_parser = duration_arg)]
    history_interval: Duration,
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    atlhyper_master::parse_duration(s).map_err(|e| e.0)
}

/// This host's name as a node name: `/proc/sys/kernel/hostname`, lower-cased.
fn host_node_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    validate_node_name(&name).ok()?;
    Some(name)
}

/// Runs `atlhyper up` until `shutdown` completes; sends the dashboard address on `ready` once
/// everything listens.
async fn up(
    args: UpArgs,
    shutdown: impl Future<Output = ()>,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), String> {
    let node_name = match args.node_name.clone().or_else(host_node_name) {
        Some(n) => n,
        None => "localhost".to_owned(),
    };
    validate_node_name(&node_name).map_err(|e| format!("node name {node_name:?}: {e}"))?;

    let config = MasterConfig {
        listen: args.listen,
        history_interval: args.history_interval,
        ..MasterConfig::default()
    };
    config.validate().map_err(|e| e.to_string())?;
    if !config.listen.ip().is_loopback() {
        return Err(format!(
            "{} is not a loopback address; `atlhyper up` has no tokens and serves on 127.0.0.1 only \
             (run `atlhyper master` with tokens to serve a network)",
            config.listen
        ));
    }
    let db = args.data_dir.join("atlhyper.db");
    let store = open_sqlite(&db)
        .await
        .map_err(|e| format!("{}: {e}", db.display()))?;
    let master_listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let master_addr = master_listener.local_addr().map_err(|e| e.to_string())?;
    let agent_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen for the agent: {e}"))?;
    let agent_addr = agent_listener.local_addr().map_err(|e| e.to_string())?;

    let stop = CancellationToken::new();
    let stopped = |stop: &CancellationToken| {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    };
    let mut parts: JoinSet<(&'static str, Result<(), String>)> = JoinSet::new();
    // Alert state in the same SQLite file, so a restart keeps running alerts.
    let alerting = atlhyper_master::alerting::Alerting::new(
        store.clone(),
        Arc::new(atlhyper_master::alerting::NoPublisher),
        atlhyper_master::alerting::AlertSettings::default(),
    );
    let master = Master::with_alerting(config, store.clone(), store.clone(), store, alerting);
    let master_run = run_master(master, master_listener, stopped(&stop));
    parts.spawn(async move { ("master", master_run.await.map_err(|e| e.to_string())) });

    let agent_config = AgentConfig {
        listen: agent_addr,
        cluster_id: args.cluster_id.clone(),
        master_url: format!("http://{master_addr}"),
        snapshot_interval: args.snapshot_interval,
        node_interval: args.collect_interval,
        ..AgentConfig::default()
    };
    agent_config.validate().map_err(|e| e.to_string())?;
    let table = Arc::new(NodeTable::new(agent_config.table_config()));
    let agent_run = serve_agent(agent_listener, agent_config, table, stopped(&stop));
    parts.spawn(async move { ("agent", agent_run.await.map_err(|e| e.to_string())) });

    let mut daemon_config = DaemonConfig::new(node_name.clone());
    daemon_config.agent_addr = format!("http://{agent_addr}");
    daemon_config.interval = args.collect_interval;
    let daemon_run = run_daemon(daemon_config, stopped(&stop));
    parts.spawn(async move { ("collector", daemon_run.await.map_err(|e| e.to_string())) });

    println!("atlhyper is up: dashboard and API on http://{master_addr}/");
    if let Some(ready) = ready {
        let _ = ready.send(master_addr);
    }
    println!(
        "  cluster {:?}, node {node_name:?}, data in {}; Ctrl-C to stop",
        args.cluster_id,
        args.data_dir.display()
    );

    // Run until Ctrl-C / SIGTERM, or until a part stops on its own (an error).
    let mut errors = Vec::new();
    let record = |joined: Result<(&'static str, Result<(), String>), tokio::task::JoinError>,
                  early: bool,
                  errors: &mut Vec<String>| match joined {
        Ok((part, Ok(()))) if early => errors.push(format!("the {part} stopped unexpectedly")),
        Ok((_, Ok(()))) => {}
        Ok((part, Err(e))) => errors.push(format!("{part}: {e}")),
        Err(e) => errors.push(format!("a part failed: {e}")),
    };
    tokio::select! {
        () = shutdown => {}
        Some(joined) = parts.join_next() => record(joined, true, &mut errors),
    }
    stop.cancel();
    let drain = async {
        while let Some(joined) = parts.join_next().await {
            record(joined, false, &mut errors);
        }
    };
    if tokio::time::timeout(Duration::from_secs(15), drain)
        .await
        .is_err()
    {
        errors.push("some parts did not stop within 15 s".to_owned());
        parts.abort_all();
    }
    if errors.is_empty() {
        println!("atlhyper stopped");
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level);
    let work = async move {
        match cli.command {
            Command::Up(args) => up(args, terminated(), None).await,
            Command::Master(args) => run_from_args(&args, terminated())
                .await
                .map_err(|e| e.to_string()),
            Command::Agent(args) => {
                let config = args.into_config().map_err(|e| e.to_string())?;
                run_agent(config, terminated())
                    .await
                    .map_err(|e| e.to_string())
            }
            Command::Metrics(args) => {
                let config = args.into_config().map_err(|e| e.to_string())?;
                run_daemon(config, terminated())
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    };
    run_main(
        "atlhyper",
        tokio::runtime::Builder::new_multi_thread(),
        work,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `atlhyper up` on a free port: this host's node reaches the dashboard API through the
    /// real collector, agent and master, the database is created, and it stops when told.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn up_serves_this_host() {
        let dir = tempfile::tempdir().expect("temp dir");
        let args = UpArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().join("data"),
            cluster_id: "local".to_owned(),
            node_name: Some("this-host".to_owned()),
            collect_interval: Duration::from_millis(200),
            snapshot_interval: Duration::from_millis(300),
            history_interval: Duration::from_secs(300),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, addr) = tokio::sync::oneshot::channel();
        let running = tokio::spawn(up(
            args,
            async move {
                let _ = stopped.await;
            },
            Some(ready),
        ));
        let addr = addr.await.expect("up is listening");
        let url = format!("http://{addr}/api/v2/clusters/local/node-metrics/this-host");
        let mut found = false;
        for _ in 0..100 {
            if let Some(body) = http_get(addr, &url).await {
                found = body.contains("\"node_name\":\"this-host\"");
                if found {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(found, "this host's snapshot reached the API within 10 s");
        assert!(dir.path().join("data/atlhyper.db").exists());
        stop.send(()).expect("still running");
        let result = tokio::time::timeout(Duration::from_secs(20), running)
            .await
            .expect("stops within 20 s")
            .expect("no panic");
        assert_eq!(result, Ok(()));
    }

    /// A minimal HTTP/1.1 GET over a fresh connection; the body when the status is 200.
    async fn http_get(addr: SocketAddr, url: &str) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let path = url.split_once(&addr.to_string())?.1;
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.ok()?;
        if !answer.starts_with("HTTP/1.1 200") {
            return None;
        }
        Some(answer.split_once("\r\n\r\n")?.1.to_owned())
    }
}
