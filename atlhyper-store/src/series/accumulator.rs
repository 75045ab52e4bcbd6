//! Per node, the (min, avg, max) of every series over the current interval, built from the
//! snapshots as they arrive; an interval's row leaves when the node's next interval starts or,
//! for a node gone quiet, when [`SeriesAccumulator::take_ended`] finds it ended.
//!
//! A snapshot allocates nothing once its node has been seen: nodes are looked up by `&str`, and
//! each node keeps one slot per series in the order the snapshot gives its samples
//! ([`for_each_sample`]), so a snapshot of the same layout walks the slots in step and compares
//! borrowed names. A slot is added (its name allocated) only when a series appears.
//!
//! ```
//! use atlhyper_model::NodeMetricsSnapshot;
//! use atlhyper_store::SeriesAccumulator;
//! use chrono::DateTime;
//!
//! let acc = SeriesAccumulator::default();
//! let mut s = NodeMetricsSnapshot { node_name: "n".into(), ..Default::default() };
//! for (ms, cpu) in [(1_000, 10.0), (6_000, 30.0), (300_000, 50.0)] {
//!     s.timestamp = DateTime::from_timestamp_millis(ms).unwrap();
//!     s.cpu.usage_percent = cpu;
//!     if let Some(row) = acc.add("prod", &s, 300_000) {
//!         assert_eq!((row.start_ms, row.samples), (0, 2));
//!     }
//! }
//! assert_eq!(acc.open_start("prod", "n"), Some(300_000));
//! ```

use std::collections::{BTreeMap, HashMap};

use atlhyper_model::NodeMetricsSnapshot;
use parking_lot::Mutex;

use super::figure::{Device, for_each_sample};
use super::{Figure, SeriesKey, SeriesRow, Triple, TripleMerge};

/// One series of an open interval.
#[derive(Debug)]
struct Slot {
    key: SeriesKey,
    merge: TripleMerge,
}

/// One node's open interval.
#[derive(Debug)]
struct OpenInterval {
    /// Interval start, unix ms.
    start_ms: i64,
    /// Timestamp of the last snapshot taken in (ms): the same snapshot pushed twice counts once.
    last_ms: i64,
    samples: u32,
    /// In the order the snapshots give their samples; a slot without data this interval is
    /// one of the previous interval, kept for its name.
    slots: Vec<Slot>,
}

impl OpenInterval {
    fn new(start_ms: i64, at: i64) -> Self {
        Self {
            start_ms,
            last_ms: at,
            samples: 0,
            slots: Vec::new(),
        }
    }

    /// Takes one snapshot's samples in.
    fn add(&mut self, node: &NodeMetricsSnapshot) {
        let mut next = 0;
        for_each_sample(node, |figure, device, v| {
            let at = match self.slots.get(next) {
                Some(slot) if same(slot, figure, &device) => next,
                _ => self.find_or_add(figure, &device),
            };
            self.slots[at].merge.add(Triple::one(v), 1);
            next = at + 1;
        });
    }

    /// The slot of a series the walk did not find in step (the node's layout changed).
    fn find_or_add(&mut self, figure: Figure, device: &Device<'_>) -> usize {
        if let Some(at) = self.slots.iter().position(|s| same(s, figure, device)) {
            return at;
        }
        self.slots.push(Slot {
            key: SeriesKey::device(figure, device.to_string()),
            merge: TripleMerge::default(),
        });
        self.slots.len() - 1
    }

    /// The interval's row so far: the series with data, sorted, those `wanted` only.
    fn row(&self, node_name: &str, wanted: impl Fn(&SeriesKey) -> bool) -> SeriesRow {
        let mut series: Vec<(SeriesKey, Triple)> = self
            .slots
            .iter()
            .filter(|s| wanted(&s.key))
            .filter_map(|s| s.merge.get().map(|t| (s.key.clone(), t)))
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        SeriesRow {
            node_name: node_name.to_owned(),
            start_ms: self.start_ms,
            samples: self.samples,
            series,
        }
    }

    /// Ends the interval: its row, and the slots emptied for the next one starting at
    /// `start_ms` (series gone quiet over the whole interval are dropped).
    fn roll_over(&mut self, node_name: &str, start_ms: i64) -> SeriesRow {
        let row = self.row(node_name, |_| true);
        self.slots.retain(|s| s.merge.get().is_some());
        for slot in &mut self.slots {
            slot.merge = TripleMerge::default();
        }
        self.start_ms = start_ms;
        self.samples = 0;
        row
    }
}

fn same(slot: &Slot, figure: Figure, device: &Device<'_>) -> bool {
    slot.key.figure == figure && device.matches(&slot.key.device)
}

