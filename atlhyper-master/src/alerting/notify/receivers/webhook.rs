//! Webhooks with Alertmanager's payload, version 4, so receivers written for Alertmanager work
//! unchanged. The format: <https://prometheus.io/docs/alerting/latest/configuration/#webhook_config>.

use atlhyper_model::{Alert, AlertState, Labels};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Context, DeliveryError, Notification, check_answer};
use crate::alerting::notify::config::WebhookConfig;

/// A webhook integration.
#[derive(Debug)]
pub struct Webhook {
    url: reqwest::Url,
    /// Send resolved notices.
    pub send_resolved: bool,
    max_alerts: usize,
}

/// The payload, field names as Alertmanager sends them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload<'a> {
    /// Always `"4"`.
    pub version: &'static str,
    /// The group key.
    pub group_key: &'a str,
    /// Alerts left out by `max_alerts`.
    pub truncated_alerts: usize,
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// Receiver name.
    pub receiver: &'a str,
    /// The group's labels.
    pub group_labels: &'a Labels,
    /// Labels all alerts share.
    pub common_labels: Labels,
    /// Annotations all alerts share.
    pub common_annotations: Labels,
    /// The master's URL.
    #[serde(rename = "externalURL")]
    pub external_url: &'a str,
    /// The alerts.
    pub alerts: Vec<PayloadAlert<'a>>,
}

/// One alert of the payload.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAlert<'a> {
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// Labels.
    pub labels: &'a Labels,
    /// Annotations.
    pub annotations: &'a Labels,
    /// When it started firing.
    pub starts_at: DateTime<Utc>,
    /// When it resolved; Go's zero time (`0001-01-01T00:00:00Z`) while firing, as Alertmanager.
    pub ends_at: DateTime<Utc>,
    /// Link to the alert in the master.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// The alert's fingerprint.
    pub fingerprint: &'a str,
}

/// Go's zero `time.Time`, which Alertmanager sends as `endsAt` of firing alerts.
pub fn zero_time() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(-62_135_596_800, 0).unwrap_or_default()
}

/// Link to an alert in the master's UI/API.
pub fn generator_url(external_url: &str, alert: &Alert) -> String {
    if external_url.is_empty() {
        return String::new();
    }
    format!(
        "{}/api/v2/alerts?fingerprint={}",
        external_url.trim_end_matches('/'),
        alert.fingerprint
    )
}

impl<'a> PayloadAlert<'a> {
    /// An alert as Alertmanager shows it.
    pub fn new(alert: &'a Alert, external_url: &str) -> Self {
        let resolved = alert.state == AlertState::Resolved;
        Self {
            status: if resolved { "resolved" } else { "firing" },
            labels: &alert.labels,
            annotations: &alert.annotations,
            starts_at: alert.fired_at.unwrap_or(alert.active_at),
            ends_at: if resolved {
                alert.resolved_at.unwrap_or(alert.evaluated_at)
            } else {
                zero_time()
            },
            generator_url: generator_url(external_url, alert),
            fingerprint: &alert.fingerprint,
        }
    }
}

impl<'a> Payload<'a> {
    /// The payload of a notification, at most `max_alerts` alerts (0: all).
    pub fn new(n: &'a Notification, external_url: &'a str, max_alerts: usize) -> Self {
        let keep = if max_alerts == 0 {
            n.alerts.len()
        } else {
            max_alerts.min(n.alerts.len())
        };
        Self {
            version: "4",
            group_key: &n.group_key,
            truncated_alerts: n.alerts.len() - keep,
            status: n.status(),
            receiver: &n.receiver,
            group_labels: &n.group_labels,
            common_labels: n.common_labels(),
            common_annotations: n.common_annotations(),
            external_url,
            alerts: n.alerts[..keep]
                .iter()
                .map(|a| PayloadAlert::new(a, external_url))
                .collect(),
        }
    }
}

impl Webhook {
    /// From its configuration.
    pub fn new(c: WebhookConfig) -> Self {
        Self {
            url: c.url,
            send_resolved: c.send_resolved,
            max_alerts: c.max_alerts,
        }
    }

