//! The series routes' parameters (range, step, tier) and how stored rows become points.

use std::collections::{BTreeMap, HashMap};

use atlhyper_store::{Figure, HOUR_MS, SeriesRow, Triple, TripleMerge};
use chrono::{DateTime, Utc};

use crate::error::ApiError;

/// One point: `[ts_ms, min, avg, max]`, the step's start and its triple.
pub(crate) type Point = (i64, f64, f64, f64);

/// About this many points per series when no step is given.
const TARGET_POINTS: i64 = 300;
/// Most points a step may give over the range.
pub(crate) const MAX_POINTS: i64 = 10_000;
/// Default range: the last 24 hours.
const DEFAULT_RANGE_MS: i64 = 24 * HOUR_MS;

/// The tiers as this master keeps them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tiers {
    /// Tier 0's interval (the history interval), ms.
    pub(crate) fine_ms: i64,
    /// How long tier 0 is kept (the history retention), ms.
    pub(crate) fine_kept_ms: i64,
}

/// A resolved query window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) from_ms: i64,
    pub(crate) to_ms: i64,
    pub(crate) step_ms: i64,
    pub(crate) tier: u8,
}

/// The latest time a `from` or `to` may name: the end of year 9999, the last one an answer
/// can write back in RFC 3339 (four-digit years).
const LATEST_MS: i64 = 253_402_300_799_999;

/// `from` or `to` of a stored-data route: RFC 3339, or unix milliseconds, from 1970 to the end
/// of 9999. Outside that nothing is stored, and a time past 9999 would come back in the answer
/// as `+255479-...`, which is not RFC 3339.
pub(crate) fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    let text = text.trim();
    let at = match text.parse::<i64>() {
        Ok(ms) => DateTime::from_timestamp_millis(ms),
        Err(_) => DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc()),
    };
    match at {
        Some(at) if (0..=LATEST_MS).contains(&at.timestamp_millis()) => Ok(at),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be RFC 3339 (2026-11-30T18:00:00Z) or unix milliseconds, from 1970 \
             to 9999, got {text:?}"
        ))),
    }
}

/// Resolves `from`, `to` and `step` (see docs/series-api.md): the tier is the finest whose
/// retention covers `from`; the step is a multiple of the tier's interval.
pub(crate) fn window(
    params: &HashMap<String, String>,
    now_ms: i64,
    tiers: Tiers,
) -> Result<Window, ApiError> {
    // `from` first, so when both are bad the error names `from`, as the history route's does.
    let from = params
        .get("from")
        .map(|f| parse_time("from", f))
        .transpose()?;
    let to_ms = match params.get("to") {
        Some(t) => parse_time("to", t)?.timestamp_millis(),
        None => now_ms,
    };
    let from_ms = match from {
        Some(f) => f.timestamp_millis(),
        None => to_ms.saturating_sub(DEFAULT_RANGE_MS),
    };
    if from_ms > to_ms {
        return Err(ApiError::bad_request(format!(
            "from ({from_ms}) must not be after to ({to_ms})"
        )));
    }
    let fine_ms = tiers.fine_ms.max(1);
    let (tier, tier_ms) = if from_ms >= now_ms.saturating_sub(tiers.fine_kept_ms) {
        (0, fine_ms)
    } else {
        (1, HOUR_MS)
    };
    let span = to_ms.saturating_sub(from_ms).saturating_add(1);
    let round_up = |ms: i64| div_up(ms, tier_ms).saturating_mul(tier_ms).max(tier_ms);
    let asked_s = match params.get("step") {
        None => None,
        Some(text) => match text.trim().parse::<i64>() {
            Ok(secs) if secs > 0 => Some(secs),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "step must be a positive number of seconds, got {text:?}"
                )));
            }
        },
    };
    let step_ms = match asked_s {
        None => round_up(div_up(span, TARGET_POINTS)),
        Some(secs) => round_up(secs.saturating_mul(1000)),
    };
    if div_up(span, step_ms) > MAX_POINTS {
        // Name the step asked for and the one used: a fine step is raised to the tier's.
        let used_s = step_ms / 1000;
        let steps = match asked_s {
            Some(asked) => format!("step {asked} s asked, {used_s} s used for this range"),
            None => format!("step {used_s} s"),
        };
        return Err(ApiError::bad_request(format!(
            "{steps}: more than {MAX_POINTS} points; use a larger step or a shorter range"
        )));
    }
    Ok(Window {
        from_ms,
        to_ms,
        step_ms,
        tier,
    })
}

