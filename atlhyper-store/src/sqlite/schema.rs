//! The schema and its migrations.
//!
//! `PRAGMA application_id` marks a file as an atlhyper-rs database and `PRAGMA user_version` is the
//! number of migrations applied. Migration `n` (1-based) brings version `n - 1` to `n` in one
//! transaction that also sets `user_version`, so a crash mid-migration leaves the old version.
//!
//! The layout is described on [`SCHEMA_VERSION`].

use rusqlite::{Connection, TransactionBehavior};

use super::map_err;
use crate::error::{StoreError, StoreResult};

/// `PRAGMA application_id` of an atlhyper-rs database ("ATLH").
pub const APPLICATION_ID: i32 = 0x4154_4C48;

/// The migrations, in order; `user_version` is how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: first schema.
    "
    CREATE TABLE node (
        id INTEGER PRIMARY KEY,
        cluster_id TEXT NOT NULL,
        node_name TEXT NOT NULL,
        UNIQUE (cluster_id, node_name)
    );
    CREATE TABLE latest (
        node_id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        snapshot TEXT NOT NULL
    );
    CREATE TABLE history (
        node_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        cpu_usage REAL NOT NULL,
        memory_usage REAL NOT NULL,
        disk_usage REAL NOT NULL,
        disk_io_read REAL NOT NULL,
        disk_io_write REAL NOT NULL,
        network_rx REAL NOT NULL,
        network_tx REAL NOT NULL,
        cpu_temp REAL NOT NULL,
        load_1 REAL NOT NULL,
        PRIMARY KEY (node_id, ts)
    ) WITHOUT ROWID;
    CREATE TABLE command (
        command_id TEXT PRIMARY KEY NOT NULL,
        cluster_id TEXT NOT NULL,
        action TEXT NOT NULL,
        target_kind TEXT NOT NULL,
        target_namespace TEXT NOT NULL,
        target_name TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        deadline INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        lease_until INTEGER,
        result TEXT
    );
    CREATE INDEX command_take ON command (cluster_id, status, created_at, command_id);
    CREATE INDEX command_newest ON command (created_at, command_id);
    CREATE INDEX command_open_deadline ON command (deadline)
        WHERE status IN ('pending', 'running');
    CREATE TABLE agent (
        cluster_id TEXT PRIMARY KEY NOT NULL,
        agent_version TEXT NOT NULL,
        remote_addr TEXT NOT NULL,
        last_heartbeat INTEGER,
        last_snapshot INTEGER
    ) WITHOUT ROWID;
    ",
    // 2: finished commands by finish time, for the command retention prune.
    "
    CREATE INDEX command_finished ON command (finished_at)
        WHERE status IN ('success', 'failed', 'timeout');
    ",
    // 3: alerting (rules, running alerts, history of resolved alerts).
    "
    CREATE TABLE alert_rule (
        name TEXT PRIMARY KEY NOT NULL,
        body TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE alert_active (
        fingerprint TEXT PRIMARY KEY NOT NULL,
        alert TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE alert_history (
        at INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        rule TEXT NOT NULL,
        cluster TEXT NOT NULL,
        alert TEXT NOT NULL,
        PRIMARY KEY (at, fingerprint)
    ) WITHOUT ROWID;
    CREATE INDEX alert_history_rule ON alert_history (rule, at);
    CREATE INDEX alert_history_cluster ON alert_history (cluster, at);
    ",
    // 4: alert notification: silences, what was last sent per receiver and group, delivery log.
    "
    CREATE TABLE silence (
        id TEXT PRIMARY KEY NOT NULL,
        matchers TEXT NOT NULL,
        starts_at INTEGER NOT NULL,
        ends_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        comment TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE notified_group (
        receiver TEXT NOT NULL,
        group_key TEXT NOT NULL,
        firing TEXT NOT NULL,
        resolved TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        PRIMARY KEY (receiver, group_key)
    ) WITHOUT ROWID;
    CREATE TABLE notification (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        receiver TEXT NOT NULL,
        group_key TEXT NOT NULL,
        firing INTEGER NOT NULL,
        resolved INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        result TEXT NOT NULL,
        error TEXT NOT NULL
    );
    CREATE INDEX notification_at ON notification (at);
    ",
    // 5: series of every figure (see the `series` module): their own node ids (never deleted,
    // so ids are never reused under old rows), shared key dictionaries, one row per node, tier
    // and interval.
    "
    CREATE TABLE series_node (
        id INTEGER PRIMARY KEY,
        cluster_id TEXT NOT NULL,
        node_name TEXT NOT NULL,
        UNIQUE (cluster_id, node_name)
    );
    CREATE TABLE series_dict (
        id INTEGER PRIMARY KEY,
        keys BLOB NOT NULL UNIQUE
    );
    CREATE TABLE series (
        node_id INTEGER NOT NULL,
        tier INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        dict_id INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (node_id, tier, ts)
    ) WITHOUT ROWID;
    ",
    // 6: the audit log of operator writes.
    "
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        source TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        status INTEGER NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_at ON audit (at);
    CREATE INDEX audit_action ON audit (action, at);
    ",
];

/// The schema version this build writes (`PRAGMA user_version`).
///
/// Layout (version 6):
/// - `node`: one integer id per (cluster, node), unique on (cluster_id, node_name). History rows
///   carry the id instead of two strings.
/// - `latest`: the latest snapshot per node, as JSON, with its timestamp.
/// - `history`: one row per point, `WITHOUT ROWID` with primary key (node_id, ts): the index for
///   (cluster, node, timestamp) range reads, and what makes appends idempotent
///   (`INSERT OR IGNORE`). Timestamps are `INTEGER` nanoseconds since the epoch, numbers `REAL`.
/// - `command`: the command queue, indexed for `take` (cluster, status, created_at), the newest
///   first listing, `expire` (deadline of open commands) and, since version 2, the retention
///   prune (finish time of finished commands).
/// - `agent`: one row per cluster.
/// - since version 3, alerting: `alert_rule` (one row per stored rule, its body as JSON),
///   `alert_active` (the engine's pending and firing alerts as JSON, by fingerprint) and
///   `alert_history` (resolved alerts, primary key (at, fingerprint), so appends are idempotent
///   and newest-first reads walk the key; indexed by rule and by cluster).
/// - `silence` (version 4): one row per silence, its matchers as JSON.
/// - `notified_group` (version 4): per (receiver, group key) the fingerprints last sent (JSON
///   arrays) and when; the notification de-duplication survives a restart through it.
/// - `notification` (version 4): the delivery log, indexed by time for the newest-first listing
///   and the prune.
/// - `series_node`, `series_dict`, `series` (version 5): the series store. `series_node` gives
///   each (cluster, node) an id that is never deleted; `series_dict` holds each distinct key list
///   of a row once (figure ids and device names); `series` has one row per (node, tier,
///   interval start in unix ms), `WITHOUT ROWID`, with its dictionary id, sample count and the
///   encoded (min, avg, max) values.
/// - `audit` (version 6): the audit log, one row per operator write; the rowid keeps the order
///   of equal times; indexed by time (listing, prune) and by action.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Refuses a file that is not ours or is newer, switches to WAL and migrates.
pub(super) fn check_and_migrate(conn: &mut Connection) -> StoreResult<()> {
    // The first read of the file: a file that is not SQLite fails here with NOTADB.
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| not_ours(map_err(e)))?;
    let version: i32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(map_err)?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| not_ours(map_err(e)))?;

    if app_id != APPLICATION_ID && (app_id != 0 || version != 0 || objects != 0) {
        return Err(StoreError::Corrupt(format!(
            "not an atlhyper-rs database (application_id {app_id:#x}, user_version {version}, \
             {objects} schema objects); refusing to touch it"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this build's {SCHEMA_VERSION}; \
             upgrade atlhyper-rs"
        )));
    }
    if version < 0 {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is invalid"
        )));
    }

    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(map_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "cannot switch the database to WAL (journal_mode is {mode})"
        )));
    }
    // Keep the WAL from staying huge after a burst (bytes).
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(map_err)?;

    for (done, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        tx.execute_batch(sql).map_err(map_err)?;
        tx.pragma_update(None, "user_version", done as i32 + 1)
            .map_err(map_err)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(map_err)?;
        tx.commit().map_err(map_err)?;
    }
    Ok(())
}

/// A file SQLite cannot read at all is not a database of ours: say so.
fn not_ours(e: StoreError) -> StoreError {
    match e {
        StoreError::Corrupt(msg) => {
            StoreError::Corrupt(format!("not an SQLite database, or a corrupt one ({msg})"))
        }
        other => other,
    }
}
