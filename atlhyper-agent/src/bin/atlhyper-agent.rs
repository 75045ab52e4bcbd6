//! `atlhyper-agent`: the cluster agent. Receives node snapshots, keeps them per node, pushes
//! cluster snapshots to the master and answers its commands. Every setting is a flag and an
//! `AGENT_*` environment variable.

use std::process::ExitCode;

use atlhyper_agent::{AgentArgs, init_logging, run_agent, run_main, terminated};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "atlhyper-agent", version, about = "atlhyper-rs cluster agent")]
struct Cli {
    #[command(flatten)]
    agent: AgentArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.agent.log_level, cli.agent.log_format);
    let config = match cli.agent.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("atlhyper-agent: {e}");
            return ExitCode::from(2);
        }
    };
    run_main(
        "atlhyper-agent",
        tokio::runtime::Builder::new_multi_thread(),
        run_agent(config, terminated()),
    )
}
