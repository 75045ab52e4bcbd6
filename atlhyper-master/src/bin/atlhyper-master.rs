//! `atlhyper-master`: the master. Takes the agents' snapshots, keeps history in SQLite, serves the
//! REST API, the dashboard and Prometheus `/metrics`. Every setting is a flag and a `MASTER_*`
//! environment variable (`atlhyper-master --help`).

use std::process::ExitCode;

use atlhyper_http::{init_logging, run_main, terminated};
use atlhyper_master::{MasterArgs, run_from_args};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "atlhyper-master", version, about = "atlhyper-rs master")]
struct Cli {
    #[command(flatten)]
    master: MasterArgs,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Copy an SQLite database into PostgreSQL (latest, history, commands, agents, alert
    /// rules and silences); safe to run twice.
    #[cfg(feature = "postgres")]
    Migrate(atlhyper_master::migrate::MigrateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(feature = "postgres")]
    if let Some(Sub::Migrate(args)) = &cli.command {
        init_logging(&cli.master.log_level, cli.master.log_format);
        return run_main(
            "atlhyper-master migrate",
            tokio::runtime::Builder::new_multi_thread(),
            async {
                let report = atlhyper_master::migrate::migrate(args).await?;
                println!("migrated: {report}");
                Ok::<(), atlhyper_master::MasterError>(())
            },
        );
    }
    init_logging(&cli.master.log_level, cli.master.log_format);
    run_main(
        "atlhyper-master",
        tokio::runtime::Builder::new_multi_thread(),
        run_from_args(&cli.master, terminated()),
    )
}
