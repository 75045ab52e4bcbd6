//! Alert rules: [`RuleSpec`] as operators write it (API body, YAML file, stored JSON) and
//! [`Rule`], the same checked and compiled for the engine. Every check names the field it
//! refuses (`figure`, `for`, `scope.nodes`, `annotations.summary`, ...).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use atlhyper_model::{Labels, Severity};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::figures::{Figure, Subject};
use super::template::Template;
use atlhyper_model::parse_duration;

/// Labels every alert gets from the engine; a rule may not set them.
pub const RESERVED_LABELS: &[&str] = &[
    "alertname",
    "severity",
    "cluster",
    "node",
    "device",
    "mountpoint",
];
/// Most rules created through the API besides the built-in ones (changed or not; a POST or PUT
/// of one more is 409), and separately most rules of the alert configuration file. Every rule
/// is evaluated against every node every interval: the bound keeps an evaluation's cost bounded.
pub const MAX_RULES: usize = 1000;
/// Most labels, and most annotations, of one rule.
pub const MAX_RULE_LABELS: usize = 32;
/// Longest rule, label or annotation name, bytes.
pub const MAX_NAME: usize = 128;
/// Longest label value, bytes.
pub const MAX_LABEL_VALUE: usize = 1024;
/// Longest annotation, bytes.
pub const MAX_ANNOTATION: usize = 4096;
/// Longest scope pattern, bytes.
pub const MAX_PATTERN: usize = 1024;
/// Longest `for`, `keep_firing_for`, predict `within`.
const MAX_WAIT: Duration = Duration::from_secs(30 * 86_400);
/// Shortest and longest predict `lookback`.
const LOOKBACK_RANGE: (Duration, Duration) =
    (Duration::from_secs(300), Duration::from_secs(7 * 86_400));

/// A rule as written. Unknown fields are refused.
///
/// ```yaml
/// name: HighCpu
/// figure: cpu.usage_percent
/// op: ">"
/// threshold: 90
/// for: 10m
/// severity: warning
/// scope: { clusters: "prod-.*" }
/// annotations: { summary: "CPU {{value}}% on {{node}}" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique name, also the alerts' `alertname`: letters, digits and `_`, not starting with a
    /// digit, at most 128.
    #[serde(default)]
    pub name: String,
    /// Whether the engine evaluates it (default true).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// The figure compared (see [`Figure`]).
    pub figure: String,
    /// `>`, `>=`, `<`, `<=`, `==` or `!=`; needed except for state figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// The number compared against; needed except for state figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// How long the condition holds before the alert fires (default 0: at once).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// How long a firing alert keeps firing after the condition stopped (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<String>,
    /// `info`, `warning` (default) or `critical`.
    #[serde(default = "warning")]
    pub severity: Severity,
    /// Extra labels on every alert of the rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// Annotations, templates (see [`super::template`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Labels,
    /// Which clusters and nodes, by regular expression over the whole name.
    #[serde(default, skip_serializing_if = "ScopeSpec::is_everything")]
    pub scope: ScopeSpec,
    /// Compare the figure's value predicted `within` ahead instead of its value now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predict: Option<PredictSpec>,
}

fn enabled_by_default() -> bool {
    true
}

fn warning() -> Severity {
    Severity::Warning
}

/// Which clusters and nodes a rule looks at: regular expressions matched against the whole name
/// (`prod-.*`, `worker-[0-9]+`). Absent: all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<String>,
}

impl ScopeSpec {
    fn is_everything(&self) -> bool {
        self.clusters.is_none() && self.nodes.is_none()
    }
}

/// Linear prediction over the figure's recent history (see [`super::predict`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictSpec {
    /// How far back the regression looks (5m to 7d).
    pub lookback: String,
    /// How far ahead the value is predicted.
    pub within: String,
    /// Only series whose value now is above this (a disk at 5 % filling fast is not news).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_above: Option<f64>,
}

/// A rule refused: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// Dotted path of the field (`scope.nodes`, `annotations.summary`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl RuleError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for RuleError {}

