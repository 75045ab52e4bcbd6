//! The notification part of the alert configuration file (`--alert-config`, YAML), in
//! Alertmanager's shape: `global`, `route`, `receivers`, `inhibit_rules`. The rule engine reads
//! `rules:` from the same file; this side accepts that key and ignores it, and refuses unknown
//! fields everywhere else. Errors name the file, the line and column, and the field.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::matcher::Matcher;

/// The notification configuration, checked.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Settings that apply to every receiver.
    pub global: GlobalConfig,
    /// The root of the route tree: its receiver is the default one.
    pub route: RouteConfig,
    /// Every receiver the routes name.
    pub receivers: Vec<ReceiverConfig>,
    /// Inhibition rules added to the built-in ones.
    pub inhibit_rules: Vec<InhibitRuleConfig>,
}

/// Why a configuration was refused: the file, where in it, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotifyConfigError(pub String);

/// The top level of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    global: GlobalConfig,
    route: Option<RouteConfig>,
    #[serde(default)]
    receivers: Vec<ReceiverConfig>,
    #[serde(default)]
    inhibit_rules: Vec<InhibitRuleConfig>,
    /// The rule engine's part of the same file, read there.
    #[serde(default)]
    #[allow(dead_code)]
    rules: serde::de::IgnoredAny,
}

/// `global:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// A firing alert the engine stopped publishing (its rule was removed) is taken as resolved
    /// after this long (5m), as Alertmanager's `resolve_timeout`.
    #[serde(deserialize_with = "duration")]
    pub resolve_timeout: Duration,
    /// Time one delivery attempt may take (10s).
    #[serde(deserialize_with = "duration")]
    pub http_timeout: Duration,
    /// First wait before retrying a failed delivery (1s); doubled after every failure.
    #[serde(deserialize_with = "duration")]
    pub retry_initial: Duration,
    /// Longest wait between two attempts (1m).
    #[serde(deserialize_with = "duration")]
    pub retry_max: Duration,
    /// A delivery still failing this long after its first attempt is given up and logged as
    /// failed (10m); the group's next notification carries its alerts again.
    #[serde(deserialize_with = "duration")]
    pub retry_for: Duration,
    /// The master's URL as users reach it: `externalURL` of the webhook payload and the links in
    /// messages (empty when unknown).
    pub external_url: String,
    /// The two built-in inhibitions (AgentDown mutes NodeDown of its cluster, NodeDown mutes the
    /// node's other alerts); on by default.
    pub builtin_inhibit_rules: bool,
    /// Default SMTP server of email receivers, `host:port`.
    pub smtp_smarthost: String,
    /// Default sender address of email receivers.
    pub smtp_from: String,
    /// Default SMTP user (no authentication when empty).
    pub smtp_auth_username: String,
    /// Default SMTP password.
    pub smtp_auth_password: String,
    /// Whether SMTP must use STARTTLS (true); port 465 uses TLS from the start instead.
    pub smtp_require_tls: bool,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            resolve_timeout: Duration::from_secs(5 * 60),
            http_timeout: Duration::from_secs(10),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            retry_for: Duration::from_secs(10 * 60),
            external_url: String::new(),
            builtin_inhibit_rules: true,
            smtp_smarthost: String::new(),
            smtp_from: String::new(),
            smtp_auth_username: String::new(),
            smtp_auth_password: String::new(),
            smtp_require_tls: true,
        }
    }
}