/// Open intervals per cluster, then node.
#[derive(Debug, Default)]
pub struct SeriesAccumulator {
    open: Mutex<HashMap<String, HashMap<String, OpenInterval>>>,
}

/// Rows of intervals that ended, per cluster.
pub type EndedRows = BTreeMap<String, Vec<SeriesRow>>;

impl SeriesAccumulator {
    /// Takes in one snapshot of a node (its interval from its timestamp, `interval_ms` wide).
    /// Returns the row of the node's previous interval when this snapshot starts a later one.
    /// A snapshot no newer than the last one taken in, or of an interval before the open one,
    /// is ignored. The caller decides which timestamps are believable (the master refuses
    /// ones far ahead of its clock before this).
    pub fn add(
        &self,
        cluster_id: &str,
        node: &NodeMetricsSnapshot,
        interval_ms: i64,
    ) -> Option<SeriesRow> {
        let interval_ms = interval_ms.max(1);
        let at = node.timestamp.timestamp_millis();
        let start_ms = at.div_euclid(interval_ms) * interval_ms;
        let mut all = self.open.lock();
        let nodes = match all.get_mut(cluster_id) {
            Some(nodes) => nodes,
            None => all.entry(cluster_id.to_owned()).or_default(),
        };
        let open = match nodes.get_mut(&node.node_name) {
            Some(open) => open,
            None => nodes
                .entry(node.node_name.clone())
                .or_insert_with(|| OpenInterval::new(start_ms, at)),
        };
        let mut ended = None;
        if open.samples > 0 {
            if at <= open.last_ms || start_ms < open.start_ms {
                return None;
            }
            if start_ms > open.start_ms {
                ended = Some(open.roll_over(&node.node_name, start_ms));
            }
        } else {
            open.start_ms = start_ms;
        }
        open.last_ms = at;
        open.samples = open.samples.saturating_add(1);
        open.add(node);
        ended
    }

    /// Removes and returns the intervals that ended before `before_ms` (a node that stopped
    /// reporting, or was deleted, in the middle of one).
    pub fn take_ended(&self, before_ms: i64, interval_ms: i64) -> EndedRows {
        let mut all = self.open.lock();
        let mut out = EndedRows::new();
        for (cluster, nodes) in all.iter_mut() {
            nodes.retain(|node, open| {
                if open.start_ms.saturating_add(interval_ms) > before_ms {
                    return true;
                }
                if open.samples > 0 {
                    out.entry(cluster.clone())
                        .or_default()
                        .push(open.row(node, |_| true));
                }
                false
            });
        }
        all.retain(|_, nodes| !nodes.is_empty());
        out
    }

    /// The start of a node's open interval, `None` when none is open.
    pub fn open_start(&self, cluster_id: &str, node_name: &str) -> Option<i64> {
        let all = self.open.lock();
        let open = all.get(cluster_id)?.get(node_name)?;
        (open.samples > 0).then_some(open.start_ms)
    }

    /// A node's open interval as a row so far (the series of `figure`, and of `device`, when
    /// given); `None` when none is open or it has no such series.
    pub fn open_row(
        &self,
        cluster_id: &str,
        node_name: &str,
        figure: Option<Figure>,
        device: Option<&str>,
    ) -> Option<SeriesRow> {
        let all = self.open.lock();
        let open = all.get(cluster_id)?.get(node_name)?;
        let row = open.row(node_name, |k| {
            figure.is_none_or(|f| f == k.figure) && device.is_none_or(|d| d == k.device)
        });
        (open.samples > 0 && !row.series.is_empty()).then_some(row)
    }