/// How a figure is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Equal,
    NotEqual,
}

impl Comparator {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            ">" => Self::Greater,
            ">=" => Self::GreaterOrEqual,
            "<" => Self::Less,
            "<=" => Self::LessOrEqual,
            "==" => Self::Equal,
            "!=" => Self::NotEqual,
            _ => return None,
        })
    }

    /// Whether `value op threshold` holds.
    #[inline]
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Greater => value > threshold,
            Self::GreaterOrEqual => value >= threshold,
            Self::Less => value < threshold,
            Self::LessOrEqual => value <= threshold,
            Self::Equal => value == threshold,
            Self::NotEqual => value != threshold,
        }
    }
}

/// A predict rule's settings, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Predict {
    pub lookback: Duration,
    pub within: Duration,
    pub current_above: Option<f64>,
}

/// A rule checked and compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule as written (what the API shows and the store keeps).
    pub spec: RuleSpec,
    pub figure: Figure,
    /// Comparator and threshold; `None` for state figures (they hold or not).
    pub condition: Option<(Comparator, f64)>,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub clusters: Option<Regex>,
    pub nodes: Option<Regex>,
    pub predict: Option<Predict>,
    pub annotations: Vec<(String, Template)>,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn duration(field: &str, text: Option<&str>, max: Duration) -> Result<Duration, RuleError> {
    let Some(text) = text else {
        return Ok(Duration::ZERO);
    };
    let d = parse_duration(text).map_err(|e| RuleError::new(field, e.to_string()))?;
    if d > max {
        return Err(RuleError::new(
            field,
            format!("{text:?} is longer than {} days", max.as_secs() / 86_400),
        ));
    }
    Ok(d)
}

fn pattern(field: &str, text: Option<&str>) -> Result<Option<Regex>, RuleError> {
    let Some(text) = text else {
        return Ok(None);
    };
    if text.len() > MAX_PATTERN {
        return Err(RuleError::new(
            field,
            format!("longer than {MAX_PATTERN} bytes"),
        ));
    }
    regex::RegexBuilder::new(&format!("^(?:{text})$"))
        .size_limit(1 << 20)
        .build()
        .map(Some)
        .map_err(|e| RuleError::new(field, format!("bad pattern {text:?}: {e}")))
}

