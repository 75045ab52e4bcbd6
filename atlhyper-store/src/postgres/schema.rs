//! The PostgreSQL schema and its migrations.
//!
//! Table `atlhyper_schema` holds one row: how many migrations ran. Migration `n` (1-based)
//! brings version `n - 1` to `n` in the transaction that records it; every run holds a
//! transaction-scoped advisory lock, so processes starting together migrate one after the other.

use deadpool_postgres::{GenericClient, Object};

use super::map_err;
use crate::error::{StoreError, StoreResult};

/// Advisory lock key of migrations ("ATLH" and 1).
const MIGRATION_LOCK: i64 = 0x4154_4C48_0000_0001;

/// The migrations, in order.
const MIGRATIONS: &[&str] = &[
    // 1: first schema (the SQLite engine's version 4, history partitioned by day).
    r#"
    CREATE TABLE node (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        cluster_id TEXT COLLATE "C" NOT NULL,
        node_name TEXT COLLATE "C" NOT NULL,
        UNIQUE (cluster_id, node_name)
    );
    CREATE TABLE latest (
        node_id BIGINT PRIMARY KEY,
        ts BIGINT NOT NULL,
        -- lz4, not the default pglz: a batch of 1000 snapshots of 5 to 10 KiB each is
        -- compressed in the upsert's time (see the crate's benches).
        snapshot TEXT COMPRESSION lz4 NOT NULL
    );
    CREATE INDEX latest_ts ON latest (ts);
    CREATE TABLE history (
        node_id BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        cpu_usage DOUBLE PRECISION NOT NULL,
        memory_usage DOUBLE PRECISION NOT NULL,
        disk_usage DOUBLE PRECISION NOT NULL,
        disk_io_read DOUBLE PRECISION NOT NULL,
        disk_io_write DOUBLE PRECISION NOT NULL,
        network_rx DOUBLE PRECISION NOT NULL,
        network_tx DOUBLE PRECISION NOT NULL,
        cpu_temp DOUBLE PRECISION NOT NULL,
        load_1 DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (node_id, ts)
    ) PARTITION BY RANGE (ts);
    CREATE TABLE command (
        command_id TEXT COLLATE "C" PRIMARY KEY,
        cluster_id TEXT COLLATE "C" NOT NULL,
        action TEXT COLLATE "C" NOT NULL,
        target_kind TEXT NOT NULL,
        target_namespace TEXT NOT NULL,
        target_name TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        deadline BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        lease_until BIGINT,
        result TEXT
    );
    CREATE INDEX command_take ON command (cluster_id, status, created_at, command_id);
    CREATE INDEX command_newest ON command (created_at, command_id);
    CREATE INDEX command_open_deadline ON command (deadline)
        WHERE status IN ('pending', 'running');
    CREATE INDEX command_finished ON command (finished_at)
        WHERE status IN ('success', 'failed', 'timeout');
    CREATE TABLE agent (
        cluster_id TEXT COLLATE "C" PRIMARY KEY,
        agent_version TEXT NOT NULL,
        remote_addr TEXT NOT NULL,
        last_heartbeat BIGINT,
        last_snapshot BIGINT
    );
    CREATE TABLE alert_rule (
        name TEXT COLLATE "C" PRIMARY KEY,
        body TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE alert_active (
        fingerprint TEXT COLLATE "C" PRIMARY KEY,
        alert TEXT NOT NULL
    );
    CREATE TABLE alert_history (
        at BIGINT NOT NULL,
        fingerprint TEXT COLLATE "C" NOT NULL,
        rule TEXT COLLATE "C" NOT NULL,
        cluster TEXT COLLATE "C" NOT NULL,
        alert TEXT NOT NULL,
        PRIMARY KEY (at, fingerprint)
    );
    CREATE INDEX alert_history_rule ON alert_history (rule, at);
    CREATE INDEX alert_history_cluster ON alert_history (cluster, at);
    CREATE TABLE silence (
        id TEXT COLLATE "C" PRIMARY KEY,
        matchers TEXT NOT NULL,
        starts_at BIGINT NOT NULL,
        ends_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        comment TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE notified_group (
        receiver TEXT COLLATE "C" NOT NULL,
        group_key TEXT COLLATE "C" NOT NULL,
        firing TEXT NOT NULL,
        resolved TEXT NOT NULL,
        sent_at BIGINT NOT NULL,
        PRIMARY KEY (receiver, group_key)
    );
    CREATE TABLE notification (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at BIGINT NOT NULL,
        receiver TEXT NOT NULL,
        group_key TEXT NOT NULL,
        firing BIGINT NOT NULL,
        resolved BIGINT NOT NULL,
        attempts BIGINT NOT NULL,
        result TEXT NOT NULL,
        error TEXT NOT NULL
    );
    CREATE INDEX notification_at ON notification (at);
    "#,
    // 2: series of every figure (the SQLite engine's version 5).
    r#"
    CREATE TABLE series_node (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        cluster_id TEXT COLLATE "C" NOT NULL,
        node_name TEXT COLLATE "C" NOT NULL,
        UNIQUE (cluster_id, node_name)
    );
    CREATE TABLE series_dict (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        keys BYTEA NOT NULL UNIQUE
    );
    CREATE TABLE series (
        node_id BIGINT NOT NULL,
        tier SMALLINT NOT NULL,
        ts BIGINT NOT NULL,
        dict_id BIGINT NOT NULL,
        samples INTEGER NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (node_id, tier, ts)
    );
    "#,
    // 3: the audit log of operator writes (the SQLite engine's version 6).
    r#"
    CREATE TABLE audit (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        source TEXT NOT NULL,
        action TEXT COLLATE "C" NOT NULL,
        target TEXT NOT NULL,
        status INTEGER NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_at ON audit (at);
    CREATE INDEX audit_action ON audit (action, at);
    "#,
    // 4: latest rows updated in place. Without an index on ts, an upsert changes no indexed
    // column, so with free room on the page (fillfactor 50) it is a HOT update: no index
    // entry written, the dead version pruned on the page. STORAGE MAIN keeps the compressed
    // snapshot in the row instead of the TOAST table (one heap write instead of three). The
    // retirement's `ts < bound` scans the table; it runs on the leader every few minutes.
    r#"
    DROP INDEX latest_ts;
    ALTER TABLE latest SET (fillfactor = 50);
    ALTER TABLE latest ALTER COLUMN snapshot SET STORAGE MAIN;
    "#,
];

/// The schema version this build writes.
///
/// Version 1: the tables of the SQLite engine's version 4 (see [`crate::SCHEMA_VERSION`]), with
/// `history` range-partitioned by day on `ts` (nanoseconds): one partition per UTC day,
/// `history_pYYYYMMDD`, created by the first write of a point of that day.
///
/// Version 2: the series tables of the SQLite engine's version 5 (`series_node`, `series_dict`,
/// `series`; timestamps of series rows are unix milliseconds, values encoded `BYTEA`).
/// Version 3: the `audit` table of the SQLite engine's version 6.
/// Version 4: `latest` without its `ts` index, fillfactor 50, snapshots stored in the row
/// (HOT upserts).
pub const PG_SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// How `history` is laid out: chosen once, when the schema is first created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryLayout {
    /// Native range partitions, one per UTC day (`history_pYYYYMMDD`); the retention prune
    /// drops whole days.
    NativePartitions,
    /// A TimescaleDB hypertable (chunks of one day on `ts`), compressed by a policy after
    /// [`COMPRESS_AFTER_NS`], segmented by node; the retention prune drops whole chunks
    /// (`drop_chunks`). Chosen when the `timescaledb` extension is installed in the database
    /// when the schema is first created.
    Hypertable,
}

/// Age after which a hypertable chunk of history is compressed: two days (an agent's backfill
/// reaches minutes back, so writes into compressed chunks stay rare).
pub const COMPRESS_AFTER_NS: i64 = 2 * 86_400 * 1_000_000_000;

/// Replaces the empty partitioned `history` of a fresh schema with a hypertable.
fn hypertable_sql() -> String {
    format!(
        r#"
    DROP TABLE history;
    CREATE TABLE history (
        node_id BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        cpu_usage DOUBLE PRECISION NOT NULL,
        memory_usage DOUBLE PRECISION NOT NULL,
        disk_usage DOUBLE PRECISION NOT NULL,
        disk_io_read DOUBLE PRECISION NOT NULL,
        disk_io_write DOUBLE PRECISION NOT NULL,
        network_rx DOUBLE PRECISION NOT NULL,
        network_tx DOUBLE PRECISION NOT NULL,
        cpu_temp DOUBLE PRECISION NOT NULL,
        load_1 DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (node_id, ts)
    );
    SELECT create_hypertable('history', 'ts', chunk_time_interval => 86400000000000::bigint);
    -- Integer time needs a "now" for the policies: nanoseconds since the epoch.
    CREATE FUNCTION atlhyper_now_ns() RETURNS BIGINT LANGUAGE SQL STABLE
        AS $$ SELECT (extract(epoch FROM now()) * 1000000000)::bigint $$;
    SELECT set_integer_now_func('history', 'atlhyper_now_ns');
    ALTER TABLE history SET (
        timescaledb.compress,
        timescaledb.compress_segmentby = 'node_id',
        timescaledb.compress_orderby = 'ts'
    );
    SELECT add_compression_policy('history', compress_after => {COMPRESS_AFTER_NS}::bigint);
    "#
    )
}

/// Whether the `timescaledb` extension is installed in the connected database (an operator's
/// `CREATE EXTENSION timescaledb`; it needs `shared_preload_libraries`, so it is never created
/// here).
pub(super) async fn timescaledb_installed(client: &impl GenericClient) -> StoreResult<bool> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
            &[],
        )
        .await
        .map_err(map_err)?;
    Ok(row.get(0))
}

