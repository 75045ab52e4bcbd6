//! What an evaluation needs of the rules, worked out when they are set: each rule's figure as
//! a slot (a column of [`super::table::FigureTable`]) among the figures some rule reads, and its
//! `scope.nodes` as one of the distinct patterns (matched once per node name, see
//! [`super::roster`]). 100 rules over 11 figures read each figure once per node, not 9 times.

use std::sync::Arc;

use regex::Regex;

use super::figures::{Figure, Subject};
use super::rules::Rule;

/// The engine's rules prepared for evaluation; rule indices are the engine's.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Distinct `scope.nodes` patterns.
    node_patterns: Vec<Regex>,
    /// Per rule: its `scope.nodes` as an index into `node_patterns`.
    node_pattern: Vec<Option<usize>>,
    /// Figures read per node, per disk entry (mount and disk figures), per interface.
    node_figures: Vec<Figure>,
    mount_figures: Vec<Figure>,
    interface_figures: Vec<Figure>,
    /// Per rule: its figure's position in its subject's table (0 for cluster and state rules).
    slot: Vec<usize>,
    /// Whether an enabled predict rule reads every mount, disk, interface row.
    predicted_rows: (bool, bool, bool),
}

fn position_or_push<T: PartialEq>(list: &mut Vec<T>, item: T) -> usize {
    list.iter().position(|x| *x == item).unwrap_or_else(|| {
        list.push(item);
        list.len() - 1
    })
}

impl Plan {
    /// The plan of `rules`, in their order.
    pub(super) fn new(rules: &[Arc<Rule>]) -> Self {
        let mut plan = Self::default();
        for rule in rules {
            let pattern = rule.nodes.as_ref().map(|re| {
                match plan
                    .node_patterns
                    .iter()
                    .position(|p| p.as_str() == re.as_str())
                {
                    Some(i) => i,
                    None => {
                        plan.node_patterns.push(re.clone());
                        plan.node_patterns.len() - 1
                    }
                }
            });
            plan.node_pattern.push(pattern);
            if rule.predict.is_some() && rule.spec.enabled {
                match rule.figure.subject() {
                    Subject::Mount => plan.predicted_rows.0 = true,
                    Subject::Disk => plan.predicted_rows.1 = true,
                    Subject::Interface => plan.predicted_rows.2 = true,
                    _ => {}
                }
            }
            let table = match rule.figure.subject() {
                Subject::Node => Some(&mut plan.node_figures),
                Subject::Mount | Subject::Disk => Some(&mut plan.mount_figures),
                Subject::Interface => Some(&mut plan.interface_figures),
                Subject::Cluster | Subject::NodeDown | Subject::AgentDown => None,
            };
            plan.slot
                .push(table.map_or(0, |t| position_or_push(t, rule.figure)));
        }
        plan
    }

    /// Where rule `rule`'s figure sits in its subject's table.
    pub(super) fn slot(&self, rule: usize) -> usize {
        self.slot[rule]
    }

    /// Rule `rule`'s node pattern, as an index for [`ScopeCache::matches`].
    pub(super) fn node_pattern(&self, rule: usize) -> Option<usize> {
        self.node_pattern[rule]
    }

    /// Words of pattern bits per node name.
    pub(super) fn pattern_words(&self) -> usize {
        self.node_patterns.len().div_ceil(64)
    }

    /// Sets bit `p` of `bits` (`pattern_words` long) for each pattern `p` that `name` matches.
    pub(super) fn match_patterns(&self, name: &str, bits: &mut [u64]) {
        bits.fill(0);
        for (p, re) in self.node_patterns.iter().enumerate() {
            if re.is_match(name) {
                bits[p / 64] |= 1 << (p % 64);
            }
        }
    }

    /// Whether a predict rule reads the series identity of every mount, disk and interface row
    /// (so the table works them out while it reads each node).
    pub(super) fn predicted_rows(&self) -> (bool, bool, bool) {
        self.predicted_rows
    }

    /// Columns of node, mount (and disk) and interface figures.
    pub(super) fn widths(&self) -> (usize, usize, usize) {
        (
            self.node_figures.len(),
            self.mount_figures.len(),
            self.interface_figures.len(),
        )
    }

    /// The node figures, in slot order.
    pub(super) fn node_figures(&self) -> &[Figure] {
        &self.node_figures
    }

    /// The mount and disk figures, in slot order.
    pub(super) fn mount_figures(&self) -> &[Figure] {
        &self.mount_figures
    }

    /// The interface figures, in slot order.
    pub(super) fn interface_figures(&self) -> &[Figure] {
        &self.interface_figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::rules::from_json;

    fn rule(json: &str) -> Arc<Rule> {
        Arc::new(Rule::compile(from_json(json.as_bytes()).unwrap()).unwrap())
    }

    #[test]
    fn rules_of_one_figure_share_a_slot_and_one_pattern_is_matched_once() {
        let rules = [
            rule(
                r#"{"name":"A","figure":"cpu.usage_percent","op":">","threshold":1,"scope":{"nodes":"w-.*"}}"#,
            ),
            rule(r#"{"name":"B","figure":"memory.usage_percent","op":">","threshold":1}"#),
            rule(
                r#"{"name":"C","figure":"cpu.usage_percent","op":"<","threshold":1,"scope":{"nodes":"w-.*"}}"#,
            ),
            rule(
                r#"{"name":"D","figure":"disk.io_util","op":">","threshold":1,"scope":{"nodes":"x"}}"#,
            ),
            rule(r#"{"name":"E","figure":"network.rx_rate","op":">","threshold":1}"#),
        ];
        let plan = Plan::new(&rules);
        assert_eq!(plan.slot(0), plan.slot(2));
        assert_ne!(plan.slot(0), plan.slot(1));
        assert_eq!(plan.node_pattern(0), plan.node_pattern(2));
        assert_eq!(plan.node_pattern(1), None);
        let (w, x) = (plan.node_pattern(0).unwrap(), plan.node_pattern(3).unwrap());
        assert_ne!(w, x);
        assert_eq!(plan.widths(), (2, 1, 1));
        assert_eq!(plan.pattern_words(), 1);
        let mut bits = [u64::MAX];
        plan.match_patterns("w-1", &mut bits);
        assert_eq!(bits[0], 1 << w);
        plan.match_patterns("x", &mut bits);
        assert_eq!(bits[0], 1 << x);
        plan.match_patterns("y", &mut bits);
        assert_eq!(bits[0], 0);
    }
}
