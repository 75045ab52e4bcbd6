//! Storage for the atlhyper-rs master: narrow traits, one per concern, and two engines.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use atlhyper_model::{MetricsDataPoint, NodeMetricsSnapshot};
//! use atlhyper_store::{HistoryQuery, MemoryStore, MetricsStore, SqliteStore};
//! use chrono::{TimeDelta, TimeZone, Utc};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! // Both engines implement the same traits; the master holds them as `Arc<dyn ...>`.
//! let engines: [Arc<dyn MetricsStore>; 2] = [
//!     Arc::new(MemoryStore::new()),
//!     Arc::new(SqliteStore::open(dir.path().join("atlhyper.db")).unwrap()),
//! ];
//! let start = Utc.with_ymd_and_hms(2024, 1, 20, 0, 0, 0).unwrap();
//! for store in engines {
//!     let mut snapshot = NodeMetricsSnapshot::default();
//!     snapshot.node_name = "worker-1".to_owned();
//!     snapshot.timestamp = start;
//!     store.upsert_latest("prod", &[snapshot.clone()]).await.unwrap();
//!
//!     // A day of 5-minute points; appending them twice adds nothing.
//!     let points: Vec<MetricsDataPoint> = (0..288)
//!         .map(|i| MetricsDataPoint {
//!             timestamp: start + TimeDelta::minutes(5 * i),
//!             cpu_usage: i as f64,
//!             ..MetricsDataPoint::from_snapshot(&snapshot)
//!         })
//!         .collect();
//!     assert_eq!(store.append_history("prod", &points).await.unwrap(), 288);
//!     assert_eq!(store.append_history("prod", &points).await.unwrap(), 0);
//!
//!     // The chart: at most 24 points, each the mean of its hour.
//!     let chart = store
//!         .history(&HistoryQuery {
//!             cluster_id: "prod".to_owned(),
//!             node_name: "worker-1".to_owned(),
//!             from: start,
//!             to: start + TimeDelta::days(1) - TimeDelta::nanoseconds(1),
//!             max_points: Some(24),
//!         })
//!         .await
//!         .unwrap();
//!     assert_eq!(chart.len(), 24);
//!     assert_eq!(chart[0].cpu_usage, 5.5); // mean of 0..=11
//!     assert_eq!(store.list_nodes("prod").await.unwrap(), ["worker-1"]);
//! }
//! # });
//! ```
//!
//! - [`MetricsStore`]: the latest snapshot per (cluster, node) and the history of
//!   [`MetricsDataPoint`](atlhyper_model::MetricsDataPoint)s; latest snapshots leave on their own
//!   ([`MetricsStore::retire_latest`]) or on request (a node, a whole cluster) while history
//!   stays until the retention prune.
//! - [`CommandQueue`]: commands for agents, with leases so a command taken by an agent that died
//!   is offered again.
//! - [`AgentRegistry`]: when each cluster's agent was last heard from (and forgetting one).
//! - [`AlertStore`]: alert rules, the rule engine's running alerts (pending ones with the time
//!   they started, so a restart keeps a running `for`) and the history of resolved alerts.
//! - [`SeriesStore`]: every figure of every node as (min, avg, max) per interval, in tiers
//!   (tier 0 at the history interval, tier 1 hourly, rolled up by [`roll_up`]), compactly
//!   encoded (see the `series` module).
//! - [`NotifyStore`]: alert silences and the notification log (what was sent to whom, so a
//!   restart does not notify again).
//! - [`AuditLog`]: who wrote what through the master's API, from where, and how it ended.
//!
//! Every trait is object safe (`Arc<dyn MetricsStore>`) and async where an engine blocks; the
//! binaries wire a concrete engine in. Errors are [`StoreError`]; engine types never leak.
//!
//! # Engines
//! - [`MemoryStore`]: maps behind `parking_lot` locks; nothing survives the process.
//! - [`SqliteStore`]: one SQLite file in WAL mode, with its own writer and reader threads so no
//!   SQLite call ever runs on the async runtime's workers; `synchronous = FULL` by default (see
//!   [`Synchronous`]), versioned schema, refuses foreign, newer or unreadable files with
//!   [`StoreError::Corrupt`], reports a full disk as [`StoreError::Full`] and recovers once space
//!   is back.
//!
//! - [`PgStore`] (cargo feature `postgres`): one PostgreSQL database, pooled connections,
//!   history partitioned by day, commands leased with `FOR UPDATE SKIP LOCKED`; several masters
//!   can share it.
//!
//! Every engine gives the same answers to the same calls: one contract test suite runs against
//! both, and a model test runs random operation sequences against both and compares every answer.
//! Timestamps are kept to the nanosecond and numbers bit for bit.

mod agents;
mod alerts;
mod audit;
mod commands;
mod error;
mod memory;
mod metrics;
mod notify;
#[cfg(feature = "postgres")]
mod postgres;
mod series;
mod sqlite;
mod timestamp;

pub use agents::{AgentRegistry, AgentSeen, SeenVia};
pub use alerts::{
    AlertChanges, AlertHistoryQuery, AlertRuleRecord, AlertStore, MAX_ALERT_HISTORY_LIMIT,
};
pub use audit::{AuditEntry, AuditLog, AuditQuery, MAX_AUDIT_FIELD_BYTES, MAX_AUDIT_LIMIT};
pub use commands::{CommandFilter, CommandQueue, DEFAULT_LIST_LIMIT};
pub use error::{StoreError, StoreResult};
pub use memory::MemoryStore;
pub use metrics::{HistoryQuery, MetricsStore, NodeKey};
pub use notify::{
    DeliveryResult, NotificationRecord, NotifiedGroup, NotifyStore, Silence, SilenceMatcher,
};
#[cfg(feature = "postgres")]
pub use postgres::{
    COMPRESS_AFTER_NS, FLEET_CHANNEL, HistoryLayout, ImportReport, ImportSource,
    MAX_NOTIFY_PAYLOAD, PG_SCHEMA_VERSION, PgOptions, PgSession, PgStore,
};
pub use series::{
    Device, EndedRows, Figure, HOUR_MS, MAX_DEVICE_BYTES, MAX_SERIES_PER_ROW, SeriesAccumulator,
    SeriesKey, SeriesQuery, SeriesRow, SeriesStore, TIERS, Triple, TripleMerge, for_each_sample,
    roll_up, roll_up_hours, samples_of, stored_form,
};
pub use sqlite::{APPLICATION_ID, SCHEMA_VERSION, SqliteOptions, SqliteStore, Synchronous};