/// One node of the route tree. Unset fields are inherited from the parent route.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Receiver name (required on the root).
    pub receiver: Option<String>,
    /// Labels alerts are grouped by; `...` alone groups by every label.
    pub group_by: Option<Vec<String>>,
    /// Wait before the first notification of a new group (30s).
    #[serde(default, deserialize_with = "opt_duration")]
    pub group_wait: Option<Duration>,
    /// Wait between notifications of a group that changed (5m).
    #[serde(default, deserialize_with = "opt_duration")]
    pub group_interval: Option<Duration>,
    /// Wait before notifying an unchanged group again (4h).
    #[serde(default, deserialize_with = "opt_duration")]
    pub repeat_interval: Option<Duration>,
    /// All must match for an alert to take this route (`severity="critical"`, ...).
    #[serde(default, deserialize_with = "matchers")]
    pub matchers: Vec<Matcher>,
    /// Go on to the next sibling after matching this route.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Child routes, tried in order.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// A named receiver and its integrations.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Name the routes use.
    pub name: String,
    /// Webhooks receiving Alertmanager's webhook payload (version 4).
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    /// Slack-compatible incoming webhooks.
    #[serde(default)]
    pub slack_configs: Vec<SlackConfig>,
    /// Email over SMTP.
    #[serde(default)]
    pub email_configs: Vec<EmailConfig>,
    /// External Alertmanagers receiving the alerts (`POST /api/v2/alerts`).
    #[serde(default)]
    pub alertmanager_configs: Vec<AlertmanagerConfig>,
}

/// `webhook_configs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    #[serde(deserialize_with = "http_url")]
    pub url: reqwest::Url,
    /// Send resolved notices (true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// At most this many alerts per payload, 0 for all (the rest counted in `truncatedAlerts`).
    #[serde(default)]
    pub max_alerts: usize,
}

/// `slack_configs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming webhook URL.
    #[serde(deserialize_with = "http_url")]
    pub api_url: reqwest::Url,
    /// Channel override (the webhook's own channel when unset).
    #[serde(default)]
    pub channel: Option<String>,
    /// User name override.
    #[serde(default)]
    pub username: Option<String>,
    /// Send resolved notices (false, as Alertmanager).
    #[serde(default)]
    pub send_resolved: bool,
}

/// `email_configs[]`; unset server settings come from `global`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Recipient addresses, comma separated.
    pub to: String,
    /// Sender address.
    #[serde(default)]
    pub from: Option<String>,
    /// SMTP server `host:port`.
    #[serde(default)]
    pub smarthost: Option<String>,
    /// SMTP user.
    #[serde(default)]
    pub auth_username: Option<String>,
    /// SMTP password.
    #[serde(default)]
    pub auth_password: Option<String>,
    /// STARTTLS required.
    #[serde(default)]
    pub require_tls: Option<bool>,
    /// Send resolved notices (false, as Alertmanager).
    #[serde(default)]
    pub send_resolved: bool,
}

/// `alertmanager_configs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// The Alertmanager's base URL (`http://alertmanager:9093`); alerts go to
    /// `{url}/api/v2/alerts`.
    #[serde(deserialize_with = "http_url")]
    pub url: reqwest::Url,
}

/// `inhibit_rules[]`: while an alert matching `source_matchers` fires, alerts matching
/// `target_matchers` with the same values of the `equal` labels are not notified.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    /// What the inhibiting alert matches.
    #[serde(deserialize_with = "matchers")]
    pub source_matchers: Vec<Matcher>,
    /// What the muted alerts match.
    #[serde(deserialize_with = "matchers")]
    pub target_matchers: Vec<Matcher>,
    /// Labels that must be equal in both.
    #[serde(default)]
    pub equal: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Marks the raw text inside a value error, so [`NotifyConfig::from_yaml`] can find the line and
/// key of the value: the YAML parser places errors of nested values at their enclosing mapping.
const RAW: char = '\u{1}';

/// A value that parsed as YAML but means nothing here.
fn bad_value<E: serde::de::Error>(raw: &str, why: impl std::fmt::Display) -> E {
    E::custom(format!("{RAW}{raw}{RAW}{why}"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    atlhyper_model::parse_duration(&text).map_err(|e| bad_value(&text, e.to_string()))
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn matchers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Matcher>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|m| m.parse().map_err(|why: String| bad_value(m, why)))
        .collect()
}

fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<reqwest::Url, D::Error> {
    let text = String::deserialize(d)?;
    parse_http_url(&text).map_err(|why| bad_value(&text, why))
}

/// An `http` or `https` URL with a host.
pub fn parse_http_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{text:?} is not an http(s) URL with a host"));
    }
    Ok(url)
}

