//! `atlhyper up`: master, agent and this host's collector in one process, SQLite under a local
//! data directory, dashboard and API on a loopback address (no tokens are configured, so never
//! on a network address).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use atlhyper_agent::{
    AgentConfig, DaemonConfig, NodeTable, parse_listen_arg, run_daemon, serve_agent,
    validate_node_name,
};
use atlhyper_master::{Master, MasterConfig, MasterError, open_sqlite, run_master};
use atlhyper_model::{ConfigError, parse_positive_duration};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long the parts have to stop once told.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Flags of `atlhyper up`; each also reads the `ATLHYPER_*` variable it names.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Dashboard and API address (loopback only: `up` configures no tokens).
    #[arg(long, env = "ATLHYPER_LISTEN", default_value = "127.0.0.1:8080", value_parser = parse_listen_arg)]
    pub listen: SocketAddr,
    /// Directory of the SQLite database.
    #[arg(long, env = "ATLHYPER_DATA_DIR", default_value = "atlhyper-data")]
    pub data_dir: PathBuf,
    /// Cluster id this host is shown under.
    #[arg(long, env = "ATLHYPER_CLUSTER_ID", default_value = "local")]
    pub cluster_id: String,
    /// Node name of this host (default: the host name).
    #[arg(long, env = "ATLHYPER_NODE_NAME")]
    pub node_name: Option<String>,
    /// Collection interval (e.g. 5s, 1m30s).
    #[arg(long, env = "ATLHYPER_COLLECT_INTERVAL", default_value = "5s", value_parser = parse_positive_duration)]
    pub collect_interval: Duration,
    /// Interval of the agent's snapshots to the master.
    #[arg(long, env = "ATLHYPER_SNAPSHOT_INTERVAL", default_value = "10s", value_parser = parse_positive_duration)]
    pub snapshot_interval: Duration,
    /// One stored history point per node per this interval.
    #[arg(long, env = "ATLHYPER_HISTORY_INTERVAL", default_value = "5m", value_parser = parse_positive_duration)]
    pub history_interval: Duration,
    /// Log filter (tracing EnvFilter syntax; RUST_LOG wins when set).
    #[arg(long, env = "ATLHYPER_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log line format: `text` (one readable line per event) or `json` (one object per line).
    #[arg(long, env = "ATLHYPER_LOG_FORMAT", value_enum, default_value_t = atlhyper_agent::LogFormat::Text)]
    pub log_format: atlhyper_agent::LogFormat,
}

/// What [`up`] sends once every part listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpReady {
    /// Where the dashboard and the API answer.
    pub dashboard: SocketAddr,
    /// The node name this host reports under.
    pub node_name: String,
}

/// Why `atlhyper up` could not start, or how it ended badly.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// A setting cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened.
    #[error("{}: {source}", path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: MasterError,
    },
    /// An address could not be bound.
    #[error("cannot listen for the {part} on {addr}: {source}")]
    Listen {
        /// `master` or `agent`.
        part: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Parts failed, stopped on their own, or did not stop in time: one message each.
    #[error("{}", .0.join("; "))]
    Parts(Vec<String>),
}

/// This host's name as a node name: `/proc/sys/kernel/hostname`, lower-cased.
fn host_node_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    validate_node_name(&name).ok()?;
    Some(name)
}

async fn bind(part: &'static str, addr: SocketAddr) -> Result<tokio::net::TcpListener, UpError> {
    let listen_error = |source| UpError::Listen { part, addr, source };
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(listen_error)
}

