//! `atlhyper-master`: the master. Takes the agents' snapshots, keeps history in SQLite, serves the
//! REST API, the dashboard and Prometheus `/metrics`. Every setting is a flag and a `MASTER_*`
//! environment variable (`atlhyper-master --help`).

use std::process::ExitCode;

use atlhyper_master::{MasterArgs, run_from_args};
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "atlhyper-master", version, about = "atlhyper-rs master")]
struct Cli {
    #[command(flatten)]
    master: MasterArgs,
    /// Log filter (tracing EnvFilter syntax; RUST_LOG wins when set).
    #[arg(long, env = "MASTER_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

/// Completes on ctrl-c or SIGTERM.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("atlhyper-master: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_from_args(&cli.master, terminated())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atlhyper-master: {e}");
            ExitCode::FAILURE
        }
    }
}
