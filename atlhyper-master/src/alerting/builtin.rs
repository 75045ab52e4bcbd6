//! The rules every master starts with, on by default; an operator may change or disable them
//! (a stored rule of the same name replaces the built-in one; deleting it brings the default
//! back). Thresholds are the ones in the README's alerting table.

use atlhyper_model::{Labels, Severity};

use super::rules::{PredictSpec, RuleSpec, ScopeSpec};

fn annotations(summary: &str, description: &str) -> Labels {
    [("summary", summary), ("description", description)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn rule(
    name: &str,
    figure: &str,
    condition: Option<(&str, f64)>,
    for_: &str,
    severity: Severity,
    summary: &str,
    description: &str,
) -> RuleSpec {
    RuleSpec {
        name: name.to_owned(),
        enabled: true,
        figure: figure.to_owned(),
        op: condition.map(|c| c.0.to_owned()),
        threshold: condition.map(|c| c.1),
        for_: Some(for_.to_owned()),
        keep_firing_for: None,
        severity,
        labels: Labels::new(),
        annotations: annotations(summary, description),
        scope: ScopeSpec::default(),
        predict: None,
    }
}

/// The built-in rules, in the README's order.
pub fn builtin_rules() -> Vec<RuleSpec> {
    use Severity::{Critical, Warning};
    vec![
        rule(
            "NodeDown",
            "node.down",
            None,
            "1m",
            Critical,
            "Node {{node}} of {{cluster}} is down",
            "The agent of {{cluster}} has had no report from {{node}} for over a minute.",
        ),
        rule(
            "AgentDown",
            "agent.down",
            None,
            "1m",
            Critical,
            "Agent of cluster {{cluster}} is silent",
            "No snapshot or heartbeat from the agent of {{cluster}}: every node of it is unknown.",
        ),
        rule(
            "HighCpu",
            "cpu.usage_percent",
            Some((">", 90.0)),
            "10m",
            Warning,
            "CPU of {{node}} at {{value}}%",
            "CPU busy above {{threshold}}% for 10 minutes on {{node}} ({{cluster}}).",
        ),
        rule(
            "MemoryPressure",
            "memory.available_percent",
            Some(("<", 10.0)),
            "5m",
            Warning,
            "{{node}} has {{value}}% memory available",
            "MemAvailable under {{threshold}}% of memory for 5 minutes on {{node}} ({{cluster}}).",
        ),
        rule(
            "MemoryPressurePsi",
            "psi.memory_full",
            Some((">", 10.0)),
            "5m",
            Warning,
            "{{node}} stalls on memory {{value}}% of the time",
            "All tasks waited for memory over {{threshold}}% of the time (PSI full avg10) for 5 minutes on {{node}} ({{cluster}}).",
        ),
        rule(
            "DiskAlmostFull",
            "disk.usage_percent",
            Some((">", 90.0)),
            "5m",
            Warning,
            "{{mountpoint}} on {{node}} is {{value}}% full",
            "Filesystem {{mountpoint}} ({{device}}) of {{node}} ({{cluster}}) above {{threshold}}% used.",
        ),
        rule(
            "InodesAlmostFull",
            "disk.inodes_usage_percent",
            Some((">", 90.0)),
            "5m",
            Warning,
            "{{mountpoint}} on {{node}} has {{value}}% inodes used",
            "Filesystem {{mountpoint}} ({{device}}) of {{node}} ({{cluster}}) above {{threshold}}% of its inodes.",
        ),
        RuleSpec {
            predict: Some(PredictSpec {
                lookback: "6h".to_owned(),
                within: "24h".to_owned(),
                current_above: Some(60.0),
            }),
            ..rule(
                "DiskWillFillIn24h",
                "disk.usage_percent",
                Some((">=", 100.0)),
                "1h",
                Warning,
                "{{mountpoint}} on {{node}} will be full within 24 hours",
                "At the rate of the last 6 hours {{mountpoint}} ({{device}}) of {{node}} ({{cluster}}) reaches {{value}}% in 24 hours.",
            )
        },
        rule(
            "HighTemperature",
            "temperature.cpu_celsius",
            Some((">", 85.0)),
            "5m",
            Warning,
            "CPU of {{node}} at {{value}} °C",
            "CPU temperature above {{threshold}} °C for 5 minutes on {{node}} ({{cluster}}).",
        ),
        rule(
            "NetworkErrors",
            "network.error_ratio_percent",
            Some((">", 1.0)),
            "15m",
            Warning,
            "{{device}} on {{node}}: {{value}}% of packets in error",
            "Over {{threshold}}% of packets on {{device}} of {{node}} ({{cluster}}) had errors for 15 minutes.",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::rules::Rule;

    #[test]
    fn every_builtin_compiles_and_names_are_unique() {
        let rules = builtin_rules();
        let mut names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rules.len());
        for spec in rules {
            let name = spec.name.clone();
            Rule::compile(spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