    /// The open intervals of every node of a cluster, as [`open_row`](Self::open_row) gives
    /// them, sorted by node.
    pub fn open_rows(&self, cluster_id: &str, figure: Option<Figure>) -> Vec<SeriesRow> {
        let all = self.open.lock();
        let Some(nodes) = all.get(cluster_id) else {
            return Vec::new();
        };
        let mut rows: Vec<SeriesRow> = nodes
            .iter()
            .filter(|(_, open)| open.samples > 0)
            .map(|(node, open)| open.row(node, |k| figure.is_none_or(|f| f == k.figure)))
            .filter(|row| !row.series.is_empty())
            .collect();
        rows.sort_by(|a, b| a.node_name.cmp(&b.node_name));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlhyper_model::{NetworkMetrics, SensorReading};
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

    fn get(row: &SeriesRow, figure: Figure, device: &str) -> Option<Triple> {
        row.series
            .iter()
            .find(|(k, _)| k.figure == figure && k.device == device)
            .map(|(_, t)| *t)
    }

    fn cpu(row: &SeriesRow) -> Triple {
        get(row, Figure::CpuUsage, "").unwrap()
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
        let open = acc
            .open_row("c", "n", Some(Figure::CpuUsage), None)
            .unwrap();
        assert_eq!((open.start_ms, open.samples), (0, 3));
        assert_eq!(open.series.len(), 1);
        let row = acc.add("c", &snap(300_000, 50.0), 300_000).unwrap();
        assert_eq!((row.start_ms, row.samples), (0, 3));
        assert_eq!(cpu(&row), Triple::new(10.0, 20.0, 30.0));
        assert!(row.series.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        assert_eq!(acc.open_start("c", "n"), Some(300_000));
        assert!(acc.take_ended(599_999, 300_000).is_empty());
        let ended = acc.take_ended(600_000, 300_000);
        assert_eq!(ended["c"][0].start_ms, 300_000);
        assert_eq!(cpu(&ended["c"][0]), Triple::one(50.0));
        assert!(acc.take_ended(i64::MAX, 300_000).is_empty());
        assert_eq!(acc.open_start("c", "n"), None);
        assert!(acc.open_rows("c", None).is_empty());
    }

    #[test]
    fn a_changed_layout_keeps_every_series_apart() {
        let acc = SeriesAccumulator::default();
        let mut s = snap(1_000, 10.0);
        s.cpu.per_core = vec![1.0, 2.0];
        s.networks = vec![NetworkMetrics {
            interface: "eth0".into(),
            rx_rate: 100.0,
            ..Default::default()
        }];
        acc.add("c", &s, 300_000);
        // A core and an interface appear, the first interface goes; then the old layout again.
        let mut t = snap(2_000, 20.0);
        t.cpu.per_core = vec![3.0, 4.0, 5.0];
        t.networks = vec![NetworkMetrics {
            interface: "eth1".into(),
            rx_rate: 7.0,
            ..Default::default()
        }];
        acc.add("c", &t, 300_000);
        let mut u = s.clone();
        u.timestamp = DateTime::from_timestamp_millis(3_000).unwrap();
        u.cpu.per_core = vec![6.0, 8.0];
        acc.add("c", &u, 300_000);
        let row = acc.add("c", &snap(300_000, 0.0), 300_000).unwrap();
        assert_eq!(
            get(&row, Figure::CpuCore, "cpu0"),
            Some(Triple::new(1.0, 10.0 / 3.0, 6.0))
        );
        assert_eq!(
            get(&row, Figure::CpuCore, "cpu1"),
            Some(Triple::new(2.0, 14.0 / 3.0, 8.0))
        );
        assert_eq!(get(&row, Figure::CpuCore, "cpu2"), Some(Triple::one(5.0)));
        assert_eq!(
            get(&row, Figure::NetRxRate, "eth0"),
            Some(Triple::one(100.0))
        );
        assert_eq!(get(&row, Figure::NetRxRate, "eth1"), Some(Triple::one(7.0)));
        let keys: Vec<&SeriesKey> = row.series.iter().map(|(k, _)| k).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted, each once");
        // The next interval has only what the snapshot at 300 s gave (no cores, no interfaces).
        let next = acc.open_row("c", "n", None, None).unwrap();
        assert!(get(&next, Figure::CpuCore, "cpu0").is_none());
        assert_eq!(cpu(&next), Triple::one(0.0));
    }

    #[test]
    fn sensors_sharing_a_label_are_told_apart() {
        let acc = SeriesAccumulator::default();
        let mut s = snap(1_000, 1.0);
        let sensor = |name: &str, label: &str, current| SensorReading {
            name: name.into(),
            label: label.into(),
            current,
            ..Default::default()
        };
        s.temperature.sensors = vec![
            sensor("coretemp", "temp1", 40.0),
            sensor("nvme", "temp1", 35.0),
            sensor("acpitz", "", 30.0),
        ];
        acc.add("c", &s, 300_000);
        s.timestamp = DateTime::from_timestamp_millis(2_000).unwrap();
        s.temperature.sensors[0].current = 42.0;
        acc.add("c", &s, 300_000);
        let row = acc.open_row("c", "n", Some(Figure::Temp), None).unwrap();
        let devices: Vec<&str> = row.series.iter().map(|(k, _)| k.device.as_str()).collect();
        assert_eq!(devices, ["acpitz", "temp1 (coretemp)", "temp1 (nvme)"]);
        assert_eq!(row.series[1].1, Triple::new(40.0, 41.0, 42.0));
    }
}
