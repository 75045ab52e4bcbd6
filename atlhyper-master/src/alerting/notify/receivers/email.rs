//! Email over SMTP (lettre): one message per notification, subject the group's title, a plain
//! text body listing each alert's labels and annotations.

use std::fmt::Write as _;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Context, DeliveryError, Notification};
use crate::alerting::notify::config::{EmailConfig, GlobalConfig};

/// An email integration.
pub struct Email {
    from: Mailbox,
    to: Vec<Mailbox>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Send resolved notices.
    pub send_resolved: bool,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

impl Email {
    /// From its configuration, unset server settings from `global`.
    pub fn new(c: &EmailConfig, global: &GlobalConfig) -> Result<Self, String> {
        let from: Mailbox = c
            .from
            .as_deref()
            .unwrap_or(&global.smtp_from)
            .parse()
            .map_err(|e| format!("from: {e}"))?;
        let to =
            c.to.split(',')
                .map(|a| {
                    a.trim()
                        .parse::<Mailbox>()
                        .map_err(|e| format!("to: {a:?}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
        let smarthost = c.smarthost.as_deref().unwrap_or(&global.smtp_smarthost);
        let (host, port) = smarthost
            .rsplit_once(':')
            .and_then(|(h, p)| {
                Some((
                    h.trim_start_matches('[').trim_end_matches(']'),
                    p.parse::<u16>().ok()?,
                ))
            })
            .ok_or_else(|| format!("smarthost: {smarthost:?} is not host:port"))?;
        let require_tls = c.require_tls.unwrap_or(global.smtp_require_tls);
        let builder = if port == 465 {
            AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| format!("smarthost: {e}"))?
        } else if require_tls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| format!("smarthost: {e}"))?
        } else {
            // Plain SMTP, as Alertmanager with require_tls: false (a relay on the local network).
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        };
        let mut builder = builder.port(port).timeout(Some(global.http_timeout));
        let user = c
            .auth_username
            .as_deref()
            .unwrap_or(&global.smtp_auth_username);
        if !user.is_empty() {
            let password = c
                .auth_password
                .as_deref()
                .unwrap_or(&global.smtp_auth_password);
            builder = builder.credentials(Credentials::new(user.to_owned(), password.to_owned()));
        }
        Ok(Self {
            from,
            to,
            transport: builder.build(),
            send_resolved: c.send_resolved,
        })
    }

    /// The plain-text body.
    pub fn body(n: &Notification, external_url: &str) -> String {
        let mut text = format!("{}\n\n", n.title());
        for alert in &n.alerts {
            let _ = writeln!(
                text,
                "[{}] {}",
                alert.state.as_str().to_uppercase(),
                alert.name()
            );
            let _ = writeln!(text, "Labels:");
            for (k, v) in alert.labels.iter() {
                let _ = writeln!(text, "  {k} = {v}");
            }
            if !alert.annotations.is_empty() {
                let _ = writeln!(text, "Annotations:");
                for (k, v) in alert.annotations.iter() {
                    let _ = writeln!(text, "  {k} = {v}");
                }
            }
            if let Some(at) = alert.fired_at {
                let _ = writeln!(text, "Started: {}", at.to_rfc3339());
            }
            if let Some(at) = alert.resolved_at {
                let _ = writeln!(text, "Ended: {}", at.to_rfc3339());
            }
            text.push('\n');
        }
        if !external_url.is_empty() {
            let _ = writeln!(text, "{external_url}");
        }
        text
    }

    /// Sends the message.
    pub async fn send(&self, n: &Notification, ctx: &Context) -> Result<(), DeliveryError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(n.title())
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(Self::body(n, &ctx.external_url))
            .map_err(|e| DeliveryError::Transport(format!("building the message: {e}")))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| DeliveryError::Transport(format!("smtp: {e}")))
    }
}
