//! Receivers: the integrations a notification goes out through, and what they all get.

pub mod alertmanager;
pub mod email;
pub mod slack;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use atlhyper_model::{Alert, AlertState, Labels};

use super::config::{GlobalConfig, ReceiverConfig};

/// One group's alerts for one receiver, after the mute stage.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Receiver name.
    pub receiver: String,
    /// Group key.
    pub group_key: String,
    /// The group's labels.
    pub group_labels: Labels,
    /// Firing alerts first, then resolved ones.
    pub alerts: Vec<Alert>,
    /// The route's `group_interval` (forwarded alerts stay valid a few of them).
    pub group_interval: Duration,
    /// The route's `repeat_interval`.
    pub repeat_interval: Duration,
}

impl Notification {
    /// The firing alerts.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.state == AlertState::Firing)
    }

    /// The resolved alerts.
    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.state == AlertState::Resolved)
    }

    /// `firing` when any alert fires, else `resolved`.
    pub fn status(&self) -> &'static str {
        if self.firing().next().is_some() {
            "firing"
        } else {
            "resolved"
        }
    }

    /// Labels every alert has with the same value.
    pub fn common_labels(&self) -> Labels {
        common(self.alerts.iter().map(|a| &*a.labels))
    }

    /// Annotations every alert has with the same value.
    pub fn common_annotations(&self) -> Labels {
        common(self.alerts.iter().map(|a| &*a.annotations))
    }

    /// A one-line title: `[FIRING:3] NodeDown (cluster=c1)`: the group's labels, or where the
    /// route groups by nothing, the labels all alerts share.
    pub fn title(&self) -> String {
        let firing = self.firing().count();
        let head = if firing > 0 {
            format!("[FIRING:{firing}]")
        } else {
            "[RESOLVED]".to_owned()
        };
        let common;
        let shown = if self.group_labels.is_empty() {
            common = self.common_labels();
            &common
        } else {
            &self.group_labels
        };
        let name = shown.get("alertname").map_or("", String::as_str);
        let labels: Vec<String> = shown
            .iter()
            .filter(|(k, _)| *k != "alertname")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut title = head;
        if !name.is_empty() {
            title = format!("{title} {name}");
        }
        if !labels.is_empty() {
            title = format!("{title} ({})", labels.join(" "));
        }
        title
    }
}

fn common<'a>(mut sets: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = sets.next() else {
        return Labels::new();
    };
    let mut common = first.clone();
    for set in sets {
        common.retain(|k, v| set.get(k) == Some(v));
    }
    common
}

/// Why a delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver could not be reached or did not answer in time.
    #[error("{0}")]
    Transport(String),
    /// The receiver answered with an error status.
    #[error("receiver answered {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The start of the answer.
        body: String,
    },
}

/// What every integration shares.
#[derive(Debug, Clone)]
pub struct Context {
    /// One HTTP client (connection reuse), with the configured timeout.
    pub http: reqwest::Client,
    /// The master's URL as users reach it.
    pub external_url: String,
}

/// One way out: a webhook, a Slack webhook, an email, an Alertmanager.
#[derive(Debug)]
pub enum Integration {
    /// Alertmanager's webhook payload, version 4.
    Webhook(webhook::Webhook),
    /// Slack-compatible incoming webhook.
    Slack(slack::Slack),
    /// Email over SMTP.
    Email(email::Email),
    /// An external Alertmanager's `POST /api/v2/alerts`.
    Alertmanager(alertmanager::Forward),
}

impl Integration {
    /// `webhook`, `slack`, `email` or `alertmanager`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::Slack(_) => "slack",
            Self::Email(_) => "email",
            Self::Alertmanager(_) => "alertmanager",
        }
    }

    /// Whether resolved alerts are sent.
    pub fn send_resolved(&self) -> bool {
        match self {
            Self::Webhook(w) => w.send_resolved,
            Self::Slack(s) => s.send_resolved,
            Self::Email(e) => e.send_resolved,
            Self::Alertmanager(_) => true,
        }
    }

    /// Whether firing alerts are sent at every group flush and refresh, not only on change:
    /// an Alertmanager forgets alerts that are not re-sent before their `endsAt`.
    pub fn resend_while_firing(&self) -> bool {
        matches!(self, Self::Alertmanager(_))
    }

    /// One delivery attempt.
    pub async fn send(&self, n: &Notification, ctx: &Context) -> Result<(), DeliveryError> {
        match self {
            Self::Webhook(w) => w.send(n, ctx).await,
            Self::Slack(s) => s.send(n, ctx).await,
            Self::Email(e) => e.send(n, ctx).await,
            Self::Alertmanager(a) => a.send(n, ctx).await,
        }
    }
}

/// An integration with the key the notification log and metrics know it by.
#[derive(Debug, Clone)]
pub struct Named {
    /// Receiver name.
    pub receiver: String,
    /// `{receiver}/{kind}/{index}`.
    pub key: String,
    /// The integration.
    pub integration: Arc<Integration>,
}

/// Every receiver's integrations, by receiver name.
pub fn build(
    receivers: &[ReceiverConfig],
    global: &GlobalConfig,
) -> Result<HashMap<String, Vec<Named>>, String> {
    let mut out = HashMap::new();
    for r in receivers {
        let mut list: Vec<Integration> = Vec::new();
        list.extend(
            r.webhook_configs
                .iter()
                .cloned()
                .map(|c| Integration::Webhook(webhook::Webhook::new(c))),
        );
        list.extend(
            r.slack_configs
                .iter()
                .cloned()
                .map(|c| Integration::Slack(slack::Slack::new(c))),
        );
        for (i, c) in r.email_configs.iter().enumerate() {
            let email = email::Email::new(c, global)
                .map_err(|why| format!("receivers {:?} email_configs[{i}]: {why}", r.name))?;
            list.push(Integration::Email(email));
        }
        list.extend(
            r.alertmanager_configs
                .iter()
                .cloned()
                .map(|c| Integration::Alertmanager(alertmanager::Forward::new(c))),
        );
        let mut per_kind: HashMap<&'static str, usize> = HashMap::new();
        let named = list
            .into_iter()
            .map(|integration| {
                let index = per_kind.entry(integration.kind()).or_default();
                let key = format!("{}/{}/{}", r.name, integration.kind(), index);
                *index += 1;
                Named {
                    receiver: r.name.clone(),
                    key,
                    integration: Arc::new(integration),
                }
            })
            .collect();
        out.insert(r.name.clone(), named);
    }
    Ok(out)
}

/// Turns an HTTP answer into a result: 2xx is delivered, anything else an error with the start
/// of the body.
pub(crate) async fn check_answer(
    answer: Result<reqwest::Response, reqwest::Error>,
) -> Result<(), DeliveryError> {
    let answer = answer.map_err(|e| DeliveryError::Transport(transport_error(&e)))?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let body = answer.text().await.unwrap_or_default();
    Err(DeliveryError::Status {
        status: status.as_u16(),
        body: body.chars().take(200).collect(),
    })
}

/// A reqwest error with its causes (the bare message hides "connection refused").
fn transport_error(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
