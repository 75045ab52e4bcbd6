//! Forwarding to an external Alertmanager: `POST {url}/api/v2/alerts` with its postable alerts.
//! As Prometheus does with its Alertmanagers, firing alerts are re-sent while they fire, at
//! every group flush and at least every [`RESEND_EVERY`] whatever the route's `group_interval`
//! and `repeat_interval` (the Alertmanager de-duplicates them itself), each with an `endsAt`
//! four re-send periods ahead: the Alertmanager keeps them while we do, and lets them expire
//! soon after we stop (a silence, a master gone). A resolved alert is sent with its real end.

use std::time::Duration;

use atlhyper_model::{AlertState, Labels};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::webhook::generator_url;
use super::{Context, DeliveryError, Notification, check_answer};
use crate::alerting::notify::config::AlertmanagerConfig;

/// Longest time between two sends of a firing alert to an Alertmanager (Prometheus'
/// `--rules.alert.resend-delay` default).
pub const RESEND_EVERY: Duration = Duration::from_secs(60);
/// How many re-send periods a forwarded firing alert stays valid without being re-sent
/// (Prometheus: four).
const VALID_FOR_RESENDS: u32 = 4;

/// How long a firing alert sent now stays valid in the Alertmanager: four re-send periods
/// (the group interval when shorter than [`RESEND_EVERY`]), at least [`RESEND_EVERY`].
pub fn valid_for(group_interval: Duration) -> Duration {
    (group_interval.min(RESEND_EVERY) * VALID_FOR_RESENDS).max(RESEND_EVERY)
}

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
        // At most four minutes: always representable.
        let valid = chrono::Duration::from_std(valid_for(n.group_interval))
            .unwrap_or(chrono::Duration::minutes(4));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firing_alerts_stay_valid_four_resend_periods_and_at_least_one_minute() {
        let s = Duration::from_secs;
        assert_eq!(valid_for(s(1)), s(60));
        assert_eq!(valid_for(s(30)), s(120));
        assert_eq!(valid_for(s(60)), s(240));
        assert_eq!(valid_for(s(300)), s(240));
        assert_eq!(valid_for(s(86_400)), s(240));
    }
}
