//! The alert configuration file (`--alert-config`, `MASTER_ALERT_CONFIG`), YAML read with
//! serde_yaml_ng so every error names the file, the line and the field:
//!
//! ```yaml
//! rules:
//!   - name: RootFilling
//!     figure: disk.usage_percent
//!     op: ">"
//!     threshold: 80
//!     for: 15m
//!     scope: { nodes: "db-.*" }
//! # route:, receivers:, inhibit_rules: belong to notification and are read there.
//! ```
//!
//! Unknown keys inside a rule, and unknown top-level keys, are refused.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::rules::{Rule, RuleSpec};

/// The file refused: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AlertConfigError {
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted path of the field (`rules[2].scope.nodes`).
    pub field: String,
    pub message: String,
}

impl fmt::Display for AlertConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}: {}", self.field, self.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    rules: Vec<CheckedRule>,
    // Notification's keys: read by the notification side from the same file.
    #[serde(default, rename = "route")]
    _route: Option<serde_yaml_ng::Value>,
    #[serde(default, rename = "receivers")]
    _receivers: Option<serde_yaml_ng::Value>,
    #[serde(default, rename = "inhibit_rules")]
    _inhibit_rules: Option<serde_yaml_ng::Value>,
}

/// A rule that compiled; the compile error surfaces as a deserialization error, so the YAML
/// reader attaches its location.
struct CheckedRule(RuleSpec);

impl<'de> Deserialize<'de> for CheckedRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = RuleSpec::deserialize(d)?;
        Rule::compile(spec.clone()).map_err(serde::de::Error::custom)?;
        Ok(Self(spec))
    }
}

/// Reads and checks the file.
pub fn load_alert_config(path: &Path) -> Result<Vec<RuleSpec>, AlertConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| AlertConfigError {
        file: path.to_owned(),
        line: None,
        field: "file".to_owned(),
        message: e.to_string(),
    })?;
    parse_alert_config(path, &text)
}

/// Checks the text of a file named `path`.
pub fn parse_alert_config(path: &Path, text: &str) -> Result<Vec<RuleSpec>, AlertConfigError> {
    let fail = |line, field: String, message: String| AlertConfigError {
        file: path.to_owned(),
        line,
        field,
        message,
    };
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let doc: Document = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.location().map(|l| l.line());
        // The message without serde_yaml_ng's own " at line N column M" (the line is ours).
        let mut message = inner.to_string();
        if let Some(cut) = message.find(" at line ") {
            message.truncate(cut);
        }
        fail(line, field, message)
    })?;
    let mut names = BTreeSet::new();
    let mut rules = Vec::with_capacity(doc.rules.len());
    for (i, CheckedRule(spec)) in doc.rules.into_iter().enumerate() {
        if !names.insert(spec.name.clone()) {
            return Err(fail(
                line_of_rule(text, &spec.name),
                format!("rules[{i}].name"),
                format!("{:?} appears twice", spec.name),
            ));
        }
        rules.push(spec);
    }
    Ok(rules)
}

/// The line of the second `name: <name>` in the text (a duplicate's), best effort.
fn line_of_rule(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start().trim_start_matches("- ").trim();
            l.strip_prefix("name:")
                .is_some_and(|v| v.trim().trim_matches(['"', '\'']) == name)
        })
        .nth(1)
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<RuleSpec>, AlertConfigError> {
        parse_alert_config(Path::new("alerts.yaml"), text)
    }

    #[test]
    fn rules_and_notification_keys_are_read() {
        let rules = parse(
            "rules:\n  - name: RootFilling\n    figure: disk.usage_percent\n    op: \">\"\n    threshold: 80\n    for: 15m\nroute:\n  receiver: ops\nreceivers:\n  - name: ops\ninhibit_rules: []\n",
        )
        .unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].name, "RootFilling");
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = parse(
            "rules:\n  - name: A\n    figure: cpu.usage_percent\n    op: \">\"\n    treshold: 1\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("treshold"), "{e}");
        assert!(e.to_string().starts_with("alerts.yaml:5: rules[0]"), "{e}");

        let e = parse("rules:\n  - name: A\n    figure: cpu.usage_percent\n    op: \">\"\n    threshold: 1\n  - name: B\n    figure: cpu.bogus\n    op: \">\"\n    threshold: 1\n").unwrap_err();
        assert_eq!(e.field, "rules[1]", "{e}");
        assert!(e.message.contains("figure: unknown figure"), "{e}");
        assert!(e.line.is_some_and(|l| l >= 6), "{e}");

        let e = parse("rules:\n  - name: A\n    figure: cpu.usage_percent\n    op: \">\"\n    threshold: 1\n    for: soon\n").unwrap_err();
        assert!(e.message.contains("for:"), "{e}");

        let e = parse("rule:\n  - name: A\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.message.contains("rule"), "{e}");

        let e = parse(
            "rules:\n  - name: A\n    figure: node.down\n  - name: A\n    figure: agent.down\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.line),
            ("rules[1].name", Some(4)),
            "{e}"
        );
    }
}
