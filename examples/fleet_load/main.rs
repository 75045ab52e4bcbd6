//! Load generator standing in for the agents of a fleet: N clusters of M simulated nodes, each
//! cluster pushing its snapshot every interval to a list of masters (round-robin per cluster,
//! failing over as the agent does). Prints a progress line to stderr every minute and, at the
//! end, a JSON report on stdout: acknowledged pushes, errors, push latency p50/p99.
//!
//! ```sh
//! cargo build --release --example fleet_load
//! target/release/examples/fleet_load --masters http://127.0.0.1:8080,http://127.0.0.1:8081 \
//!     --clusters 100 --nodes 100 --interval 10s --duration 10m \
//!     --token-prefix fleet-load-token-
//! ```
//!
//! With `--token-prefix P`, cluster `fleet-007` sends the token `Pfleet-007`; give the masters
//! `MASTER_AGENT_TOKENS=Pfleet-000=fleet-000,...` (deploy/measure-fleet.sh does).

mod generator;

use std::time::Duration;

use atlhyper::model::{parse_duration, parse_positive_duration};
use clap::Parser;
use generator::{LoadConfig, run};
use tokio_util::sync::CancellationToken;

fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

fn positive_duration_arg(text: &str) -> Result<Duration, String> {
    parse_positive_duration(text).map_err(|e| e.to_string())
}

/// Pushes simulated cluster snapshots to masters as a fleet of agents would.
#[derive(Debug, Parser)]
#[command(name = "fleet_load")]
struct Args {
    /// Master base URLs, comma-separated.
    #[arg(long, env = "FLEET_MASTERS")]
    masters: String,
    /// Clusters.
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Time between two snapshots of one cluster.
    #[arg(long, default_value = "10s", value_parser = positive_duration_arg)]
    interval: Duration,
    /// How long to push.
    #[arg(long, default_value = "60s", value_parser = positive_duration_arg)]
    duration: Duration,
    /// Time between two heartbeats of one cluster.
    #[arg(long, default_value = "15s", value_parser = positive_duration_arg)]
    heartbeat_interval: Duration,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = positive_duration_arg)]
    request_timeout: Duration,
    /// Cluster ids: this prefix and a three-digit number.
    #[arg(long, default_value = "fleet-")]
    cluster_prefix: String,
    /// Bearer token of each cluster: this prefix and the cluster id (none when not given).
    #[arg(long, env = "FLEET_TOKEN_PREFIX", hide_env_values = true)]
    token_prefix: Option<String>,
    /// Seed of the simulated figures.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Time between progress lines on stderr; 0 for none.
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    progress_every: Duration,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.clusters == 0 || args.nodes == 0 {
        eprintln!("fleet_load: --clusters and --nodes must be at least 1");
        return std::process::ExitCode::from(2);
    }
    let config = LoadConfig {
        masters: args.masters,
        clusters: args.clusters,
        nodes: args.nodes,
        interval: args.interval,
        duration: args.duration,
        heartbeat_interval: args.heartbeat_interval,
        request_timeout: args.request_timeout,
        cluster_prefix: args.cluster_prefix,
        token_prefix: args.token_prefix,
        seed: args.seed,
        progress_every: Some(args.progress_every).filter(|d| !d.is_zero()),
    };
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    match run(config, stop).await {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fleet_load: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
