//! Latest snapshots and history points.

use atlhyper_model::{MetricsDataPoint, NodeMetricsSnapshot};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{StoreError, StoreResult};
use crate::timestamp::{from_ns, to_ns, to_ns_clamped};

/// A history range query for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Cluster id.
    pub cluster_id: String,
    /// Node name.
    pub node_name: String,
    /// Inclusive start.
    pub from: DateTime<Utc>,
    /// Inclusive end.
    pub to: DateTime<Utc>,
    /// Downsample to at most this many points (bucket averages over equal time buckets, each
    /// stamped with its bucket's first timestamp); `None` returns every point.
    pub max_points: Option<usize>,
}

/// Latest snapshot per (cluster, node) and per-node history.
#[async_trait::async_trait]
pub trait MetricsStore: Send + Sync + 'static {
    /// Upserts the latest snapshot of each node of one cluster, in one batch (one transaction).
    /// "Latest" is the last one written (arrival order, as the caller decides it), never the one
    /// with the largest timestamp: a node's clock once stamped a year ahead must not pin its
    /// latest view for a year. Within a batch the later entry of a node wins. The caller orders
    /// writes (the master serializes ingest per cluster and drops replays by sequence number).
    /// A snapshot without a node name, with a timestamp
    /// outside years 1677 to 2262, or with a non-finite number makes the whole batch `Invalid`.
    async fn upsert_latest(
        &self,
        cluster_id: &str,
        snapshots: &[NodeMetricsSnapshot],
    ) -> StoreResult<()>;

    /// The latest snapshot of one node.
    async fn get_latest(
        &self,
        cluster_id: &str,
        node_name: &str,
    ) -> StoreResult<Option<NodeMetricsSnapshot>>;

    /// The latest snapshot of every node of a cluster, sorted by node name.
    async fn list_latest(&self, cluster_id: &str) -> StoreResult<Vec<NodeMetricsSnapshot>>;

    /// Appends history points of one cluster in one batch. Idempotent on (cluster, node,
    /// timestamp): a point already stored is skipped (the first one stored wins). Returns how many
    /// were new. A point without a node name, with a non-finite number or with a timestamp outside
    /// years 1677 to 2262 makes the whole batch `Invalid` (nothing is written). The nine v2
    /// figures are kept; the extension figures ([`MetricsDataPoint::extensions`]) are not (no
    /// stored-history reader asks for them: the v3 series come from the agents' rings).
    async fn append_history(
        &self,
        cluster_id: &str,
        points: &[MetricsDataPoint],
    ) -> StoreResult<usize>;

    /// History of one node in `[from, to]`, oldest first, optionally downsampled. When the range
    /// holds at most `max_points` points they come back as stored; otherwise `[from, to]` is cut
    /// into `max_points` equal buckets and each non-empty bucket gives the mean of its points,
    /// stamped with the timestamp of its first point. `max_points == Some(0)` is `Invalid`; a
    /// range with `to` before `from` is empty.
    async fn history(&self, query: &HistoryQuery) -> StoreResult<Vec<MetricsDataPoint>>;

    /// The timestamp of the newest history point of each of `nodes` of `cluster_id` within
    /// `[from, to]`, in the order given (`None`: no point there, or a node never written). What
    /// a master asks about the nodes of a cluster it has not seen since it started. The default
    /// reads [`Self::history`] node by node; an engine across a network answers the batch in
    /// one round trip.
    async fn newest_history(
        &self,
        cluster_id: &str,
        nodes: &[&str],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Option<DateTime<Utc>>>> {
        let mut newest = Vec::with_capacity(nodes.len());
        for node in nodes {
            let query = HistoryQuery {
                cluster_id: cluster_id.to_owned(),
                node_name: (*node).to_owned(),
                from,
                to,
                max_points: None,
            };
            let points = self.history(&query).await?;
            newest.push(points.iter().map(|p| p.timestamp).max());
        }
        Ok(newest)
    }

    /// Deletes history points older than `before`. Returns how many were deleted.
    async fn prune_history(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// Every cluster with a latest snapshot or history, sorted.
    async fn list_clusters(&self) -> StoreResult<Vec<String>>;

    /// Every node of a cluster with a latest snapshot or history, sorted.
    async fn list_nodes(&self, cluster_id: &str) -> StoreResult<Vec<String>>;

    /// Deletes the latest snapshot of one node; its history stays until the retention prune.
    /// Returns whether there was one.
    async fn delete_latest(&self, cluster_id: &str, node_name: &str) -> StoreResult<bool>;

    /// Deletes the latest snapshot of every node of a cluster, in one transaction; their history
    /// stays until the retention prune. Returns how many were deleted.
    async fn delete_cluster_latest(&self, cluster_id: &str) -> StoreResult<u64>;

    /// Retires silent nodes: deletes, in one transaction, every latest snapshot whose timestamp is
    /// before `before` (their history stays until the retention prune), and returns which nodes
    /// they were, sorted by cluster then node.
    async fn retire_latest(&self, before: DateTime<Utc>) -> StoreResult<Vec<NodeKey>>;
}

/// One node of one cluster, by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey {
    /// Cluster id.
    pub cluster_id: String,
    /// Node name.
    pub node_name: String,
}

