//! The PostgreSQL engine: a pool of connections (deadpool over tokio-postgres) to one database
//! that several masters may share.
//!
//! See [`PgStore`] for the layout, the partitioning of history and what the engine promises
//! when several processes use the database at once.

mod agents;
mod alerts;
mod audit;
mod commands;
mod fleet;
mod ids;
mod import;
mod metrics;
mod notify;
mod schema;
mod series;
mod tls;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use parking_lot::Mutex;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::error::{StoreError, StoreResult};

pub use fleet::{FLEET_CHANNEL, MAX_NOTIFY_PAYLOAD, PgSession};
pub use import::{ImportReport, ImportSource};
pub use schema::{COMPRESS_AFTER_NS, HistoryLayout, PG_SCHEMA_VERSION};

/// Settings of [`PgStore::connect_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections the pool opens. Default 16.
    pub max_connections: usize,
    /// How long a call waits for a free connection, and for a new one to be set up, before it
    /// fails with [`StoreError::Backend`]. Default 5 s.
    pub connect_timeout: Duration,
    /// The CA certificates (PEM) the database's certificate must chain to, for the URL's
    /// `sslmode=verify-ca|verify-full` (with `require`, it makes `require` check the chain, as
    /// libpq does). The URL's `sslrootcert=PATH` is the same; this wins. Default none.
    pub ca_file: Option<PathBuf>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            ca_file: None,
        }
    }
}

/// Every store trait over one PostgreSQL database (tokio-postgres, pooled by deadpool).
///
/// # Layout
/// Versioned migrations (table `atlhyper_schema`; see [`PG_SCHEMA_VERSION`]), applied under an
/// advisory lock, so masters starting together migrate once. Timestamps are `BIGINT`
/// nanoseconds since the epoch and numbers `DOUBLE PRECISION`, so answers are the SQLite
/// engine's to the nanosecond and the bit; names sort bytewise (`COLLATE "C"`).
/// - `node`: one id per (cluster, node). Rows are never deleted, so every process may cache
///   ids for ever.
/// - `latest`: one row per node (the snapshot as JSON text), upserted in one statement per batch.
/// - `history`: range-partitioned by day on the timestamp (`history_pYYYYMMDD`, created on first
///   use); primary key (node_id, ts) per partition makes appends idempotent. The retention prune
///   drops whole days and deletes rows only in the day the bound falls in. Where the
///   `timescaledb` extension is installed when the schema is first created, a compressed
///   hypertable instead ([`HistoryLayout`]).
/// - `command`: the queue; `take` leases rows with `FOR UPDATE SKIP LOCKED`, so masters taking
///   for the same cluster at once never hand out one command twice.
/// - `agent`, the alerting and notification tables and (version 2) `audit`: as in the SQLite
///   engine.
///
/// # Failures
/// A call that cannot get a connection (database down, restarting, unreachable) fails with
/// [`StoreError::Backend`] after at most [`PgOptions::connect_timeout`]; the pool reconnects by
/// itself once the database is back. A write is acknowledged only after its commit.
///
/// # TLS
/// Over rustls, with libpq's `sslmode` meanings (`disable`, `prefer` the default, `require`,
/// `verify-ca`, `verify-full`) and a CA from [`PgOptions::ca_file`] or the URL's
/// `sslrootcert=PATH`; see the table in the `tls` module's source. An error reaching the
/// database (refused, TLS handshake, certificate not trusted) names it (`host:port/dbname`).
pub struct PgStore {
    pool: Pool,
    /// Where the pool connects; sessions outside the pool ([`Self::session`]) too.
    config: tokio_postgres::Config,
    /// TLS for every connection; `None` for `sslmode=disable`.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// The database as errors name it: `host:port/dbname` (never the password).
    label: String,
    /// Ids of `node` rows known to this process, by cluster then node (see the `ids` module).
    node_ids: Arc<Mutex<HashMap<String, HashMap<String, i64>>>>,
    /// Ids of `series_node` rows, the same way.
    series_node_ids: Arc<Mutex<HashMap<String, HashMap<String, i64>>>>,
    /// Ids of `series_dict` rows by their encoded keys.
    series_dict_ids: Arc<Mutex<HashMap<Vec<u8>, i64>>>,
    /// History partitions (day numbers) known to exist.
    days: Arc<Mutex<HashSet<i64>>>,
    /// Whether `history` is a TimescaleDB hypertable (known after [`Self::migrate`]).
    hypertable: Arc<std::sync::atomic::AtomicBool>,
    /// Series key dictionaries by id (rows of `series_dict` never change).
    series_dicts: Arc<Mutex<HashMap<i64, Arc<crate::series::Dictionary>>>>,
}