/// Group-by of the default route when only `--alert-webhook` is given.
const DEFAULT_GROUP_BY: [&str; 2] = ["alertname", "cluster"];

impl NotifyConfig {
    /// Every alert to one webhook, grouped by `alertname` and `cluster` (`--alert-webhook`).
    pub fn webhook(url: reqwest::Url) -> Self {
        let mut config = Self::empty();
        config.add_default_webhook(url);
        config
    }

    /// No receiver integration at all: alerts are grouped and logged, nothing is sent.
    pub fn empty() -> Self {
        Self {
            global: GlobalConfig::default(),
            route: RouteConfig {
                receiver: Some("default".to_owned()),
                group_by: Some(DEFAULT_GROUP_BY.map(str::to_owned).to_vec()),
                ..RouteConfig::default()
            },
            receivers: vec![ReceiverConfig {
                name: "default".to_owned(),
                ..ReceiverConfig::default()
            }],
            inhibit_rules: Vec::new(),
        }
    }

    /// Adds a webhook to the root route's receiver (`--alert-webhook` next to a file).
    pub fn add_default_webhook(&mut self, url: reqwest::Url) {
        let name = self.route.receiver.clone().unwrap_or_default();
        if let Some(receiver) = self.receivers.iter_mut().find(|r| r.name == name) {
            receiver.webhook_configs.push(WebhookConfig {
                url,
                send_resolved: true,
                max_alerts: 0,
            });
        }
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, NotifyConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| NotifyConfigError(format!("{}: {e}", path.display())))?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Parses and checks `text`; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Self, NotifyConfigError> {
        let parsed: FileConfig =
            serde_yaml_ng::from_str(text).map_err(|e| yaml_error(text, file, &e))?;
        let config = match parsed.route {
            Some(route) => Self {
                global: parsed.global,
                route,
                receivers: parsed.receivers,
                inhibit_rules: parsed.inhibit_rules,
            },
            None if parsed.receivers.is_empty() => Self {
                global: parsed.global,
                inhibit_rules: parsed.inhibit_rules,
                ..Self::empty()
            },
            None => {
                return Err(NotifyConfigError(format!(
                    "{file}: receivers given without a route: add route.receiver"
                )));
            }
        };
        config.check().map_err(|(field, needle, why)| {
            let at = line_of(text, &needle)
                .map(|line| format!("{file}:{line}"))
                .unwrap_or_else(|| file.to_owned());
            NotifyConfigError(format!("{at}: {field}: {why}"))
        })?;
        Ok(config)
    }

    /// What serde cannot see: receiver references, duplicate names, zero intervals. An error is
    /// (field path, text to find its line by, reason).
    fn check(&self) -> Result<(), (String, String, String)> {
        let mut names = std::collections::HashSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let field = format!("receivers[{i}].name");
            if r.name.is_empty() {
                return Err((field, "name:".into(), "empty receiver name".into()));
            }
            if !names.insert(r.name.as_str()) {
                return Err((
                    field,
                    r.name.clone(),
                    format!("duplicate receiver {:?}", r.name),
                ));
            }
            for (j, e) in r.email_configs.iter().enumerate() {
                let field = format!("receivers[{i}].email_configs[{j}]");
                if e.smarthost
                    .as_deref()
                    .unwrap_or(&self.global.smtp_smarthost)
                    .is_empty()
                {
                    return Err((
                        field,
                        e.to.clone(),
                        "no smarthost (here or global.smtp_smarthost)".into(),
                    ));
                }
                if e.from
                    .as_deref()
                    .unwrap_or(&self.global.smtp_from)
                    .is_empty()
                {
                    return Err((
                        field,
                        e.to.clone(),
                        "no from (here or global.smtp_from)".into(),
                    ));
                }
            }
        }
        if self.route.receiver.is_none() {
            return Err((
                "route.receiver".into(),
                "route:".into(),
                "the root route needs a receiver".into(),
            ));
        }
        let g = &self.global;
        for (field, d) in [
            ("global.http_timeout", g.http_timeout),
            ("global.retry_initial", g.retry_initial),
            ("global.retry_max", g.retry_max),
            ("global.resolve_timeout", g.resolve_timeout),
        ] {
            if d.is_zero() {
                let key = field.trim_start_matches("global.");
                return Err((
                    field.into(),
                    format!("{key}:"),
                    "must be more than 0".into(),
                ));
            }
        }
        check_route(&self.route, "route", &names)
    }
}

