//! Stored series of every figure a node reports: (min, avg, max) per node per interval, in
//! tiers (tier 0 at the history interval, tier 1 hourly roll-ups), compactly encoded.
//!
//! ```
//! use atlhyper_store::{Figure, MemoryStore, SeriesKey, SeriesQuery, SeriesRow, SeriesStore, Triple};
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let row = SeriesRow {
//!     node_name: "worker-1".to_owned(),
//!     start_ms: 1_700_000_100_000,
//!     samples: 60,
//!     series: vec![(SeriesKey::device(Figure::DiskWriteRate, "vda"), Triple::new(0.0, 512.0, 4096.0))],
//! };
//! assert_eq!(store.append_series("prod", 0, &[row.clone()]).await.unwrap(), 1);
//! let query = SeriesQuery::node("prod", "worker-1", 0, 1_700_000_000_000, 1_700_000_400_000);
//! assert_eq!(store.read_series(&query).await.unwrap(), [row]);
//! # });
//! ```

mod accumulator;
mod codec;
mod figure;
pub(crate) mod memory;
mod rollup;

use std::collections::BTreeSet;

pub use accumulator::{EndedRows, SeriesAccumulator};
pub use codec::{MAX_DEVICE_BYTES, MAX_SERIES_PER_ROW, stored_form};
pub use figure::{Device, Figure, SeriesKey, for_each_sample, samples_of};
pub use rollup::{HOUR_MS, roll_up, roll_up_hours};

pub(crate) use codec::{Dictionary, decode_keys, decode_values, encode_keys, encode_values};

use crate::error::{StoreError, StoreResult};

/// How many tiers there are: 0 (the history interval) and 1 (hourly).
pub const TIERS: u8 = 2;

/// Lowest, mean and highest value of one series over a span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Triple {
    /// Lowest.
    pub min: f64,
    /// Mean.
    pub avg: f64,
    /// Highest.
    pub max: f64,
}

impl Triple {
    /// `(min, avg, max)`.
    pub const fn new(min: f64, avg: f64, max: f64) -> Self {
        Self { min, avg, max }
    }

    /// One value seen once.
    pub const fn one(v: f64) -> Self {
        Self::new(v, v, v)
    }
}

/// Merges triples of consecutive spans: min of the mins, mean of the means weighted by each
/// span's sample count, max of the maxes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TripleMerge {
    min: f64,
    max: f64,
    weighted_sum: f64,
    weight: f64,
}

impl TripleMerge {
    /// Adds the triple of a span of `samples` samples.
    pub fn add(&mut self, t: Triple, samples: u32) {
        let w = f64::from(samples.max(1));
        if self.weight == 0.0 {
            self.min = t.min;
            self.max = t.max;
        } else {
            self.min = self.min.min(t.min);
            self.max = self.max.max(t.max);
        }
        self.weighted_sum += t.avg * w;
        self.weight += w;
    }

    /// The merged triple; `None` when nothing was added.
    pub fn get(&self) -> Option<Triple> {
        (self.weight > 0.0)
            .then(|| Triple::new(self.min, self.weighted_sum / self.weight, self.max))
    }

    /// Total weight (samples) added.
    pub fn samples(&self) -> u32 {
        self.weight.min(f64::from(u32::MAX)) as u32
    }
}

/// One node's series over one interval of a tier.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRow {
    /// Node name.
    pub node_name: String,
    /// Start of the interval, unix milliseconds.
    pub start_ms: i64,
    /// Snapshots the interval's triples were made of (the weight of its averages).
    pub samples: u32,
    /// The series, sorted by key (figure, then device), each once.
    pub series: Vec<(SeriesKey, Triple)>,
}

/// Which rows to read: one cluster, one node or all, one tier, starts in `[from_ms, to_ms]`,
/// optionally one figure and one device of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesQuery {
    /// Cluster id.
    pub cluster_id: String,
    /// One node, or every node of the cluster.
    pub node_name: Option<String>,
    /// Tier, `0..TIERS`.
    pub tier: u8,
    /// Earliest interval start, unix ms (inclusive).
    pub from_ms: i64,
    /// Latest interval start, unix ms (inclusive).
    pub to_ms: i64,
    /// Only this figure's series.
    pub figure: Option<Figure>,
    /// Only this device's series (with `figure`).
    pub device: Option<String>,
}

impl SeriesQuery {
    /// Every series of one node in a range.
    pub fn node(cluster_id: &str, node_name: &str, tier: u8, from_ms: i64, to_ms: i64) -> Self {
        Self {
            cluster_id: cluster_id.to_owned(),
            node_name: Some(node_name.to_owned()),
            tier,
            from_ms,
            to_ms,
            figure: None,
            device: None,
        }
    }

    fn wants(&self, key: &SeriesKey) -> bool {
        self.figure.is_none_or(|f| f == key.figure)
            && self.device.as_ref().is_none_or(|d| *d == key.device)
    }
}

