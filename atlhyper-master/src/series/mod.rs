//! Stored series of every figure (see docs/series-api.md): the per-node interval accumulation
//! at ingest (`atlhyper_store::SeriesAccumulator`) and the agent's backfill, the periodic flush, roll-up and prune, and the query helpers of the routes.

pub(crate) mod query;

use std::collections::{BTreeMap, HashMap};

use atlhyper_model::{ClusterSnapshot, MetricsDataPoint};
use atlhyper_store::{
    Figure, HOUR_MS, SeriesKey, SeriesRow, Triple, TripleMerge, roll_up, roll_up_hours,
};
use chrono::{DateTime, Utc};

use crate::Master;

/// How long tier 1 (hourly) rows are kept: a year.
pub(crate) const HOURLY_KEPT_MS: i64 = 365 * 24 * HOUR_MS;

/// How often the periodic task writes the intervals of nodes gone quiet and rolls up hours.
pub(crate) const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl Master {
    /// Tier 0's interval, ms (the history interval).
    pub(crate) fn series_interval_ms(&self) -> i64 {
        i64::try_from(self.config.history_interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// The tiers as this master keeps them.
    pub(crate) fn series_tiers(&self) -> query::Tiers {
        query::Tiers {
            fine_ms: self.series_interval_ms(),
            fine_kept_ms: i64::try_from(self.config.retention.as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// Takes the online nodes of an accepted snapshot into their intervals and writes the rows of
/// the intervals that ended, then the agent's backfill (see [`backfill_rows`]). A store failure
/// is counted and logged; the snapshot stays accepted (the latest figures and the nine-figure
/// history are what the agent's retry is for).
pub(crate) async fn record(
    master: &Master,
    cluster_id: &str,
    snapshot: &ClusterSnapshot,
    backfill: &[MetricsDataPoint],
    now: DateTime<Utc>,
) {
    let interval_ms = master.series_interval_ms();
    let newest_ok = now.timestamp_millis().saturating_add(interval_ms);
    let oldest_ok = now
        .timestamp_millis()
        .saturating_sub(i64::try_from(master.config.retention.as_millis()).unwrap_or(i64::MAX));
    let mut ended: Vec<SeriesRow> = Vec::new();
    for (name, node) in &snapshot.node_metrics {
        let at = node.timestamp.timestamp_millis();
        // The ingest clock rule has already put a timestamp far ahead back to the receive
        // time; this keeps a future interval from opening whatever called.
        if !snapshot.is_node_online(name) || at > newest_ok || at < oldest_ok {
            continue;
        }
        ended.extend(master.series_open.add(cluster_id, node, interval_ms));
    }
    // The accumulator's rows first: tier 0 keeps the first row of an interval, and a full
    // interval must win over the backfill's three figures.
    write(master, cluster_id, &ended).await;
    let current = now.timestamp_millis().div_euclid(interval_ms) * interval_ms;
    let rows = backfill_rows(backfill, interval_ms, oldest_ok, |node| {
        master
            .series_open
            .open_start(cluster_id, node)
            .map_or(current, |open| open.min(current))
    });
    if let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.start_ms).min(),
        rows.iter().map(|r| r.start_ms).max(),
    ) {
        write(master, cluster_id, &rows).await;
        // Hours tier 1 already has are rolled again with the late rows.
        if let Err(e) = roll_up_hours(&*master.series, cluster_id, first, last).await {
            master.store_failure("rolling series up", &e);
        }
    }
}

/// The series rows the agent's backfill (its ring of nine-figure points, sent after a gap)
/// gives: per node and interval, `cpu.usage`, `memory.usage` and `load.1` (the only node-level
/// series among the nine; the others are totals over devices) as (min, avg, max) of its points.
/// Only intervals before `open_before(node)` (the node's open interval, or the current one) and
/// not older than `oldest_ms` are taken; the store keeps an interval's first row, so an interval
/// that already has one is not counted twice.
fn backfill_rows(
    backfill: &[MetricsDataPoint],
    interval_ms: i64,
    oldest_ms: i64,
    open_before: impl Fn(&str) -> i64,
) -> Vec<SeriesRow> {
    const FIGURES: [Figure; 3] = [Figure::CpuUsage, Figure::MemoryUsage, Figure::Load1];
    let mut intervals: BTreeMap<(&str, i64), (u32, [TripleMerge; 3])> = BTreeMap::new();
    let mut limits: HashMap<&str, i64> = HashMap::new();
    for p in backfill {
        let name = p.node_name.as_str();
        let at = p.timestamp.timestamp_millis();
        let start = at.div_euclid(interval_ms) * interval_ms;
        let limit = *limits.entry(name).or_insert_with(|| open_before(name));
        if name.is_empty() || at < oldest_ms || start >= limit {
            continue;
        }
        let (samples, merges) = intervals.entry((name, start)).or_default();
        *samples = samples.saturating_add(1);
        for (merge, v) in merges
            .iter_mut()
            .zip([p.cpu_usage, p.memory_usage, p.load_1])
        {
            if v.is_finite() {
                merge.add(Triple::one(v), 1);
            }
        }
    }
    intervals
        .into_iter()
        .filter_map(|((node, start_ms), (samples, merges))| {
            let series: Vec<(SeriesKey, Triple)> = FIGURES
                .iter()
                .zip(merges)
                .filter_map(|(f, m)| m.get().map(|t| (SeriesKey::node(*f), t)))
                .collect();
            (!series.is_empty()).then(|| SeriesRow {
                node_name: node.to_owned(),
                start_ms,
                samples,
                series,
            })
        })
        .collect()
}

async fn write(master: &Master, cluster_id: &str, rows: &[SeriesRow]) {
    if rows.is_empty() {
        return;
    }
    match master.series.append_series(cluster_id, 0, rows).await {
        Ok(n) => tracing::debug!(cluster = cluster_id, rows = n, "series rows written"),
        Err(e) => master.store_failure("storing series", &e),
    }
}

/// The periodic part (every [`FLUSH_EVERY`]): see [`Master::series_maintenance`] (without the
/// prune, which runs with the retention prune).
pub(crate) async fn flush_and_roll_up(master: Master) {
    flush_and_roll_up_at(&master, Utc::now()).await;
}

async fn flush_and_roll_up_at(master: &Master, now: DateTime<Utc>) {
    let now_ms = now.timestamp_millis();
    let interval_ms = master.series_interval_ms();
    let grace = now_ms.saturating_sub(interval_ms);
    for (cluster_id, rows) in master.series_open.take_ended(grace, interval_ms) {
        write(master, &cluster_id, &rows).await;
    }
    let until = now_ms.saturating_sub(interval_ms.saturating_mul(2));
    match roll_up(&*master.series, until).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(rows = n, "series rolled up"),
        Err(e) => master.store_failure("rolling series up", &e),
    }
}

impl Master {
    /// Series upkeep as of `now`, as the periodic tasks do it: writes the intervals that ended
    /// at least one interval before `now` without a next snapshot, rolls every hour that ended
    /// two intervals before `now` up into tier 1, and prunes tier 0 past the history retention
    /// and tier 1 past a year. Store failures are counted and logged.
    pub async fn series_maintenance(&self, now: DateTime<Utc>) {
        flush_and_roll_up_at(self, now).await;
        prune(self, now).await;
    }
}

/// Deletes tier 0 rows past the history retention and tier 1 rows past a year.
pub(crate) async fn prune(master: &Master, now: DateTime<Utc>) {
    let now_ms = now.timestamp_millis();
    let fine_before = now_ms.saturating_sub(master.series_tiers().fine_kept_ms);
    for (tier, before) in [(0, fine_before), (1, now_ms.saturating_sub(HOURLY_KEPT_MS))] {
        match master.series.prune_series(tier, before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, tier, "pruned series"),
            Err(e) => master.store_failure("pruning series", &e),
        }
    }
}