/// How many numbers a history point carries (everything but the timestamp and node name).
pub(crate) const POINT_FIELDS: usize = MetricsDataPoint::FIGURES;

/// A history point as the engines keep it: timestamp in nanoseconds and the nine numbers in the
/// order of [`MetricsDataPoint`]'s fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HistoryRow {
    /// Nanoseconds since the epoch.
    pub(crate) ts: i64,
    /// cpu, memory, disk, disk read, disk write, rx, tx, cpu temperature, load 1.
    pub(crate) values: [f64; POINT_FIELDS],
}

impl HistoryRow {
    /// Checks a point (node name set, numbers finite, timestamp storable) and converts it.
    pub(crate) fn from_point(p: &MetricsDataPoint) -> StoreResult<Self> {
        if p.node_name.is_empty() {
            return Err(StoreError::Invalid(
                "history point without node_name".to_owned(),
            ));
        }
        let values = p.figures();
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(StoreError::Invalid(format!(
                "history point of node {} at {} has a non-finite number ({bad})",
                p.node_name, p.timestamp
            )));
        }
        Ok(Self {
            ts: to_ns(p.timestamp, "history point timestamp")?,
            values,
        })
    }

    /// The point of node `node_name`.
    pub(crate) fn to_point(self, node_name: &str) -> MetricsDataPoint {
        MetricsDataPoint::from_figures(from_ns(self.ts), node_name.to_owned(), self.values)
    }
}

/// A history query checked and in nanoseconds: `[from, to]` clamped to the storable range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) max_points: Option<usize>,
}

impl Range {
    /// Checks a query; `None` when the range is empty (`to` before `from`).
    pub(crate) fn of(query: &HistoryQuery) -> StoreResult<Option<Self>> {
        if query.max_points == Some(0) {
            return Err(StoreError::Invalid(
                "max_points must be at least 1".to_owned(),
            ));
        }
        let (from, to) = (to_ns_clamped(query.from), to_ns_clamped(query.to));
        Ok((from <= to).then_some(Self {
            from,
            to,
            max_points: query.max_points,
        }))
    }
}

/// Turns the rows of a range (oldest first) into points, downsampling in one pass when there are
/// more than `max_points`: `[from, to]` is cut into `max_points` equal buckets, and each non-empty
/// bucket yields the mean of its points, stamped with the bucket's first point's timestamp.
pub(crate) fn shape(rows: Vec<HistoryRow>, range: Range, node_name: &str) -> Vec<MetricsDataPoint> {
    let max = match range.max_points {
        Some(max) if rows.len() > max => max,
        _ => return rows.into_iter().map(|r| r.to_point(node_name)).collect(),
    };
    let span = i128::from(range.to) - i128::from(range.from) + 1;
    let max_i = i128::try_from(max).unwrap_or(i128::MAX);
    let width = (span + max_i - 1) / max_i;
    let bucket_of = |ts: i64| (i128::from(ts) - i128::from(range.from)) / width;

    let mut out = Vec::with_capacity(max);
    let mut current: Option<(i128, i64, [f64; POINT_FIELDS], u32)> = None;
    let flush = |(_, ts, sums, n): (i128, i64, [f64; POINT_FIELDS], u32),
                 out: &mut Vec<MetricsDataPoint>| {
        let values = sums.map(|s| s / f64::from(n));
        out.push(HistoryRow { ts, values }.to_point(node_name));
    };
    for row in rows {
        let bucket = bucket_of(row.ts);
        match &mut current {
            Some((b, _, sums, n)) if *b == bucket => {
                for (s, v) in sums.iter_mut().zip(row.values) {
                    *s += v;
                }
                *n += 1;
            }
            _ => {
                if let Some(done) = current.take() {
                    flush(done, &mut out);
                }
                current = Some((bucket, row.ts, row.values, 1));
            }
        }
    }
    if let Some(done) = current {
        flush(done, &mut out);
    }
    out
}

