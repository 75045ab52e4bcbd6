//! Forwarding to an external Alertmanager: `POST {url}/api/v2/alerts` with its postable alerts.
//! Firing alerts carry an `endsAt` a few group intervals ahead and are re-sent at every group
//! flush while they fire, so the Alertmanager keeps them exactly as long as we do; a resolved
//! alert is sent once with its real end.

use std::time::Duration;

use atlhyper_model::{AlertState, Labels};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::webhook::generator_url;
use super::{Context, DeliveryError, Notification, check_answer};
use crate::alerting::notify::config::AlertmanagerConfig;

/// How many group intervals a forwarded firing alert stays valid without being re-sent.
const VALID_FOR_INTERVALS: u32 = 3;

/// An Alertmanager integration.
#[derive(Debug)]
pub struct Forward {
    alerts_url: reqwest::Url,
}

/// Alertmanager's `postableAlert`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert<'a> {
    /// Labels.
    pub labels: &'a Labels,
    /// Annotations.
    pub annotations: &'a Labels,
    /// When it started firing.
    pub starts_at: DateTime<Utc>,
    /// When it resolved, or until when it holds unless re-sent.
    pub ends_at: DateTime<Utc>,
    /// Link back to the master.
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    pub generator_url: String,
}

impl Forward {
    /// From its configuration.
    pub fn new(c: AlertmanagerConfig) -> Self {
        let mut alerts_url = c.url;
        let path = format!("{}/api/v2/alerts", alerts_url.path().trim_end_matches('/'));
        alerts_url.set_path(&path);
        Self { alerts_url }
    }

    /// The alerts as Alertmanager takes them, at `now`.
    pub fn alerts<'a>(
        n: &'a Notification,
        external_url: &str,
        now: DateTime<Utc>,
    ) -> Vec<PostableAlert<'a>> {
        let valid = chrono::Duration::from_std(n.group_interval * VALID_FOR_INTERVALS)
            .unwrap_or(chrono::Duration::hours(1))
            .max(chrono::Duration::from_std(Duration::from_secs(60)).unwrap_or_default());
        n.alerts
            .iter()
            .map(|a| PostableAlert {
                labels: &a.labels,
                annotations: &a.annotations,
                starts_at: a.fired_at.unwrap_or(a.active_at),
                ends_at: match a.state {
                    AlertState::Resolved => a.resolved_at.unwrap_or(a.evaluated_at),
                    _ => now + valid,
                },
                generator_url: generator_url(external_url, a),
            })
            .collect()
    }

    /// POSTs the alerts.
    pub async fn send(&self, n: &Notification, ctx: &Context) -> Result<(), DeliveryError> {
        let alerts = Self::alerts(n, &ctx.external_url, Utc::now());
        check_answer(
            ctx.http
                .post(self.alerts_url.clone())
                .json(&alerts)
                .send()
                .await,
        )
        .await
    }
}
