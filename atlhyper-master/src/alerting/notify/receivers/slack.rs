//! Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat): one message per
//! notification, an attachment coloured by status, one line per alert.

use std::fmt::Write as _;

use serde_json::json;

use super::{Context, DeliveryError, Notification, check_answer};
use crate::alerting::notify::config::SlackConfig;

/// A Slack integration.
#[derive(Debug)]
pub struct Slack {
    api_url: reqwest::Url,
    channel: Option<String>,
    username: Option<String>,
    /// Send resolved notices.
    pub send_resolved: bool,
}

/// Alerts listed in one message; the rest are counted (Slack cuts long attachments anyway).
const MAX_LINES: usize = 50;

impl Slack {
    /// From its configuration.
    pub fn new(c: SlackConfig) -> Self {
        Self {
            api_url: c.api_url,
            channel: c.channel,
            username: c.username,
            send_resolved: c.send_resolved,
        }
    }

    /// The message body.
    pub fn message(&self, n: &Notification, external_url: &str) -> serde_json::Value {
        let mut text = String::new();
        for alert in n.alerts.iter().take(MAX_LINES) {
            let summary = alert
                .annotations
                .get("summary")
                .or_else(|| alert.annotations.get("description"))
                .map_or(String::new(), |s| format!(" {s}"));
            let labels: Vec<String> = alert
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(text, "*{}*{summary} ({})", alert.state, labels.join(", "));
        }
        if n.alerts.len() > MAX_LINES {
            let _ = writeln!(text, "... and {} more", n.alerts.len() - MAX_LINES);
        }
        let mut body = json!({
            "text": n.title(),
            "attachments": [{
                "color": if n.status() == "firing" { "danger" } else { "good" },
                "title": n.title(),
                "title_link": external_url,
                "text": text,
                "fallback": n.title(),
            }],
        });
        if let Some(channel) = &self.channel {
            body["channel"] = json!(channel);
        }
        if let Some(username) = &self.username {
            body["username"] = json!(username);
        }
        body
    }

    /// POSTs the message.
    pub async fn send(&self, n: &Notification, ctx: &Context) -> Result<(), DeliveryError> {
        let body = self.message(n, &ctx.external_url);
        check_answer(ctx.http.post(self.api_url.clone()).json(&body).send().await).await
    }
}
