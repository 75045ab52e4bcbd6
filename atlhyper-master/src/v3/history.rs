//! A node's stored trend as the AtlHyper web reads it (`NodeMetricsHistoryResponse`).

use atlhyper_model::MetricsDataPoint;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// `GET /api/v2/node-metrics/{name}/history`: four trends of the stored history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeHistory {
    /// Node name.
    pub node_name: String,
    /// Start of the requested range.
    pub start: DateTime<Utc>,
    /// End of the requested range.
    pub end: DateTime<Utc>,
    /// The trends.
    pub data: HistoryData,
}

/// The trends v3's web draws, each in time order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryData {
    /// CPU busy percent.
    pub cpu: Vec<HistoryPoint>,
    /// Memory used percent.
    pub memory: Vec<HistoryPoint>,
    /// Primary disk used percent.
    pub disk: Vec<HistoryPoint>,
    /// CPU temperature, Celsius (0 where the node has no sensor).
    pub temp: Vec<HistoryPoint>,
}

/// One point: v3 writes the time as an RFC 3339 string to the second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryPoint {
    /// RFC 3339, UTC, seconds.
    pub timestamp: String,
    /// The figure.
    pub value: f64,
}

impl HistoryData {
    /// The trends of stored history points.
    pub fn from_points(points: &[MetricsDataPoint]) -> Self {
        let trend = |figure: fn(&MetricsDataPoint) -> f64| -> Vec<HistoryPoint> {
            points
                .iter()
                .map(|p| HistoryPoint {
                    timestamp: p.timestamp.to_rfc3339_opts(SecondsFormat::Secs, true),
                    value: figure(p),
                })
                .collect()
        };
        Self {
            cpu: trend(|p| p.cpu_usage),
            memory: trend(|p| p.memory_usage),
            disk: trend(|p| p.disk_usage),
            temp: trend(|p| p.cpu_temp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_trend_takes_its_figure_at_each_time() {
        let at: DateTime<Utc> = "2024-05-01T12:05:00.250Z".parse().unwrap();
        let points = [MetricsDataPoint {
            timestamp: at,
            cpu_usage: 1.0,
            memory_usage: 2.0,
            disk_usage: 3.0,
            cpu_temp: 4.0,
            load_1: 9.0,
            ..Default::default()
        }];
        let data = HistoryData::from_points(&points);
        let one = |v: &[HistoryPoint]| (v.len(), v[0].timestamp.clone(), v[0].value);
        let t = "2024-05-01T12:05:00Z".to_owned();
        assert_eq!(one(&data.cpu), (1, t.clone(), 1.0));
        assert_eq!(one(&data.memory), (1, t.clone(), 2.0));
        assert_eq!(one(&data.disk), (1, t.clone(), 3.0));
        assert_eq!(one(&data.temp), (1, t, 4.0));
        assert_eq!(HistoryData::from_points(&[]), HistoryData::default());
    }
}
