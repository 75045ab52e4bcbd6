//! `atlhyper`: the whole system in one command.
//!
//! - `atlhyper up`: master + agent + this host's collector in one process, SQLite under
//!   `./atlhyper-data`, dashboard on http://127.0.0.1:8080 (loopback only: no tokens).
//! - `atlhyper master|agent|metrics ...`: the separate programs (`atlhyper-master`,
//!   `atlhyper-agent`, `atlhyper-metrics`), same flags and environment variables.

use std::process::ExitCode;

use atlhyper::up::{UpArgs, UpReady, up};
use atlhyper_agent::{
    AgentArgs, DaemonArgs, init_logging, run_agent, run_daemon, run_main, terminated,
};
use atlhyper_master::{MasterArgs, run_from_args};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "atlhyper",
    version,
    about = "atlhyper-rs: node and cluster metrics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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

/// `atlhyper up`, saying where the dashboard is once it listens.
async fn run_up(args: UpArgs) -> Result<(), String> {
    let (cluster_id, data_dir) = (args.cluster_id.clone(), args.data_dir.clone());
    let (ready, started) = tokio::sync::oneshot::channel::<UpReady>();
    let announce = async move {
        if let Ok(started) = started.await {
            println!(
                "atlhyper is up: dashboard and API on http://{}/",
                started.dashboard
            );
            println!(
                "  cluster {cluster_id:?}, node {:?}, data in {}; Ctrl-C to stop",
                started.node_name,
                data_dir.display()
            );
        }
    };
    let (result, ()) = tokio::join!(up(args, terminated(), Some(ready)), announce);
    result.map_err(|e| e.to_string())?;
    println!("atlhyper stopped");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Each part reads its own variable (ATLHYPER_, MASTER_, AGENT_, METRICS_LOG_LEVEL), the
    // same as its separate binary.
    let (log_level, log_format) = match &cli.command {
        Command::Up(args) => (&args.log_level, args.log_format),
        Command::Master(args) => (&args.log_level, args.log_format),
        Command::Agent(args) => (&args.log_level, args.log_format),
        Command::Metrics(args) => (&args.log_level, args.log_format),
    };
    init_logging(log_level, log_format);
    let work = async move {
        match cli.command {
            Command::Up(args) => run_up(args).await,
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