fn check_route(
    route: &RouteConfig,
    path: &str,
    receivers: &std::collections::HashSet<&str>,
) -> Result<(), (String, String, String)> {
    if let Some(name) = &route.receiver
        && !receivers.contains(name.as_str())
    {
        return Err((
            format!("{path}.receiver"),
            format!("receiver: {name}"),
            format!("no receiver named {name:?} in receivers"),
        ));
    }
    for (field, d) in [
        ("group_interval", route.group_interval),
        ("repeat_interval", route.repeat_interval),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            return Err((
                format!("{path}.{field}"),
                format!("{field}:"),
                "must be more than 0".into(),
            ));
        }
    }
    if let Some(by) = &route.group_by {
        for (i, label) in by.iter().enumerate() {
            let all = label == "..." && by.len() == 1;
            if !all && !super::matcher::valid_label_name(label) {
                return Err((
                    format!("{path}.group_by[{i}]"),
                    label.clone(),
                    format!("{label:?} is not a label name (or `...` alone)"),
                ));
            }
        }
    }
    for (i, child) in route.routes.iter().enumerate() {
        check_route(child, &format!("{path}.routes[{i}]"), receivers)?;
    }
    Ok(())
}

/// A parse error as `file:line:column: field: message`. A bad value (see [`bad_value`]) is
/// placed by the parser at its enclosing mapping: find its own line (the first from there that
/// holds the raw text) and key.
fn yaml_error(text: &str, file: &str, e: &serde_yaml_ng::Error) -> NotifyConfigError {
    let message = e.to_string();
    let Some(location) = e.location() else {
        return NotifyConfigError(format!("{file}: {message}"));
    };
    let mut parts = message.splitn(3, RAW);
    if let (Some(head), Some(raw), Some(tail)) = (parts.next(), parts.next(), parts.next()) {
        // head: "route.routes[0]: invalid configuration: " or "route: "; tail: "why at line ..".
        let path = head.split(": ").next().unwrap_or("").trim_end_matches(':');
        let why = tail.rsplit_once(" at line ").map_or(tail, |(why, _)| why);
        let found = text
            .lines()
            .enumerate()
            .skip(location.line().saturating_sub(1))
            .find(|(_, l)| l.contains(raw));
        if let Some((index, line)) = found {
            let key = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_start_matches("- ")
                .trim();
            let field = match (
                path.is_empty() || path == ".",
                key.starts_with(['\'', '"', '-']),
            ) {
                (_, true) => path.to_owned(),
                (true, false) => key.to_owned(),
                (false, false) => format!("{path}.{key}"),
            };
            return NotifyConfigError(format!("{file}:{}: {field}: {raw:?}: {why}", index + 1));
        }
        return NotifyConfigError(format!(
            "{file}:{}:{}: {path}: {raw:?}: {why}",
            location.line(),
            location.column()
        ));
    }
    NotifyConfigError(format!(
        "{file}:{}:{}: {message}",
        location.line(),
        location.column()
    ))
}

/// The first line (1-based) containing `needle`, to point at a value serde already accepted.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
global:
  resolve_timeout: 2m
  smtp_smarthost: mail.example:25
  smtp_from: atlhyper@example
rules:
  - name: HighCpu
    expr: whatever the engine reads