/// `a / b` rounded up, for positive `a` and `b`.
fn div_up(a: i64, b: i64) -> i64 {
    a.saturating_add(b - 1) / b
}

/// The figure named by `figure`, 400 when unknown.
pub(crate) fn parse_figure(text: &str) -> Result<Figure, ApiError> {
    Figure::parse(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "figure {text:?} is unknown (see docs/series-api.md for the list)"
        ))
    })
}

/// The start of the step `ts` falls in.
pub(crate) fn step_of(ts: i64, step_ms: i64) -> i64 {
    ts.div_euclid(step_ms) * step_ms
}

fn point(ts: i64, t: Triple) -> Point {
    (ts, t.min, t.avg, t.max)
}

/// Per device, the points of one figure: per step the merge of its rows' triples.
pub(crate) fn device_points(rows: &[SeriesRow], step_ms: i64) -> BTreeMap<String, Vec<Point>> {
    let mut steps: BTreeMap<&str, BTreeMap<i64, TripleMerge>> = BTreeMap::new();
    for row in rows {
        let at = step_of(row.start_ms, step_ms);
        for (key, t) in &row.series {
            steps
                .entry(&key.device)
                .or_default()
                .entry(at)
                .or_default()
                .add(*t, row.samples);
        }
    }
    steps
        .into_iter()
        .map(|(device, by_step)| {
            let points = by_step
                .into_iter()
                .filter_map(|(ts, m)| m.get().map(|t| point(ts, t)))
                .collect();
            (device.to_owned(), points)
        })
        .collect()
}

/// Adds the open intervals (rows so far, from the accumulator) to stored `rows` of a tier 0
/// window: those starting inside it for which no row is stored yet (another master may have
/// written one). Returns the open rows taken.
pub(crate) fn add_open(
    rows: &mut Vec<SeriesRow>,
    open: Vec<SeriesRow>,
    w: Window,
) -> Vec<SeriesRow> {
    if w.tier != 0 {
        return Vec::new();
    }
    let taken: Vec<SeriesRow> = open
        .into_iter()
        .filter(|o| (w.from_ms..=w.to_ms).contains(&o.start_ms))
        .filter(|o| {
            !rows
                .iter()
                .any(|r| r.node_name == o.node_name && r.start_ms == o.start_ms)
        })
        .collect();
    rows.extend(taken.iter().cloned());
    taken
}

/// The figures a cluster trend is drawn for.
pub(crate) const CLUSTER_FIGURES: [Figure; 5] = [
    Figure::CpuUsage,
    Figure::MemoryUsage,
    Figure::FsUsage,
    Figure::NetRxRate,
    Figure::NetTxRate,
];

/// One node's triple of a cluster figure from one row: the node's own series, the fullest
/// mount for `fs.usage`, the sum over interfaces for the network rates.
fn node_triple(figure: Figure, row: &SeriesRow) -> Option<Triple> {
    let mut values = row
        .series
        .iter()
        .filter(|(k, _)| k.figure == figure)
        .map(|(_, t)| *t);
    let first = values.next()?;
    Some(values.fold(first, |acc, t| match figure {
        Figure::NetRxRate | Figure::NetTxRate => {
            Triple::new(acc.min + t.min, acc.avg + t.avg, acc.max + t.max)
        }
        _ => Triple::new(acc.min.max(t.min), acc.avg.max(t.avg), acc.max.max(t.max)),
    }))
}

/// The cluster trend of a figure: per step each node's merged triple, then series `avg` (over
/// the nodes' avgs) and `max` (over the nodes' maxes), each point `[ts, lowest node, mean,
/// highest node]`. Rows are of one cluster, any nodes.
pub(crate) fn cluster_points(
    figure: Figure,
    rows: &[SeriesRow],
    step_ms: i64,
) -> (Vec<Point>, Vec<Point>) {
    let mut per_step: BTreeMap<i64, BTreeMap<&str, TripleMerge>> = BTreeMap::new();
    for row in rows {
        if let Some(t) = node_triple(figure, row) {
            per_step
                .entry(step_of(row.start_ms, step_ms))
                .or_default()
                .entry(&row.node_name)
                .or_default()
                .add(t, row.samples);
        }
    }
    let mut avg = Vec::with_capacity(per_step.len());
    let mut max = Vec::with_capacity(per_step.len());
    for (ts, nodes) in per_step {
        let triples: Vec<Triple> = nodes.values().filter_map(TripleMerge::get).collect();
        if let Some(p) = across(ts, triples.iter().map(|t| t.avg)) {
            avg.push(p);
        }
        if let Some(p) = across(ts, triples.iter().map(|t| t.max)) {
            max.push(p);
        }
    }
    (avg, max)
}

