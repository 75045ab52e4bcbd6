//! The alerting families of `/metrics`: `atlhyper_alerts{alertname,severity,state}` (running
//! alerts; every enabled rule shows up with 0 when it has none, so `absent()` is not needed),
//! and the engine's own counters.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use atlhyper_model::{AlertState, Exposition, MetricKind};

use super::Alerting;

/// Appends the alerting families to an exposition.
pub(crate) fn write_alert_metrics(out: &mut Exposition, alerting: &Alerting) {
    // (alertname, severity) -> [pending, firing]
    let mut counts: BTreeMap<(String, String), [u64; 2]> = BTreeMap::new();
    for rule in alerting.rules().iter().filter(|r| r.rule.spec.enabled) {
        let key = (
            rule.rule.name().to_owned(),
            rule.rule.spec.severity.as_str().to_owned(),
        );
        counts.entry(key).or_default();
    }
    for alert in alerting.running().iter() {
        let key = (
            alert.name().to_owned(),
            alert.labels.get("severity").cloned().unwrap_or_default(),
        );
        let slot = match alert.state {
            AlertState::Pending => 0,
            AlertState::Firing => 1,
            _ => continue,
        };
        counts.entry(key).or_default()[slot] += 1;
    }
    let mut family = out.family(
        "atlhyper_alerts",
        MetricKind::Gauge,
        "Alerts pending or firing, by rule, severity and state.",
    );
    for ((alertname, severity), [pending, firing]) in &counts {
        for (state, n) in [("pending", pending), ("firing", firing)] {
            family.sample(
                &[
                    ("alertname", alertname),
                    ("severity", severity),
                    ("state", state),
                ],
                *n as f64,
            );
        }
    }
    let stats = &alerting.stats;
    for (name, help, value) in [
        (
            "atlhyper_alert_evaluations_total",
            "Rule evaluations run.",
            &stats.evaluations,
        ),
        (
            "atlhyper_alert_store_errors_total",
            "Alert state writes or history reads that failed.",
            &stats.store_errors,
        ),
    ] {
        out.family(name, MetricKind::Counter, help)
            .sample(&[], value.load(Ordering::Relaxed) as f64);
    }
    out.family(
        "atlhyper_alert_evaluation_seconds",
        MetricKind::Gauge,
        "Duration of the last evaluation (all rules over all clusters).",
    )
    .sample(
        &[],
        stats.last_duration_us.load(Ordering::Relaxed) as f64 / 1e6,
    );
}