/// Runs `atlhyper up` until `shutdown` completes (or a part stops on its own, an error); sends
/// the dashboard address on `ready` once everything listens.
pub async fn up(
    args: UpArgs,
    shutdown: impl Future<Output = ()>,
    ready: Option<oneshot::Sender<UpReady>>,
) -> Result<(), UpError> {
    let node_name = match args.node_name.clone().or_else(host_node_name) {
        Some(n) => n,
        None => "localhost".to_owned(),
    };
    validate_node_name(&node_name).map_err(|e| ConfigError::new("ATLHYPER_NODE_NAME", e))?;
    if !args.listen.ip().is_loopback() {
        return Err(ConfigError::new(
            "ATLHYPER_LISTEN",
            format!(
                "{} is not a loopback address; `atlhyper up` has no tokens and serves on \
                 127.0.0.1 only (run `atlhyper master` with tokens to serve a network)",
                args.listen
            ),
        )
        .into());
    }
    let config = MasterConfig {
        listen: args.listen,
        history_interval: args.history_interval,
        ..MasterConfig::default()
    };
    config.validate()?;
    let db = args.data_dir.join("atlhyper.db");
    let store = open_sqlite(&db).await.map_err(|source| UpError::Store {
        path: db.clone(),
        source,
    })?;
    let master_listener = bind("master", config.listen).await?;
    let master_addr = local_addr("master", &master_listener, config.listen)?;
    let agent_listener = bind("agent", SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let agent_addr = local_addr("agent", &agent_listener, config.listen)?;

    let stop = CancellationToken::new();
    let stopped = |stop: &CancellationToken| {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    };
    let mut parts: JoinSet<(&'static str, Result<(), String>)> = JoinSet::new();
    // Alert state and notification in the same SQLite file, so a restart keeps running alerts
    // and does not notify twice. No receiver is configured here (the separate master takes
    // --alert-webhook / --alert-config); silences and the alerts view work.
    let dispatcher = atlhyper_master::alerting::notify::Dispatcher::start(
        atlhyper_master::alerting::notify::NotifyConfig::empty(),
        store.clone(),
    )
    .await
    .map_err(|e| UpError::Store {
        path: db.clone(),
        source: MasterError::Notify(e),
    })?;
    let alerting = atlhyper_master::alerting::Alerting::new(
        store.clone(),
        Arc::new(dispatcher.clone()),
        atlhyper_master::alerting::AlertSettings::default(),
    );
    let master = Master::with_alerting(
        config,
        store.clone(),
        store.clone(),
        store.clone(),
        alerting,
    )
    .with_series_store(store.clone())
    .with_audit_log(store);
    master.set_notifications(dispatcher);
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
    agent_config.validate()?;
    let table = Arc::new(NodeTable::new(agent_config.table_config()));
    let agent_run = serve_agent(agent_listener, agent_config, table, stopped(&stop));
    parts.spawn(async move { ("agent", agent_run.await.map_err(|e| e.to_string())) });

    let mut daemon_config = DaemonConfig::new(node_name.clone());
    daemon_config.agent_addr = format!("http://{agent_addr}");
    daemon_config.interval = args.collect_interval;
    let daemon_run = run_daemon(daemon_config, stopped(&stop));
    parts.spawn(async move { ("collector", daemon_run.await.map_err(|e| e.to_string())) });

    if let Some(ready) = ready {
        // The receiver may be gone (nobody waits to print the address): nothing to tell then.
        let _ = ready.send(UpReady {
            dashboard: master_addr,
            node_name,
        });
    }

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
    if tokio::time::timeout(STOP_GRACE, drain).await.is_err() {
        errors.push(format!(
            "some parts did not stop within {} s",
            STOP_GRACE.as_secs()
        ));
        parts.abort_all();
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(UpError::Parts(errors))
    }
}

fn local_addr(
    part: &'static str,
    listener: &tokio::net::TcpListener,
    addr: SocketAddr,
) -> Result<SocketAddr, UpError> {
    listener
        .local_addr()
        .map_err(|source| UpError::Listen { part, addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &std::path::Path) -> UpArgs {
        UpArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.join("data"),
            cluster_id: "local".to_owned(),
            node_name: Some("this-host".to_owned()),
            collect_interval: Duration::from_millis(200),
            snapshot_interval: Duration::from_millis(300),
            history_interval: Duration::from_secs(300),
            log_level: "info".to_owned(),
            log_format: atlhyper_agent::LogFormat::Text,
        }
    }

    /// Runs `atlhyper up` with `args` until this host's node answers on the dashboard API,
    /// then stops it; how long after the start the node answered.
    async fn up_until_this_host_answers(args: UpArgs, dir: &std::path::Path) -> Duration {
        let started_at = std::time::Instant::now();
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, started) = oneshot::channel();
        let running = tokio::spawn(up(
            args,
            async move {
                let _ = stopped.await;
            },
            Some(ready),
        ));
        let started = started.await.expect("up is listening");
        assert_eq!(started.node_name, "this-host");
        let addr = started.dashboard;
        let path = "/api/v2/clusters/local/node-metrics/this-host";
        let mut found = None;
        for _ in 0..400 {
            let answer = tokio::task::spawn_blocking(move || {
                atlhyper_testkit::get_json(addr, path, &[], Duration::from_secs(2))
            })
            .await
            .expect("no panic");
            if let Ok((200, node)) = answer
                && node["node_name"] == "this-host"
            {
                found = Some(started_at.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let found = found.expect("this host's snapshot reached the API within 10 s");
        assert!(dir.join("data/atlhyper.db").exists());
        stop.send(()).expect("still running");
        let result = tokio::time::timeout(Duration::from_secs(20), running)
            .await
            .expect("stops within 20 s")
            .expect("no panic");
        assert!(result.is_ok(), "{result:?}");
        found
    }

    /// `atlhyper up` on a free port: this host's node reaches the dashboard API through the
    /// real collector, agent and master, the database is created, and it stops when told.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn up_serves_this_host() {
        let dir = tempfile::tempdir().expect("temp dir");
        up_until_this_host_answers(args(dir.path()), dir.path()).await;
    }

    /// With the default intervals (5 s collection, 10 s snapshots) the first node does not wait
    /// for the agent's next snapshot: the daemon reports within a second of starting, and the
    /// agent pushes a node it did not hold at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn up_shows_this_host_before_the_first_snapshot_interval() {
        let dir = tempfile::tempdir().expect("temp dir");
        let defaults = UpArgs {
            collect_interval: Duration::from_secs(5),
            snapshot_interval: Duration::from_secs(10),
            ..args(dir.path())
        };
        let took = up_until_this_host_answers(defaults, dir.path()).await;
        eprintln!("atlhyper up: this host on the dashboard API {took:?} after the start");
        assert!(
            took < Duration::from_secs(5),
            "the first node took {took:?}, as long as waiting for the next snapshot interval"
        );
    }

    /// Settings that cannot work are refused before anything is opened, naming the setting.
    #[tokio::test]
    async fn refuses_a_network_address_and_a_bad_node_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let open = UpArgs {
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            ..args(dir.path())
        };
        let err = up(open, std::future::pending(), None).await.unwrap_err();
        assert!(err.to_string().starts_with("ATLHYPER_LISTEN: "), "{err}");
        let bad_name = UpArgs {
            node_name: Some("Not_A_Node".to_owned()),
            ..args(dir.path())
        };
        let err = up(bad_name, std::future::pending(), None)
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("ATLHYPER_NODE_NAME: "), "{err}");
        assert!(!dir.path().join("data").exists(), "nothing was opened");
    }
}
