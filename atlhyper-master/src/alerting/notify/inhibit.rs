//! Inhibition: while a source alert fires, target alerts with the same values of the `equal`
//! labels are not notified. Two rules are built in: AgentDown mutes NodeDown of its cluster (the
//! agent being gone says it all), and NodeDown mutes the node's other alerts.

use std::collections::{HashMap, HashSet};

use atlhyper_model::{Alert, Labels};

use super::config::InhibitRuleConfig;
use super::matcher::{Matcher, all_match};

/// One rule.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
}

impl InhibitRule {
    /// A rule from the configuration.
    pub fn from_config(c: &InhibitRuleConfig) -> Self {
        Self {
            source: c.source_matchers.clone(),
            target: c.target_matchers.clone(),
            equal: c.equal.clone(),
        }
    }

    fn parse(source: &str, target: &str, equal: &[&str]) -> Self {
        // Literal matchers of the two built-in rules: they parse.
        let m = |s: &str| s.parse::<Matcher>().into_iter().collect::<Vec<_>>();
        Self {
            source: m(source),
            target: m(target),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// AgentDown mutes NodeDown of its cluster; NodeDown mutes the same node's other alerts.
    pub fn builtin() -> Vec<Self> {
        vec![
            Self::parse(
                r#"alertname="AgentDown""#,
                r#"alertname="NodeDown""#,
                &["cluster"],
            ),
            Self::parse(
                r#"alertname="NodeDown""#,
                r#"alertname!="NodeDown""#,
                &["cluster", "node"],
            ),
        ]
    }

    /// The values of the `equal` labels (a missing label is the empty string, as Alertmanager).
    fn key(&self, labels: &Labels) -> Vec<String> {
        self.equal
            .iter()
            .map(|l| labels.get(l).cloned().unwrap_or_default())
            .collect()
    }
}

/// The rules applied to one set of firing alerts: per rule, the `equal` values of its firing
/// sources, so checking a target costs a hash lookup per rule whatever the number of sources.
#[derive(Debug)]
pub struct Inhibitions<'a> {
    rules: &'a [InhibitRule],
    /// Per rule: equal-values to the fingerprints of the sources having them.
    sources: Vec<HashMap<Vec<String>, HashSet<&'a str>>>,
}

impl<'a> Inhibitions<'a> {
    /// Indexes the firing alerts that are sources of `rules`.
    pub fn new(rules: &'a [InhibitRule], firing: impl Iterator<Item = &'a Alert> + Clone) -> Self {
        let sources = rules
            .iter()
            .map(|rule| {
                let mut by_key: HashMap<Vec<String>, HashSet<&'a str>> = HashMap::new();
                for alert in firing
                    .clone()
                    .filter(|a| all_match(&rule.source, &a.labels))
                {
                    by_key
                        .entry(rule.key(&alert.labels))
                        .or_default()
                        .insert(alert.fingerprint.as_str());
                }
                by_key
            })
            .collect();
        Self { rules, sources }
    }

    /// Whether some firing source inhibits `alert` (never itself).
    pub fn inhibits(&self, alert: &Alert) -> bool {
        self.rules.iter().zip(&self.sources).any(|(rule, sources)| {
            all_match(&rule.target, &alert.labels)
                && sources
                    .get(&rule.key(&alert.labels))
                    .is_some_and(|fps| fps.iter().any(|fp| *fp != alert.fingerprint))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlhyper_model::AlertState;
    use chrono::Utc;

    pub(crate) fn alert(pairs: &[(&str, &str)]) -> Alert {
        let labels: Labels = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let now = Utc::now();
        Alert {
            fingerprint: atlhyper_model::fingerprint(&labels),
            rule: labels.get("alertname").cloned().unwrap_or_default(),
            labels: labels.into(),
            annotations: Default::default(),
            state: AlertState::Firing,
            value: 1.0,
            active_at: now,
            fired_at: Some(now),
            resolved_at: None,
            evaluated_at: now,
        }
    }

    #[test]
    fn agent_down_mutes_node_down_of_its_cluster_only() {
        let rules = InhibitRule::builtin();
        let agent = alert(&[("alertname", "AgentDown"), ("cluster", "c1")]);
        let node_c1 = alert(&[("alertname", "NodeDown"), ("cluster", "c1"), ("node", "n1")]);
        let node_c2 = alert(&[("alertname", "NodeDown"), ("cluster", "c2"), ("node", "n1")]);
        let firing = [agent.clone(), node_c1.clone(), node_c2.clone()];
        let inh = Inhibitions::new(&rules, firing.iter());
        assert!(inh.inhibits(&node_c1));
        assert!(!inh.inhibits(&node_c2));
        assert!(!inh.inhibits(&agent));
    }

    #[test]
    fn node_down_mutes_that_nodes_other_alerts() {
        let rules = InhibitRule::builtin();
        let down = alert(&[("alertname", "NodeDown"), ("cluster", "c1"), ("node", "n1")]);
        let cpu_n1 = alert(&[("alertname", "HighCpu"), ("cluster", "c1"), ("node", "n1")]);
        let cpu_n2 = alert(&[("alertname", "HighCpu"), ("cluster", "c1"), ("node", "n2")]);
        let cpu_other_cluster =
            alert(&[("alertname", "HighCpu"), ("cluster", "c2"), ("node", "n1")]);
        let firing = [down.clone(), cpu_n1.clone(), cpu_n2.clone()];
        let inh = Inhibitions::new(&rules, firing.iter());
        assert!(inh.inhibits(&cpu_n1));
        assert!(!inh.inhibits(&cpu_n2));
        assert!(!inh.inhibits(&cpu_other_cluster));
        // NodeDown itself is not a target of its own rule.
        assert!(!inh.inhibits(&down));
        // Without the source firing, nothing is muted.
        let only_cpu = [cpu_n1.clone()];
        let inh = Inhibitions::new(&rules, only_cpu.iter());
        assert!(!inh.inhibits(&cpu_n1));
    }

    #[test]
    fn an_alert_does_not_inhibit_itself() {
        let config = InhibitRuleConfig {
            source_matchers: vec!["severity=\"critical\"".parse().unwrap()],
            target_matchers: vec!["severity=~\"critical|warning\"".parse().unwrap()],
            equal: vec!["cluster".into()],
        };
        let rules = [InhibitRule::from_config(&config)];
        let crit = alert(&[
            ("alertname", "A"),
            ("cluster", "c1"),
            ("severity", "critical"),
        ]);
        let warn = alert(&[
            ("alertname", "B"),
            ("cluster", "c1"),
            ("severity", "warning"),
        ]);
        let binding = [crit.clone()];
        let inh = Inhibitions::new(&rules, binding.iter());
        assert!(!inh.inhibits(&crit));
        assert!(inh.inhibits(&warn));
    }
}