/// Series rows per node and tier.
///
/// Rows read back as stored ([`stored_form`]): each value rounded to its figure's quantum
/// ([`Figure::quantum`]) and, for rates, to 11 significant bits
/// ([`Figure::significant_bits`]); at 0 when a figure that cannot be negative came in below it;
/// saturated at 2^53 quanta.
#[async_trait::async_trait]
pub trait SeriesStore: Send + Sync + 'static {
    /// Writes rows of one cluster and tier in one batch (one transaction). In tier 0 a row
    /// already stored for (node, start) stays (the first one wins: a retry, a second master); in
    /// the coarser tiers a row replaces the stored one (a roll-up run again over an hour that got
    /// more data). Returns how many rows were written. An empty cluster id or node name, a tier
    /// past [`TIERS`], zero samples, a non-finite number, a key twice in a row, a device name
    /// over [`MAX_DEVICE_BYTES`] or more than [`MAX_SERIES_PER_ROW`] series make the whole batch
    /// `Invalid` (nothing is written).
    async fn append_series(
        &self,
        cluster_id: &str,
        tier: u8,
        rows: &[SeriesRow],
    ) -> StoreResult<usize>;

    /// The rows a query selects, sorted by node then start, each with only the series the query
    /// asks for (a row left with none is left out).
    async fn read_series(&self, query: &SeriesQuery) -> StoreResult<Vec<SeriesRow>>;

    /// Every series key of a node's rows of `tier` starting at or after `since_ms`, sorted.
    async fn series_keys(
        &self,
        cluster_id: &str,
        node_name: &str,
        tier: u8,
        since_ms: i64,
    ) -> StoreResult<Vec<SeriesKey>>;

    /// Every node of a cluster with series rows, sorted.
    async fn series_nodes(&self, cluster_id: &str) -> StoreResult<Vec<String>>;

    /// Every cluster with series rows, sorted.
    async fn series_clusters(&self) -> StoreResult<Vec<String>>;

    /// The oldest and newest row start of a tier, over every node; `None` when it is empty.
    async fn series_bounds(&self, tier: u8) -> StoreResult<Option<(i64, i64)>>;

    /// Deletes the rows of `tier` starting before `before_ms`; returns how many.
    async fn prune_series(&self, tier: u8, before_ms: i64) -> StoreResult<u64>;
}

/// A row checked and encoded, as the engines store it.
#[derive(Debug, Clone)]
pub(crate) struct EncodedRow {
    pub(crate) node_name: String,
    pub(crate) start_ms: i64,
    pub(crate) samples: u32,
    /// The row's keys ([`encode_keys`]): the dictionary entry it points at.
    pub(crate) keys: Vec<u8>,
    /// The values ([`encode_values`]).
    pub(crate) values: Vec<u8>,
}

/// Checks a batch (see [`SeriesStore::append_series`]) and encodes it.
pub(crate) fn encode_batch(
    cluster_id: &str,
    tier: u8,
    rows: &[SeriesRow],
) -> StoreResult<Vec<EncodedRow>> {
    let invalid = |why: String| Err(StoreError::Invalid(why));
    if cluster_id.is_empty() {
        return invalid("empty cluster_id".to_owned());
    }
    check_tier(tier)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let node = &row.node_name;
        if node.is_empty() {
            return invalid("series row without node_name".to_owned());
        }
        if row.samples == 0 {
            return invalid(format!("series row of node {node} has no samples"));
        }
        if row.series.len() > MAX_SERIES_PER_ROW {
            return invalid(format!(
                "series row of node {node} has {} series (at most {MAX_SERIES_PER_ROW})",
                row.series.len()
            ));
        }
        let mut series = row.series.clone();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in series.windows(2) {
            if pair[0].0 == pair[1].0 {
                return invalid(format!(
                    "series row of node {node} has {} {:?} twice",
                    pair[0].0.figure, pair[0].0.device
                ));
            }
        }
        for (key, t) in &series {
            if key.device.len() > MAX_DEVICE_BYTES {
                return invalid(format!(
                    "series row of node {node}: device name over {MAX_DEVICE_BYTES} bytes"
                ));
            }
            if ![t.min, t.avg, t.max].iter().all(|v| v.is_finite()) {
                return invalid(format!(
                    "series row of node {node}: {} {:?} has a non-finite number",
                    key.figure, key.device
                ));
            }
        }
        let keys: Vec<&SeriesKey> = series.iter().map(|(k, _)| k).collect();
        out.push(EncodedRow {
            node_name: node.clone(),
            start_ms: row.start_ms,
            samples: row.samples,
            keys: encode_keys(&keys),
            values: encode_values(&series),
        });
    }
    Ok(out)
}

/// `Invalid` for a tier past [`TIERS`].
pub(crate) fn check_tier(tier: u8) -> StoreResult<()> {
    if tier >= TIERS {
        return Err(StoreError::Invalid(format!(
            "tier {tier} does not exist (0 to {})",
            TIERS - 1
        )));
    }
    Ok(())
}

/// A stored row back, with only the series `query` asks for (the others are stepped over, not
/// decoded); `None` when none is left.
pub(crate) fn decode_row(
    query: &SeriesQuery,
    node_name: &str,
    start_ms: i64,
    samples: u32,
    dict: &Dictionary,
    values: &[u8],
) -> StoreResult<Option<SeriesRow>> {
    let wanted = dict.range_of(query.figure, query.device.as_deref());
    if wanted.is_empty() {
        return Ok(None);
    }
    let mut series = Vec::with_capacity(wanted.len());
    decode_values(dict, values, wanted, &mut series)?;
    if query.figure.is_none() && query.device.is_some() {
        // A device of any figure: not one range of the sorted keys.
        series.retain(|(k, _)| query.wants(k));
        if series.is_empty() {
            return Ok(None);
        }
    }
    Ok(Some(SeriesRow {
        node_name: node_name.to_owned(),
        start_ms,
        samples,
        series,
    }))
}

/// The sorted union of keys.
pub(crate) fn union_keys<'a>(lists: impl IntoIterator<Item = &'a [SeriesKey]>) -> Vec<SeriesKey> {
    let set: BTreeSet<&SeriesKey> = lists.into_iter().flatten().collect();
    set.into_iter().cloned().collect()
}
