//! `atlhyper-agent`: the cluster agent. Receives node snapshots, keeps them per node, pushes
//! cluster snapshots to the master and answers its commands. Every setting is a flag and an
//! `AGENT_*` environment variable.

use std::process::ExitCode;

use atlhyper_agent::{AgentArgs, run_agent, terminated};
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "atlhyper-agent", version, about = "atlhyper-rs cluster agent")]
struct Cli {
    #[command(flatten)]
    agent: AgentArgs,
    /// Log filter (tracing EnvFilter syntax; RUST_LOG wins when set).
    #[arg(long, env = "AGENT_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let config = match cli.agent.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("atlhyper-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("atlhyper-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_agent(config, terminated())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atlhyper-agent: {e}");
            ExitCode::FAILURE
        }
    }
}
