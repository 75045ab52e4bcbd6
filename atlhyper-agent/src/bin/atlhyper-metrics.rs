//! `atlhyper-metrics`: the node daemon. Collects this node's metrics every interval and pushes
//! them to the cluster agent. Every setting is a flag and a `METRICS_*` environment variable.

use std::process::ExitCode;

use atlhyper_agent::{DaemonArgs, init_logging, run_daemon, run_main, terminated};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "atlhyper-metrics",
    version,
    about = "atlhyper-rs node metrics daemon"
)]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.daemon.log_level, cli.daemon.log_format);
    let config = match cli.daemon.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("atlhyper-metrics: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread is plenty for one request every few seconds; collection runs on one blocking
    // thread.
    let mut runtime = tokio::runtime::Builder::new_current_thread();
    runtime.max_blocking_threads(2);
    run_main(
        "atlhyper-metrics",
        runtime,
        run_daemon(config, terminated()),
    )
}
