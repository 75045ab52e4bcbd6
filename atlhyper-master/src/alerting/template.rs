//! Annotation templates: text with `{{name}}` placeholders, checked when the rule is written and
//! rendered for each alert. A placeholder is a label (`cluster`, `node`, `device`, `mountpoint`,
//! `alertname`, `severity`, or one of the rule's own labels), `value` (the figure, at most two
//! decimals) or `threshold`. A label the alert does not have renders empty.

use atlhyper_model::Labels;

/// Placeholders every rule may use besides its own labels.
pub const KNOWN_PLACEHOLDERS: &[&str] = &[
    "alertname",
    "severity",
    "cluster",
    "node",
    "device",
    "mountpoint",
    "value",
    "threshold",
];

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Placeholder(String),
}

impl Template {
    /// Parses `text`; `extra` are the rule's own label names. The error says what is wrong.
    pub fn parse(text: &str, extra: &[&str]) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!("unclosed {{{{ at byte {}", text.len() - rest.len() + open)
            })?;
            let name = after[..close].trim();
            if !KNOWN_PLACEHOLDERS.contains(&name) && !extra.contains(&name) {
                return Err(format!(
                    "unknown placeholder {{{{{name}}}}}; known: {}, and the rule's labels",
                    KNOWN_PLACEHOLDERS.join(", ")
                ));
            }
            parts.push(Part::Placeholder(name.to_owned()));
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            return Err("}} without {{".to_owned());
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The text with every placeholder filled.
    pub fn render(&self, labels: &Labels, value: f64, threshold: Option<f64>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Placeholder(name) => match name.as_str() {
                    "value" => out.push_str(&format_value(value)),
                    "threshold" => {
                        if let Some(t) = threshold {
                            out.push_str(&format_value(t));
                        }
                    }
                    label => {
                        if let Some(v) = labels.get(label) {
                            out.push_str(v);
                        }
                    }
                },
            }
        }
        out
    }
}

/// A number with at most two decimals and no trailing zeros (`97.5`, `3`, `0.01`).
pub fn format_value(v: f64) -> String {
    let text = format!("{v:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        [("cluster", "prod"), ("node", "n1"), ("team", "infra")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn renders_labels_value_and_threshold() {
        let t = Template::parse(
            "{{ node }} of {{cluster}} at {{value}}% (over {{threshold}}%), {{team}}{{device}}",
            &["team"],
        )
        .unwrap();
        assert_eq!(
            t.render(&labels(), 97.456, Some(90.0)),
            "n1 of prod at 97.46% (over 90%), infra"
        );
        assert_eq!(
            Template::parse("plain", &[])
                .unwrap()
                .render(&labels(), 1.0, None),
            "plain"
        );
    }

    #[test]
    fn rejects_unknown_and_unclosed_placeholders() {
        let err = Template::parse("{{nodename}}", &[]).unwrap_err();
        assert!(err.contains("nodename"), "{err}");
        assert!(
            Template::parse("a {{node", &[])
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(Template::parse("a }} b", &[]).is_err());
        assert!(
            Template::parse("{{team}}", &[]).is_err(),
            "not a label of this rule"
        );
    }

    #[test]
    fn values_are_short() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.005), "0.01");
        assert_eq!(format_value(-0.001), "0");
        assert_eq!(format_value(1234.5), "1234.5");
    }
}
