//! `atlhyper-metrics`: the node daemon. Collects this node's metrics every interval and pushes
//! them to the cluster agent. Every setting is a flag and a `METRICS_*` environment variable.

use std::process::ExitCode;

use atlhyper_agent::{DaemonArgs, run_daemon, terminated};
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "atlhyper-metrics",
    version,
    about = "atlhyper-rs node metrics daemon"
)]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Log filter (tracing EnvFilter syntax; RUST_LOG wins when set).
    #[arg(long, env = "METRICS_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let config = match cli.daemon.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("atlhyper-metrics: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread is plenty for one request every few seconds; collection runs on one blocking
    // thread.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("atlhyper-metrics: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_daemon(config, terminated())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atlhyper-metrics: {e}");
            ExitCode::FAILURE
        }
    }
}
