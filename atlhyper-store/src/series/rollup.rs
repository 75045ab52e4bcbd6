//! Tier 1 from tier 0: hourly rows rolled up from the interval rows, through any engine.

use std::collections::BTreeMap;

use super::{SeriesKey, SeriesQuery, SeriesRow, SeriesStore, TripleMerge};
use crate::error::StoreResult;

/// An hour, milliseconds: the width of a tier 1 row.
pub const HOUR_MS: i64 = 3_600_000;

/// Hours read per query while catching up.
const HOURS_PER_READ: i64 = 24;

/// Rolls tier 0 up into tier 1 for every hour that ends at or before `until_ms`, from the newest
/// tier 1 hour (rolled again: rows may have arrived since) or, on an empty tier 1, from the
/// oldest tier 0 row. Each hourly row is, per series, the min of the mins, the mean of the means
/// weighted by sample count and the max of the maxes, with the hour's sample count. Returns how
/// many tier 1 rows were written.
///
/// The caller picks `until_ms` so that the last hour's rows are all written (the master passes
/// now minus two history intervals).
pub async fn roll_up(store: &dyn SeriesStore, until_ms: i64) -> StoreResult<usize> {
    let Some((oldest, _)) = store.series_bounds(0).await? else {
        return Ok(0);
    };
    let start = match store.series_bounds(1).await? {
        Some((_, newest)) => newest,
        None => oldest.div_euclid(HOUR_MS) * HOUR_MS,
    };
    let end = until_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let mut written = 0;
    for cluster_id in store.series_clusters().await? {
        written += roll_span(store, &cluster_id, start, end).await?;
    }
    Ok(written)
}

/// Rolls the hours of one cluster overlapping `[from_ms, to_ms]` up again where tier 1 already
/// went past them (tier 0 rows that came late: the agent's backfill of a gap). Hours newer than
/// tier 1's newest are left to [`roll_up`], which takes hours in order. Returns how many tier 1
/// rows were written.
pub async fn roll_up_hours(
    store: &dyn SeriesStore,
    cluster_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> StoreResult<usize> {
    let Some((_, newest)) = store.series_bounds(1).await? else {
        return Ok(0);
    };
    let from = from_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let end = (to_ms.div_euclid(HOUR_MS) * HOUR_MS)
        .min(newest)
        .saturating_add(HOUR_MS);
    roll_span(store, cluster_id, from, end).await
}

/// Rolls the hours starting in `[from, end)` of one cluster up, a day of rows per read.
async fn roll_span(
    store: &dyn SeriesStore,
    cluster_id: &str,
    from: i64,
    end: i64,
) -> StoreResult<usize> {
    let mut written = 0;
    let mut from = from;
    while from < end {
        let to = from.saturating_add(HOURS_PER_READ * HOUR_MS).min(end);
        let query = SeriesQuery {
            cluster_id: cluster_id.to_owned(),
            node_name: None,
            tier: 0,
            from_ms: from,
            to_ms: to - 1,
            figure: None,
            device: None,
        };
        let rows = store.read_series(&query).await?;
        let hourly = merge_hours(&rows);
        if !hourly.is_empty() {
            written += store.append_series(cluster_id, 1, &hourly).await?;
        }
        from = to;
    }
    Ok(written)
}

/// Per node and hour, the merged row.
fn merge_hours(rows: &[SeriesRow]) -> Vec<SeriesRow> {
    // Per (node, hour): the sample count and each series' merge.
    type Hour<'a> = (u64, BTreeMap<&'a SeriesKey, TripleMerge>);
    let mut hours: BTreeMap<(&str, i64), Hour<'_>> = BTreeMap::new();
    for row in rows {
        let hour = row.start_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let (samples, series) = hours.entry((&row.node_name, hour)).or_default();
        *samples += u64::from(row.samples);
        for (key, t) in &row.series {
            series.entry(key).or_default().add(*t, row.samples);
        }
    }
    hours
        .into_iter()
        .map(|((node, hour), (samples, series))| SeriesRow {
            node_name: node.to_owned(),
            start_ms: hour,
            samples: u32::try_from(samples).unwrap_or(u32::MAX),
            series: series
                .into_iter()
                .filter_map(|(k, m)| m.get().map(|t| (k.clone(), t)))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{Figure, Triple};

    #[test]
    fn hours_merge_weighted() {
        let key = SeriesKey::node(Figure::CpuUsage);
        let row = |start_ms, samples, t| SeriesRow {
            node_name: "n".to_owned(),
            start_ms,
            samples,
            series: vec![(key.clone(), t)],
        };
        let rows = [
            row(0, 1, Triple::new(10.0, 10.0, 10.0)),
            row(300_000, 3, Triple::new(2.0, 30.0, 50.0)),
            row(HOUR_MS, 2, Triple::new(1.0, 1.0, 1.0)),
        ];
        let got = merge_hours(&rows);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].samples, 4);
        assert_eq!(got[0].series[0].1, Triple::new(2.0, 25.0, 50.0));
        assert_eq!(got[1].start_ms, HOUR_MS);
    }
}
