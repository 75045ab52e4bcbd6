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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.master.log_level, cli.master.log_format);
    run_main(
        "atlhyper-master",
        tokio::runtime::Builder::new_multi_thread(),
        run_from_args(&cli.master, terminated()),
    )
}