/// `[ts, lowest, mean, highest]` of values across nodes.
fn across(ts: i64, values: impl Iterator<Item = f64>) -> Option<Point> {
    let mut m = TripleMerge::default();
    for v in values {
        m.add(Triple::one(v), 1);
    }
    m.get().map(|t| point(ts, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlhyper_store::SeriesKey;

    const TIERS: Tiers = Tiers {
        fine_ms: 300_000,
        fine_kept_ms: 30 * 24 * HOUR_MS,
    };

    #[test]
    fn times_before_1970_or_after_9999_are_refused() {
        for ok in [
            "0",
            "253402300799999",
            "9999-12-31T23:59:59.999Z",
            "1970-01-01T00:00:00Z",
        ] {
            assert!(parse_time("from", ok).is_ok(), "{ok}");
        }
        for bad in [
            "-1",
            "253402300800000",
            "8000000000000000",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999",
            "NaN",
            "1969-12-31T23:59:59Z",
            "",
        ] {
            let e = parse_time("to", bad).unwrap_err();
            assert!(e.message.starts_with("to must be"), "{bad}: {}", e.message);
        }
    }

    fn p(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn windows() {
        let now = 1_764_525_600_000;
        let w = window(&p(&[]), now, TIERS).unwrap();
        assert_eq!((w.from_ms, w.to_ms, w.tier), (now - 24 * HOUR_MS, now, 0));
        // 24 h / 300 points = 288 s, rounded up to the 5 min tier.
        assert_eq!(w.step_ms, 300_000);
        let w = window(&p(&[("step", "1")]), now, TIERS).unwrap();
        assert_eq!(w.step_ms, 300_000, "never finer than the tier");
        let w = window(&p(&[("step", "400")]), now, TIERS).unwrap();
        assert_eq!(w.step_ms, 600_000, "a multiple of the tier");
        let w = window(
            &p(&[
                ("from", "2025-01-01T00:00:00Z"),
                ("to", "2025-01-02T00:00:00+00:00"),
            ]),
            now,
            TIERS,
        )
        .unwrap();
        assert_eq!(w.tier, 1, "older than tier 0 keeps");
        assert_eq!(w.step_ms, HOUR_MS);
        assert_eq!(w.from_ms, 1_735_689_600_000);
        for (bad, name) in [
            (p(&[("from", "yesterday")]), "from"),
            (p(&[("to", "1e3")]), "to"),
            (p(&[("step", "0")]), "step"),
            (p(&[("step", "-5")]), "step"),
            (p(&[("from", "2000"), ("to", "1000")]), "from"),
            (p(&[("from", "0"), ("step", "300")]), "step"),
        ] {
            let err = window(&bad, now, TIERS).unwrap_err();
            assert_eq!(err.status, 400);
            assert!(err.message.contains(name), "{} names {name}", err.message);
        }
        // A step raised to the tier's and still too fine names both.
        let err = window(&p(&[("from", "0"), ("step", "1")]), now, TIERS).unwrap_err();
        assert_eq!(
            err.message,
            "step 1 s asked, 3600 s used for this range: more than 10000 points; use a larger \
             step or a shorter range"
        );
    }

    #[test]
    fn cluster_points_over_nodes() {
        let row = |node: &str, start, series: Vec<(SeriesKey, Triple)>| SeriesRow {
            node_name: node.to_owned(),
            start_ms: start,
            samples: 1,
            series,
        };
        let fs = |d: &str, v| {
            (
                SeriesKey::device(Figure::FsUsage, d),
                Triple::new(v, v, v + 10.0),
            )
        };
        let rows = [
            row("a", 0, vec![fs("/", 10.0), fs("/var", 50.0)]),
            row("b", 0, vec![fs("/", 20.0)]),
            row("b", 600_000, vec![fs("/", 30.0)]),
        ];
        let (avg, max) = cluster_points(Figure::FsUsage, &rows, 300_000);
        assert_eq!(avg, [(0, 20.0, 35.0, 50.0), (600_000, 30.0, 30.0, 30.0)]);
        assert_eq!(max, [(0, 30.0, 45.0, 60.0), (600_000, 40.0, 40.0, 40.0)]);
    }
}
