//! Per node, the (min, avg, max) of every series over the current history interval, built from
//! the snapshots as they arrive; an interval's row leaves when the node's next interval starts
//! or, for a node gone quiet, when the periodic task finds it ended.

use std::collections::{BTreeMap, HashMap};

use atlhyper_model::NodeMetricsSnapshot;
use atlhyper_store::{SeriesKey, SeriesRow, Triple, TripleMerge, samples_of};
use parking_lot::Mutex;

/// One node's open interval.
#[derive(Debug)]
struct OpenInterval {
    /// Interval start, unix ms.
    start_ms: i64,
    /// Timestamp of the last snapshot taken in (ms): the same snapshot pushed twice counts once.
    last_ms: i64,
    samples: u32,
    series: BTreeMap<SeriesKey, TripleMerge>,
}

impl OpenInterval {
    fn into_row(self, node_name: String) -> SeriesRow {
        SeriesRow {
            node_name,
            start_ms: self.start_ms,
            samples: self.samples,
            series: self
                .series
                .into_iter()
                .filter_map(|(k, m)| m.get().map(|t| (k, t)))
                .collect(),
        }
    }
}

/// Open intervals per (cluster, node).
#[derive(Debug, Default)]
pub(crate) struct SeriesAccumulator {
    open: Mutex<HashMap<(String, String), OpenInterval>>,
}

/// Rows of intervals that ended, per cluster.
pub(crate) type EndedRows = BTreeMap<String, Vec<SeriesRow>>;

impl SeriesAccumulator {
    /// Takes in one snapshot of a node (its interval from its timestamp). Returns the row of the
    /// node's previous interval when this snapshot starts a later one. A snapshot no newer than
    /// the last one taken in, or of an interval before the open one, is ignored.
    pub(crate) fn add(
        &self,
        cluster_id: &str,
        node: &NodeMetricsSnapshot,
        interval_ms: i64,
    ) -> Option<SeriesRow> {
        let at = node.timestamp.timestamp_millis();
        let start_ms = at.div_euclid(interval_ms) * interval_ms;
        let key = (cluster_id.to_owned(), node.node_name.clone());
        let mut open = self.open.lock();
        let mut ended = None;
        match open.get(&key) {
            Some(current) if at <= current.last_ms || start_ms < current.start_ms => return None,
            Some(current) if start_ms > current.start_ms => {
                ended = open
                    .remove(&key)
                    .map(|done| done.into_row(node.node_name.clone()));
            }
            _ => {}
        }
        let interval = open.entry(key).or_insert_with(|| OpenInterval {
            start_ms,
            last_ms: at,
            samples: 0,
            series: BTreeMap::new(),
        });
        interval.last_ms = at;
        interval.samples = interval.samples.saturating_add(1);
        for (series, v) in samples_of(node) {
            interval
                .series
                .entry(series)
                .or_default()
                .add(Triple::one(v), 1);
        }
        ended
    }

    /// Removes and returns the intervals that ended before `before_ms` (a node that stopped
    /// reporting, or was deleted, in the middle of one).
    pub(crate) fn take_ended(&self, before_ms: i64, interval_ms: i64) -> EndedRows {
        let mut open = self.open.lock();
        let done: Vec<(String, String)> = open
            .iter()
            .filter(|(_, i)| i.start_ms.saturating_add(interval_ms) <= before_ms)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = EndedRows::new();
        for key in done {
            if let Some(interval) = open.remove(&key) {
                let (cluster, node) = key;
                out.entry(cluster)
                    .or_default()
                    .push(interval.into_row(node));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlhyper_store::Figure;
    use chrono::{DateTime, Utc};

    fn snap(ms: i64, cpu: f64) -> NodeMetricsSnapshot {
        let mut s = NodeMetricsSnapshot {
            node_name: "n".to_owned(),
            timestamp: DateTime::<Utc>::from_timestamp_millis(ms).unwrap(),
            ..Default::default()
        };
        s.cpu.usage_percent = cpu;
        s
    }

    fn cpu(row: &SeriesRow) -> Triple {
        row.series
            .iter()
            .find(|(k, _)| k.figure == Figure::CpuUsage)
            .unwrap()
            .1
    }

    #[test]
    fn an_interval_ends_when_the_next_begins() {
        let acc = SeriesAccumulator::default();
        assert!(acc.add("c", &snap(1_000, 10.0), 300_000).is_none());
        assert!(acc.add("c", &snap(6_000, 30.0), 300_000).is_none());
        // The same snapshot again, and an older one: ignored.
        assert!(acc.add("c", &snap(6_000, 99.0), 300_000).is_none());
        assert!(acc.add("c", &snap(2_000, 99.0), 300_000).is_none());
        assert!(acc.add("c", &snap(11_000, 20.0), 300_000).is_none());
        let row = acc.add("c", &snap(300_000, 50.0), 300_000).unwrap();
        assert_eq!((row.start_ms, row.samples), (0, 3));
        assert_eq!(cpu(&row), Triple::new(10.0, 20.0, 30.0));
        assert!(acc.take_ended(599_999, 300_000).is_empty());
        let ended = acc.take_ended(600_000, 300_000);
        assert_eq!(ended["c"][0].start_ms, 300_000);
        assert_eq!(cpu(&ended["c"][0]), Triple::one(50.0));
        assert!(acc.take_ended(i64::MAX, 300_000).is_empty());
    }
}