/// The layout `history` has in the connected database.
pub(super) async fn history_layout(client: &impl GenericClient) -> StoreResult<HistoryLayout> {
    if !timescaledb_installed(client).await? {
        return Ok(HistoryLayout::NativePartitions);
    }
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                            WHERE hypertable_name = 'history')",
            &[],
        )
        .await
        .map_err(map_err)?;
    Ok(if row.get(0) {
        HistoryLayout::Hypertable
    } else {
        HistoryLayout::NativePartitions
    })
}

/// Creates the version table if missing, refuses a newer schema, runs what is missing; the
/// layout `history` ended up with.
pub(super) async fn migrate(client: &mut Object) -> StoreResult<HistoryLayout> {
    let tx = client.transaction().await.map_err(map_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(map_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS atlhyper_schema (version INTEGER NOT NULL);
         INSERT INTO atlhyper_schema (version)
             SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM atlhyper_schema);",
    )
    .await
    .map_err(map_err)?;
    let version: i32 = tx
        .query_one("SELECT version FROM atlhyper_schema", &[])
        .await
        .map_err(map_err)?
        .get(0);
    if version > PG_SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this build's {PG_SCHEMA_VERSION}; \
             upgrade atlhyper-rs"
        )));
    }
    if version < 0 {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is invalid"
        )));
    }
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).await.map_err(map_err)?;
        // A fresh schema where TimescaleDB is installed: history becomes a hypertable (an
        // existing database keeps the layout it has; its rows are never moved).
        if done == 0 && timescaledb_installed(&tx).await? {
            tx.batch_execute(&hypertable_sql()).await.map_err(map_err)?;
        }
        let now = done as i32 + 1;
        tx.execute("UPDATE atlhyper_schema SET version = $1", &[&now])
            .await
            .map_err(map_err)?;
    }
    let layout = history_layout(&tx).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(layout)
}