impl std::fmt::Debug for PgStore {
    // The URL may hold a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname`) with
    /// default [`PgOptions`] and migrates its schema.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, &PgOptions::default()).await
    }

    /// [`Self::connect`] with `options`.
    pub async fn connect_with(url: &str, options: &PgOptions) -> StoreResult<Self> {
        let store = Self::lazy(url, options)?;
        store.migrate().await?;
        Ok(store)
    }

    /// A store over `url` that has not talked to the database yet: nothing is checked but the
    /// URL. Call [`Self::migrate`] before the first use (a master that starts while the
    /// database is down builds this, then migrates once it is reachable).
    pub fn lazy(url: &str, options: &PgOptions) -> StoreResult<Self> {
        let url = tls::split_url(url)?;
        let mut config: tokio_postgres::Config = url
            .url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("database URL: {e}")))?;
        let label = label_of(&config);
        // A key/value string keeps its own sslmode (tokio-postgres read it).
        let mode = if url.url.contains("://") {
            config.ssl_mode(url.mode.for_client());
            url.mode
        } else {
            match config.get_ssl_mode() {
                tokio_postgres::config::SslMode::Disable => tls::SslMode::Disable,
                tokio_postgres::config::SslMode::Require => tls::SslMode::Require,
                _ => tls::SslMode::Prefer,
            }
        };
        let ca_file = options.ca_file.as_deref().or(url.root_cert.as_deref());
        let tls = tls::connector(mode, ca_file, &label)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("atlhyper");
        }
        let manager_config = ManagerConfig {
            // A connection whose socket closed (database restarted) is dropped at once.
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            Some(tls) => Manager::from_config(config.clone(), tls.clone(), manager_config),
            None => Manager::from_config(config.clone(), NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::Invalid(format!("database pool: {e}")))?;
        Ok(Self {
            pool,
            config,
            tls,
            label,
            node_ids: Arc::default(),
            series_node_ids: Arc::default(),
            series_dict_ids: Arc::default(),
            days: Arc::default(),
            hypertable: Arc::default(),
            series_dicts: Arc::default(),
        })
    }

    /// Creates or upgrades the schema (idempotent; safe while other processes do the same).
    /// A database of a newer atlhyper-rs is refused with [`StoreError::Corrupt`].
    pub async fn migrate(&self) -> StoreResult<()> {
        let mut client = self.client().await?;
        let layout = schema::migrate(&mut client).await?;
        self.hypertable.store(
            layout == HistoryLayout::Hypertable,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    /// How `history` is laid out here (see [`HistoryLayout`]; asked of the database).
    pub async fn history_layout(&self) -> StoreResult<HistoryLayout> {
        let client = self.client().await?;
        schema::history_layout(&client).await
    }

    fn is_hypertable(&self) -> bool {
        self.hypertable.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One round trip to the database: `Ok` when it answers.
    pub async fn ping(&self) -> StoreResult<()> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(map_err)?;
        Ok(())
    }

    /// Whether a connection of the pool is encrypted (TLS), asked of the server.
    pub async fn connection_encrypted(&self) -> StoreResult<bool> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(row.get(0))
    }

    /// Whether the `timescaledb` extension is installed in this database.
    pub async fn timescaledb_installed(&self) -> StoreResult<bool> {
        let client = self.client().await?;
        schema::timescaledb_installed(&client).await
    }

    /// The names of the history partitions, oldest first (none for a hypertable: its chunks
    /// are TimescaleDB's).
    pub async fn history_partitions(&self) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        Ok(metrics::partitions(&client)
            .await?
            .into_iter()
            .map(|(_, name)| name)
            .collect())
    }

    /// A pooled connection.
    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(|e| self.pool_err(e))
    }

    /// Translates a pool error: the database could not be reached in time, or refused the
    /// connection (TLS, authentication); named.
    fn pool_err(&self, e: PoolError) -> StoreError {
        match e {
            PoolError::Backend(e) => self.connect_err(e),
            other => StoreError::Backend(format!("database {} unavailable: {other}", self.label)),
        }
    }

    /// An error of opening a connection, naming the database.
    fn connect_err(&self, e: tokio_postgres::Error) -> StoreError {
        match map_err(e) {
            StoreError::Backend(text) => {
                StoreError::Backend(format!("database {}: {text}", self.label))
            }
            other => other,
        }
    }
}

/// `host:port/dbname` of a configuration (the first host; a socket directory as its path).
fn label_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// Translates an engine error: full disk, corruption, text PostgreSQL cannot hold, the rest.
pub(crate) fn map_err(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        // "error performing TLS handshake" alone does not say why: the causes do.
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        return StoreError::Backend(text);
    };
    let text = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |db| db.message().to_owned());
    if *code == SqlState::DISK_FULL || *code == SqlState::OUT_OF_MEMORY {
        StoreError::Full(text)
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        StoreError::Corrupt(text)
    } else if *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
        || *code == SqlState::UNTRANSLATABLE_CHARACTER
    {
        // A NUL character: PostgreSQL text cannot hold it.
        StoreError::Invalid(text)
    } else {
        StoreError::Backend(format!("{text} (SQLSTATE {})", code.code()))
    }
}

/// `n` as a `BIGINT`.
fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored count back as `u64`; a negative one is `Corrupt`.
fn count(n: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} {n} is negative")))
}