impl Rule {
    /// Checks and compiles a rule.
    pub fn compile(spec: RuleSpec) -> Result<Self, RuleError> {
        if spec.name.len() > MAX_NAME || !valid_name(&spec.name) {
            return Err(RuleError::new(
                "name",
                format!(
                    "{:?} must be 1 to {MAX_NAME} letters, digits or '_', not starting with a digit",
                    spec.name
                ),
            ));
        }
        let figure: Figure = spec
            .figure
            .parse()
            .map_err(|e: String| RuleError::new("figure", e))?;
        let condition = match (spec.op.as_deref(), spec.threshold) {
            (None, None) if figure.is_state() => None,
            (Some(op), Some(threshold)) => {
                let op = Comparator::parse(op).ok_or_else(|| {
                    RuleError::new(
                        "op",
                        format!("unknown comparator {op:?} (use >, >=, <, <=, == or !=)"),
                    )
                })?;
                if figure.is_state() {
                    return Err(RuleError::new(
                        "op",
                        format!("{figure} is a state: it holds or not, without op and threshold"),
                    ));
                }
                if !threshold.is_finite() {
                    return Err(RuleError::new("threshold", "must be a finite number"));
                }
                Some((op, threshold))
            }
            (None, _) => return Err(RuleError::new("op", format!("required for {figure}"))),
            (Some(_), None) => {
                return Err(RuleError::new(
                    "threshold",
                    format!("required for {figure}"),
                ));
            }
        };
        let for_ = duration("for", spec.for_.as_deref(), MAX_WAIT)?;
        let keep_firing_for =
            duration("keep_firing_for", spec.keep_firing_for.as_deref(), MAX_WAIT)?;
        if spec.labels.len() > MAX_RULE_LABELS {
            return Err(RuleError::new(
                "labels",
                format!("{} labels, at most {MAX_RULE_LABELS}", spec.labels.len()),
            ));
        }
        for (name, value) in &spec.labels {
            let field = format!("labels.{name}");
            if !valid_name(name) || name.len() > MAX_NAME {
                return Err(RuleError::new(
                    field,
                    format!("label names are 1 to {MAX_NAME} letters, digits and '_'"),
                ));
            }
            if RESERVED_LABELS.contains(&name.as_str()) {
                return Err(RuleError::new(field, "set by the engine, not by a rule"));
            }
            if value.len() > MAX_LABEL_VALUE {
                return Err(RuleError::new(
                    field,
                    format!("longer than {MAX_LABEL_VALUE} bytes"),
                ));
            }
        }
        if spec.annotations.len() > MAX_RULE_LABELS {
            return Err(RuleError::new(
                "annotations",
                format!(
                    "{} annotations, at most {MAX_RULE_LABELS}",
                    spec.annotations.len()
                ),
            ));
        }
        let own: Vec<&str> = spec.labels.keys().map(String::as_str).collect();
        let mut annotations = Vec::with_capacity(spec.annotations.len());
        for (name, text) in &spec.annotations {
            let field = format!("annotations.{name}");
            if !valid_name(name) || name.len() > MAX_NAME {
                return Err(RuleError::new(
                    field,
                    format!("annotation names are 1 to {MAX_NAME} letters, digits and '_'"),
                ));
            }
            if text.len() > MAX_ANNOTATION {
                return Err(RuleError::new(
                    field,
                    format!("longer than {MAX_ANNOTATION} bytes"),
                ));
            }
            let template = Template::parse(text, &own).map_err(|e| RuleError::new(field, e))?;
            annotations.push((name.clone(), template));
        }
        let clusters = pattern("scope.clusters", spec.scope.clusters.as_deref())?;
        let nodes = pattern("scope.nodes", spec.scope.nodes.as_deref())?;
        if nodes.is_some() && matches!(figure.subject(), Subject::Cluster | Subject::AgentDown) {
            return Err(RuleError::new(
                "scope.nodes",
                format!("{figure} is about a whole cluster, not nodes"),
            ));
        }
        let predict = match &spec.predict {
            None => None,
            Some(p) => {
                if figure.is_state() || figure.subject() == Subject::Cluster {
                    return Err(RuleError::new(
                        "predict",
                        format!(
                            "{figure} cannot be predicted (node, mount, disk and interface figures can)"
                        ),
                    ));
                }
                if condition.is_none() {
                    return Err(RuleError::new("predict", "needs op and threshold"));
                }
                let lookback = duration("predict.lookback", Some(&p.lookback), LOOKBACK_RANGE.1)?;
                if lookback < LOOKBACK_RANGE.0 {
                    return Err(RuleError::new("predict.lookback", "at least 5m"));
                }
                let within = duration("predict.within", Some(&p.within), MAX_WAIT)?;
                if within.is_zero() {
                    return Err(RuleError::new("predict.within", "must be above zero"));
                }
                if p.current_above.is_some_and(|v| !v.is_finite()) {
                    return Err(RuleError::new(
                        "predict.current_above",
                        "must be a finite number",
                    ));
                }
                Some(Predict {
                    lookback,
                    within,
                    current_above: p.current_above,
                })
            }
        };
        Ok(Self {
            figure,
            condition,
            for_,
            keep_firing_for,
            clusters,
            nodes,
            predict,
            annotations,
            spec,
        })
    }

    /// The rule's name (its alerts' `alertname`).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether the rule looks at this cluster.
    pub fn covers_cluster(&self, cluster: &str) -> bool {
        self.clusters.as_ref().is_none_or(|r| r.is_match(cluster))
    }

    /// Whether the rule looks at this node.
    pub fn covers_node(&self, node: &str) -> bool {
        self.nodes.as_ref().is_none_or(|r| r.is_match(node))
    }
}

