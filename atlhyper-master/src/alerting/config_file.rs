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

use super::rules::{MAX_RULES, Rule, RuleSpec};

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
    rules: Vec<RuleSpec>,
    // Notification's keys: read by the notification side from the same file.
    #[serde(default, rename = "route")]
    _route: Option<serde_yaml_ng::Value>,
    #[serde(default, rename = "receivers")]
    _receivers: Option<serde_yaml_ng::Value>,
    #[serde(default, rename = "inhibit_rules")]
    _inhibit_rules: Option<serde_yaml_ng::Value>,
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
        // The message without serde_yaml_ng's own path and position (ours are in front).
        let mut message = inner.to_string();
        if let Some(cut) = message.find(" at line ") {
            message.truncate(cut);
        }
        if let Some(rest) = message.strip_prefix(&format!("{field}: ")) {
            message = rest.to_owned();
        }
        fail(line, field, message)
    })?;
    if doc.rules.len() > MAX_RULES {
        return Err(fail(
            line_in_rule(text, MAX_RULES, "name"),
            "rules".to_owned(),
            format!(
                "{} rules, more than the limit of {MAX_RULES}",
                doc.rules.len()
            ),
        ));
    }
    let mut names = BTreeSet::new();
    for (i, spec) in doc.rules.iter().enumerate() {
        if let Err(e) = Rule::compile(spec.clone()) {
            return Err(fail(
                line_in_rule(text, i, &e.field),
                format!("rules[{i}].{}", e.field),
                e.message,
            ));
        }
        if !names.insert(spec.name.clone()) {
            return Err(fail(
                line_in_rule(text, i, "name"),
                format!("rules[{i}].name"),
                format!("{:?} appears twice", spec.name),
            ));
        }
    }
    Ok(doc.rules)
}

/// The 1-based line of `field` (its last dotted part) inside the `index`-th item of the
/// top-level `rules:` list, or of the item itself when the field is not written there (a
/// missing one). Block-style YAML, as rule files are written; `None` for other layouts.
fn line_in_rule(text: &str, index: usize, field: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == "rules:")?;
    let indent = |l: &str| l.len() - l.trim_start().len();
    // Items of the list: lines starting with "- " at the list's indentation.
    let mut items = Vec::new();
    let mut item_indent = None;
    for (n, l) in lines.iter().enumerate().skip(start + 1) {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        if indent(l) == 0 && !l.starts_with('-') {
            break;
        }
        if l.trim_start().starts_with("- ") || l.trim() == "-" {
            let i = indent(l);
            if *item_indent.get_or_insert(i) == i {
                items.push(n);
            }
        }
    }
    let first = *items.get(index)?;
    let end = items.get(index + 1).copied().unwrap_or_else(|| {
        lines
            .iter()
            .enumerate()
            .skip(first + 1)
            .find(|(_, l)| indent(l) == 0 && !l.trim().is_empty() && !l.starts_with('-'))
            .map_or(lines.len(), |(n, _)| n)
    });
    let key = field.rsplit('.').next().unwrap_or(field);
    let found = (first..end).find(|&n| {
        let l = lines[n].trim_start().trim_start_matches("- ").trim_start();
        l.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    });
    Some(found.unwrap_or(first) + 1)
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
    fn more_rules_than_the_limit_are_refused_at_the_first_one_too_many() {
        let rule = |i: usize| format!("  - name: R{i}\n    figure: node.down\n");
        let text: String = std::iter::once("rules:\n".to_owned())
            .chain((0..=MAX_RULES).map(rule))
            .collect();
        let e = parse(&text).unwrap_err();
        assert_eq!(e.field, "rules", "{e}");
        assert_eq!(e.line, Some(2 + 2 * MAX_RULES), "{e}");
        assert!(e.message.contains("limit of 1000"), "{e}");
        // At the limit: accepted.
        let text: String = std::iter::once("rules:\n".to_owned())
            .chain((0..MAX_RULES).map(rule))
            .collect();
        assert_eq!(parse(&text).unwrap().len(), MAX_RULES);
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
        assert_eq!(
            (e.field.as_str(), e.line),
            ("rules[1].figure", Some(7)),
            "{e}"
        );
        assert!(e.message.contains("unknown figure"), "{e}");

        let e = parse("rules:\n  - name: A\n    figure: cpu.usage_percent\n    op: \">\"\n    threshold: 1\n    scope:\n      clusters: prod\n      nodes: \"worker-(\"\n").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.line),
            ("rules[0].scope.nodes", Some(8)),
            "{e}"
        );

        let e = parse("rules:\n  - name: A\n    figure: cpu.usage_percent\n    op: \">\"\n    threshold: 1\n    for: soon\n").unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("rules[0].for", Some(6)), "{e}");
        assert_eq!(
            e.to_string(),
            format!("alerts.yaml:6: rules[0].for: {}", e.message)
        );

        let e = parse("rules:\n  - name: A\n    figure: cpu.usage_percent\n    op: \">\"\n    threshold: [1]\n").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.line),
            ("rules[0].threshold", Some(5)),
            "{e}"
        );

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
