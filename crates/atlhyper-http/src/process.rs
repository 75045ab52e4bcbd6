//! What every atlhyper-rs binary does around its work: logging, a runtime, the signals that end
//! it, and the exit code. (`atlhyper-metrics`, `atlhyper-agent`, `atlhyper-master` and `atlhyper`
//! share these, so they start, log and stop alike.)

use std::fmt::Display;
use std::future::Future;
use std::io::IsTerminal as _;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// Completes on SIGTERM or SIGINT (Ctrl-C): the shutdown future the binaries pass in.
pub async fn terminated() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// How log lines are written (`--log-format`, the same flag on every binary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`, `span`), for log
    /// collectors that index fields.
    Json,
}

/// Installs the tracing subscriber writing `format` to stdout: the `RUST_LOG` filter when set,
/// else `level` (EnvFilter syntax, e.g. `info` or `atlhyper_agent=debug`), else `info` when
/// `level` does not parse.
pub fn init_logging(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        // Colour codes only for a person at a terminal: a log file, journald or `kubectl logs`
        // would show them as `[2m...[0m` noise.
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// Builds a runtime from `runtime` (with IO and timers enabled), runs `work` to completion on it
/// and turns the outcome into the exit code: success, or `program: error` on stderr and failure.
pub fn run_main<E: Display>(
    program: &str,
    mut runtime: tokio::runtime::Builder,
    work: impl Future<Output = Result<(), E>>,
) -> ExitCode {
    let runtime = match runtime.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{program}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}