/// Parses a rule from a JSON body, naming the field of a type or unknown-field error.
pub fn from_json(body: &[u8]) -> Result<RuleSpec, RuleError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        RuleError::new(field, e.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<Rule, RuleError> {
        Rule::compile(from_json(json.as_bytes())?)
    }

    #[test]
    fn a_full_rule_compiles() {
        let r = spec(
            r#"{"name":"HighCpu","figure":"cpu.usage_percent","op":">","threshold":90,
                "for":"10m","keep_firing_for":"2m","severity":"critical","labels":{"team":"infra"},
                "annotations":{"summary":"{{node}} at {{value}}% ({{team}})"},
                "scope":{"clusters":"prod-.*","nodes":"worker-[0-9]+"}}"#,
        )
        .unwrap();
        assert_eq!(r.figure, Figure::CpuUsage);
        assert_eq!(r.condition, Some((Comparator::Greater, 90.0)));
        assert_eq!(r.for_, Duration::from_secs(600));
        assert_eq!(r.keep_firing_for, Duration::from_secs(120));
        assert!(r.covers_cluster("prod-eu") && !r.covers_cluster("dev-prod-eu"));
        assert!(r.covers_node("worker-12") && !r.covers_node("worker-12x"));
        assert!(r.spec.enabled);
    }

    #[test]
    fn state_rules_need_no_condition_and_refuse_one() {
        let r = spec(r#"{"name":"NodeDown","figure":"node.down","for":"1m"}"#).unwrap();
        assert_eq!(r.condition, None);
        let e = spec(r#"{"name":"X","figure":"node.down","op":">","threshold":1}"#).unwrap_err();
        assert_eq!(e.field, "op");
    }

    #[test]
    fn every_refusal_names_its_field() {
        let cases = [
            (
                r#"{"name":"X","figure":"cpu.bogus","op":">","threshold":1}"#,
                "figure",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","op":">","threshold":1,"for":"5 minutes"}"#,
                "for",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","op":">","threshold":1,"keep_firing_for":"-1s"}"#,
                "keep_firing_for",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","op":">","threshold":1,"scope":{"nodes":"worker-("}}"#,
                "scope.nodes",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","op":">","threshold":1,"scope":{"clusters":"[z-a]"}}"#,
                "scope.clusters",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","op":"=>","threshold":1}"#,
                "op",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","op":">"}"#,
                "threshold",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","threshold":1}"#,
                "op",
            ),
            (
                r#"{"name":"1X","figure":"cpu.usage_percent","op":">","threshold":1}"#,
                "name",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","op":">","threshold":1,"labels":{"node":"a"}}"#,
                "labels.node",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","op":">","threshold":1,"annotations":{"summary":"{{nod}}"}}"#,
                "annotations.summary",
            ),
            (
                r#"{"name":"X","figure":"cluster.avg_cpu_usage","op":">","threshold":1,"scope":{"nodes":"a"}}"#,
                "scope.nodes",
            ),
            (
                r#"{"name":"X","figure":"agent.down","predict":{"lookback":"1h","within":"1h"}}"#,
                "predict",
            ),
            (
                r#"{"name":"X","figure":"disk.usage_percent","op":">","threshold":1,"predict":{"lookback":"1m","within":"1h"}}"#,
                "predict.lookback",
            ),
            (
                r#"{"name":"X","figure":"disk.usage_percent","op":">","threshold":1,"predict":{"lookback":"1h","within":"soon"}}"#,
                "predict.within",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","op":">","threshold":1,"severity":"fatal"}"#,
                "severity",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","op":">","threshold":"high"}"#,
                "threshold",
            ),
            (
                r#"{"name":"X","figure":"cpu.usage_percent","op":">","threshold":1,"scope":{"node":"a"}}"#,
                "scope.node",
            ),
        ];
        for (json, field) in cases {
            let e = spec(json).unwrap_err();
            assert_eq!(e.field, field, "{json}: {e}");
            assert!(!e.message.is_empty());
        }
        let e = spec(r#"{"name":"X","figure":"cpu.usage_percent","treshold":1}"#).unwrap_err();
        assert!(e.message.contains("treshold"), "{e}");
    }
}