/// Checks a latest snapshot and encodes it as JSON. A snapshot that would not read back (a
/// non-finite number becomes JSON `null`) is `Invalid`, so nothing unreadable is ever stored.
pub(crate) fn encode_snapshot(s: &NodeMetricsSnapshot) -> StoreResult<String> {
    if s.node_name.is_empty() {
        return Err(StoreError::Invalid("snapshot without node_name".to_owned()));
    }
    to_ns(s.timestamp, "snapshot timestamp")?;
    let mut json = Vec::with_capacity(2048);
    let mut formatter = NullCounting(0);
    let mut ser = serde_json::Serializer::with_formatter(&mut json, &mut formatter);
    s.serialize(&mut ser)
        .map_err(|e| StoreError::Invalid(format!("snapshot of node {}: {e}", s.node_name)))?;
    if formatter.0 > 0 {
        // A `null` may stand for a non-finite number. Such a snapshot either does not read back
        // (a plain f64) or reads back changed (`Some(NaN)` becomes `None`); refuse both.
        let invalid = |why: String| {
            StoreError::Invalid(format!(
                "snapshot of node {} does not survive JSON (a non-finite number?): {why}",
                s.node_name
            ))
        };
        let back: NodeMetricsSnapshot =
            serde_json::from_slice(&json).map_err(|e| invalid(e.to_string()))?;
        let again = serde_json::to_vec(&back).map_err(|e| invalid(e.to_string()))?;
        if again != json {
            return Err(invalid("it reads back different".to_owned()));
        }
    }
    String::from_utf8(json).map_err(|e| StoreError::Invalid(format!("snapshot JSON: {e}")))
}

/// Reads a snapshot stored by [`encode_snapshot`].
pub(crate) fn decode_snapshot(json: &[u8]) -> StoreResult<NodeMetricsSnapshot> {
    serde_json::from_slice(json)
        .map_err(|e| StoreError::Corrupt(format!("stored snapshot is not readable: {e}")))
}

/// A JSON formatter that counts the `null`s it writes.
struct NullCounting(usize);

impl serde_json::ser::Formatter for &mut NullCounting {
    fn write_null<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.0 += 1;
        writer.write_all(b"null")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> NodeMetricsSnapshot {
        NodeMetricsSnapshot {
            node_name: "n".to_owned(),
            ..NodeMetricsSnapshot::default()
        }
    }

    #[test]
    fn finite_snapshots_encode() {
        let json = encode_snapshot(&snap()).unwrap();
        assert_eq!(decode_snapshot(json.as_bytes()).unwrap(), snap());
    }

    #[test]
    fn non_finite_snapshots_are_invalid() {
        let mut plain = snap();
        plain.cpu.usage_percent = f64::NAN;
        assert!(matches!(
            encode_snapshot(&plain),
            Err(StoreError::Invalid(_))
        ));
        let mut optional = snap();
        optional.cpu.steal_percent = Some(f64::INFINITY);
        assert!(matches!(
            encode_snapshot(&optional),
            Err(StoreError::Invalid(_))
        ));
        let mut unnamed = snap();
        unnamed.node_name.clear();
        assert!(matches!(
            encode_snapshot(&unnamed),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn shape_buckets_cover_the_range() {
        let rows: Vec<HistoryRow> = (0..10)
            .map(|i| HistoryRow {
                ts: i * 10,
                values: [i as f64; POINT_FIELDS],
            })
            .collect();
        // [0, 99] in 3 buckets of 34 ns: {0..30}, {40..60}, {70..90}.
        let range = Range {
            from: 0,
            to: 99,
            max_points: Some(3),
        };
        let got = shape(rows.clone(), range, "n");
        let ts: Vec<i64> = got
            .iter()
            .map(|p| p.timestamp.timestamp_nanos_opt().unwrap())
            .collect();
        assert_eq!(ts, [0, 40, 70]);
        let cpu: Vec<f64> = got.iter().map(|p| p.cpu_usage).collect();
        assert_eq!(cpu, [1.5, 5.0, 8.0]);
        // Whole i64 range, one bucket: no overflow.
        let all = Range {
            from: i64::MIN,
            to: i64::MAX,
            max_points: Some(1),
        };
        assert_eq!(shape(rows, all, "n")[0].cpu_usage, 4.5);
    }
}
