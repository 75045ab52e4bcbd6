//! `atlhyper-master migrate --from sqlite://PATH --to postgres://...`: copies an SQLite
//! database of the master into PostgreSQL (see [`atlhyper_store::PgStore::import_from`]: latest
//! snapshots, history, commands, the agent registry, alert rules, running alerts, silences, the
//! audit log and the series store).
//! Safe to run twice; what PostgreSQL already holds is kept.

use std::path::PathBuf;
use std::sync::Arc;

use atlhyper_store::{ImportReport, PgStore, SqliteStore};

use crate::config::ConfigError;
use crate::error::MasterError;

/// Flags of `atlhyper-master migrate`.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// The SQLite database to copy: `sqlite://PATH` (relative or absolute path).
    #[arg(long)]
    pub from: String,
    /// The PostgreSQL database to copy into: `postgres://user:password@host:port/dbname`
    /// (its schema is created or upgraded first).
    #[arg(long, env = "MASTER_DB_URL", hide_env_values = true)]
    pub to: String,
    /// CA certificates (PEM) for `sslmode=verify-ca|verify-full` in `--to`.
    #[arg(long, env = "MASTER_DB_CA_FILE")]
    pub db_ca_file: Option<PathBuf>,
}

/// The path of a `sqlite://PATH` URL.
fn sqlite_path(from: &str) -> Result<PathBuf, ConfigError> {
    match from.strip_prefix("sqlite://") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(ConfigError::new(
            "--from",
            format!("{from:?} is not sqlite://PATH"),
        )),
    }
}

/// Copies `args.from` into `args.to`; what it read and wrote.
pub async fn migrate(args: &MigrateArgs) -> Result<ImportReport, MasterError> {
    let path = sqlite_path(&args.from)?;
    if !args.to.starts_with("postgres://") && !args.to.starts_with("postgresql://") {
        return Err(ConfigError::new("--to", "must be a postgres:// URL").into());
    }
    if !path.is_file() {
        return Err(ConfigError::new("--from", format!("{} is not a file", path.display())).into());
    }
    let source = tokio::task::spawn_blocking(move || SqliteStore::open(path))
        .await
        .map_err(|_| MasterError::Task("opening the SQLite database"))??;
    let source = Arc::new(source);
    let options = atlhyper_store::PgOptions {
        ca_file: args.db_ca_file.clone(),
        ..atlhyper_store::PgOptions::default()
    };
    let target = PgStore::connect_with(&args.to, &options).await?;
    let report = target.import_from(&*source).await?;
    if let Ok(source) = Arc::try_unwrap(source) {
        tokio::task::spawn_blocking(move || source.close())
            .await
            .map_err(|_| MasterError::Task("closing the SQLite database"))??;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sqlite_urls_with_a_path_are_sources() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/a.db").unwrap(),
            PathBuf::from("/var/lib/a.db")
        );
        assert_eq!(
            sqlite_path("sqlite://data/a.db").unwrap(),
            PathBuf::from("data/a.db")
        );
        assert!(sqlite_path("sqlite://").is_err());
        assert!(sqlite_path("/var/lib/a.db").is_err());
        assert!(sqlite_path("postgres://x").is_err());
    }
}