route:
  receiver: ops
  group_by: [alertname, cluster]
  group_wait: 10s
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
receivers:
  - name: ops
    webhook_configs:
      - url: http://127.0.0.1:5001/hook
    email_configs:
      - to: ops@example
  - name: pager
    slack_configs:
      - api_url: https://hooks.slack.example/T0/B0/x
        channel: '#pager'
    alertmanager_configs:
      - url: http://alertmanager:9093
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
"#;

    #[test]
    fn reads_a_full_file_and_leaves_rules_to_the_engine() {
        let c = NotifyConfig::from_yaml(FULL, "alerts.yaml").unwrap();
        assert_eq!(c.global.resolve_timeout, Duration::from_secs(120));
        assert_eq!(c.route.group_wait, Some(Duration::from_secs(10)));
        assert_eq!(c.route.routes[0].receiver.as_deref(), Some("pager"));
        assert!(c.route.routes[0].continue_matching);
        assert_eq!(c.receivers.len(), 2);
        assert_eq!(
            c.receivers[1].alertmanager_configs[0].url.as_str(),
            "http://alertmanager:9093/"
        );
        assert_eq!(c.inhibit_rules[0].equal, ["cluster"]);
    }

    fn error(text: &str) -> String {
        NotifyConfig::from_yaml(text, "alerts.yaml").unwrap_err().0
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = error("route:\n  receiver: ops\n  group_wiat: 10s\nreceivers:\n  - name: ops\n");
        assert!(e.starts_with("alerts.yaml:3:"), "{e}");
        assert!(e.contains("group_wiat"), "{e}");

        let e = error("route:\n  receiver: ops\n  group_wait: soon\nreceivers:\n  - name: ops\n");
        assert!(e.starts_with("alerts.yaml:3:"), "{e}");
        assert!(e.contains("route.group_wait") && e.contains("soon"), "{e}");

        let e = error(
            "route:\n  receiver: ops\nreceivers:\n  - name: ops\n    webhook_configs:\n      - url: ftp://x\n",
        );
        assert!(e.starts_with("alerts.yaml:6:"), "{e}");
        assert!(e.contains("receivers[0].webhook_configs[0].url"), "{e}");

        let e = error(
            "route:\n  receiver: ops\n  matchers: ['node=~\"(\"']\nreceivers:\n  - name: ops\n",
        );
        assert!(e.starts_with("alerts.yaml:3:"), "{e}");
        assert!(
            e.contains("route.matchers") && e.contains("does not compile"),
            "{e}"
        );

        let e = error(
            "route:\n  receiver: ops\n  routes:\n    - receiver: nobody\nreceivers:\n  - name: ops\n",
        );
        assert!(
            e.starts_with("alerts.yaml:4: route.routes[0].receiver"),
            "{e}"
        );
        assert!(e.contains("nobody"), "{e}");

        let e = error("surprise: 1\n");
        assert!(
            e.starts_with("alerts.yaml:1:") && e.contains("surprise"),
            "{e}"
        );

        let e = error(
            "route:\n  receiver: ops\nreceivers:\n  - name: ops\n    email_configs:\n      - to: a@b\n",
        );
        assert!(
            e.contains("receivers[0].email_configs[0]") && e.contains("smarthost"),
            "{e}"
        );
        assert!(e.starts_with("alerts.yaml:6:"), "{e}");
    }

    #[test]
    fn webhook_flag_config_and_rules_only_file() {
        let url = parse_http_url("http://127.0.0.1:9/hook").unwrap();
        let c = NotifyConfig::webhook(url.clone());
        assert_eq!(c.receivers[0].webhook_configs[0].url, url);
        assert_eq!(
            c.route.group_by.as_deref().unwrap(),
            ["alertname", "cluster"]
        );
        // A file with only the engine's rules is a valid (empty) notification config.
        let c = NotifyConfig::from_yaml("rules: []\n", "a.yaml").unwrap();
        assert!(c.receivers[0].webhook_configs.is_empty());
        assert!(parse_http_url("not a url").is_err());
    }
}