    /// POSTs the payload.
    pub async fn send(&self, n: &Notification, ctx: &Context) -> Result<(), DeliveryError> {
        let payload = Payload::new(n, &ctx.external_url, self.max_alerts);
        check_answer(ctx.http.post(self.url.clone()).json(&payload).send().await).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn alert(node: &str, state: AlertState) -> Alert {
        let labels: Labels = [
            ("alertname", "NodeDown"),
            ("cluster", "c1"),
            ("node", node),
            ("severity", "critical"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let start = "2024-01-20T10:00:00Z".parse().unwrap();
        let end: DateTime<Utc> = "2024-01-20T10:05:00.5Z".parse().unwrap();
        Alert {
            fingerprint: atlhyper_model::fingerprint(&labels),
            rule: "NodeDown".into(),
            annotations: Labels::from([("summary".to_owned(), format!("{node} is down"))]).into(),
            labels: labels.into(),
            state,
            value: 0.0,
            active_at: start,
            fired_at: Some(start),
            resolved_at: (state == AlertState::Resolved).then_some(end),
            evaluated_at: end,
        }
    }

    /// Field by field against the documented format (version 4).
    #[test]
    fn payload_is_alertmanager_version_4() {
        let n = Notification {
            receiver: "ops".into(),
            group_key: "{}:{alertname=\"NodeDown\",cluster=\"c1\"}".into(),
            group_labels: [
                ("alertname".to_owned(), "NodeDown".to_owned()),
                ("cluster".to_owned(), "c1".to_owned()),
            ]
            .into(),
            alerts: vec![
                alert("n1", AlertState::Firing),
                alert("n2", AlertState::Resolved),
            ],
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(3600),
        };
        let json = serde_json::to_value(Payload::new(&n, "http://master:8080", 0)).unwrap();
        let top: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = [
            "version",
            "groupKey",
            "truncatedAlerts",
            "status",
            "receiver",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "alerts",
        ];
        expected.sort_unstable();
        let mut top_sorted = top.clone();
        top_sorted.sort_unstable();
        assert_eq!(top_sorted, expected);
        assert_eq!(json["version"], "4");
        assert_eq!(
            json["groupKey"],
            "{}:{alertname=\"NodeDown\",cluster=\"c1\"}"
        );
        assert_eq!(json["truncatedAlerts"], 0);
        assert_eq!(json["status"], "firing");
        assert_eq!(json["receiver"], "ops");
        assert_eq!(
            json["groupLabels"],
            serde_json::json!({"alertname": "NodeDown", "cluster": "c1"})
        );
        assert_eq!(
            json["commonLabels"],
            serde_json::json!({"alertname": "NodeDown", "cluster": "c1", "severity": "critical"})
        );
        // The summaries differ: no common annotation.
        assert_eq!(json["commonAnnotations"], serde_json::json!({}));
        assert_eq!(json["externalURL"], "http://master:8080");

        let firing = &json["alerts"][0];
        let mut keys: Vec<&str> = firing
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "annotations",
                "endsAt",
                "fingerprint",
                "generatorURL",
                "labels",
                "startsAt",
                "status"
            ]
        );
        assert_eq!(firing["status"], "firing");
        assert_eq!(firing["labels"]["node"], "n1");
        assert_eq!(firing["annotations"]["summary"], "n1 is down");
        assert_eq!(firing["startsAt"], "2024-01-20T10:00:00Z");
        assert_eq!(firing["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(firing["fingerprint"], n.alerts[0].fingerprint.as_str());
        assert_eq!(
            firing["generatorURL"],
            format!(
                "http://master:8080/api/v2/alerts?fingerprint={}",
                n.alerts[0].fingerprint
            )
        );
        let resolved = &json["alerts"][1];
        assert_eq!(resolved["status"], "resolved");
        assert_eq!(resolved["endsAt"], "2024-01-20T10:05:00.500Z");

        // max_alerts cuts the list and counts the rest.
        let json = serde_json::to_value(Payload::new(&n, "", 1)).unwrap();
        assert_eq!(json["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(json["truncatedAlerts"], 1);
        assert_eq!(json["alerts"][0]["generatorURL"], "");
    }
}
