//! What an evaluation needs of the rules, worked out when they are set, so the pass over every
//! node does as little per rule as it can:
//!
//! - [`Plan`]: each rule's figure as a slot in flat tables of the figures some rule reads, and
//!   its `scope.nodes` as one of the distinct patterns.
//! - [`NodeFigures`]: one node's figures read into those tables once per evaluation, then
//!   compared by every rule (100 rules over 11 figures read each figure once, not 9 times).
//! - [`ScopeCache`]: whether a node name matches each distinct pattern, worked out once per
//!   name while it keeps reporting, not once per rule and evaluation.

use std::sync::Arc;

use atlhyper_model::NodeMetricsSnapshot;
use regex::Regex;
use rustc_hash::FxHashMap;

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

    fn pattern_words(&self) -> usize {
        self.node_patterns.len().div_ceil(64)
    }
}

/// One node's figures for the plan's rules; the buffers are reused from node to node.
#[derive(Debug, Default)]
pub(super) struct NodeFigures {
    node: Vec<Option<f64>>,
    /// One row of the plan's mount figures per disk entry.
    mounts: Vec<Option<f64>>,
    mount_width: usize,
    /// One row of the plan's interface figures per interface.
    interfaces: Vec<Option<f64>>,
    interface_width: usize,
    /// Per disk entry: whether it is the first entry of its device (a device mounted twice is
    /// one device for disk figures).
    first_of_device: Vec<bool>,
    /// Per disk entry: whether it is mounted where the node's primary disk is (the mount whose
    /// history the store keeps).
    primary: Vec<bool>,
}

impl NodeFigures {
    /// Reads `n`'s figures that the plan's rules compare.
    pub(super) fn read(&mut self, plan: &Plan, n: &NodeMetricsSnapshot) {
        self.node.clear();
        self.node
            .extend(plan.node_figures.iter().map(|f| f.of_node(n)));
        self.mount_width = plan.mount_figures.len();
        self.mounts.clear();
        self.first_of_device.clear();
        self.primary.clear();
        if self.mount_width > 0 {
            let primary = n.primary_disk().map(|d| d.mount_point.as_str());
            for (i, d) in n.disks.iter().enumerate() {
                self.mounts
                    .extend(plan.mount_figures.iter().map(|f| f.of_mount(d)));
                self.first_of_device
                    .push(!n.disks[..i].iter().any(|e| e.device == d.device));
                self.primary.push(primary == Some(d.mount_point.as_str()));
            }
        }
        self.interface_width = plan.interface_figures.len();
        self.interfaces.clear();
        if self.interface_width > 0 {
            for i in &n.networks {
                self.interfaces
                    .extend(plan.interface_figures.iter().map(|f| f.of_interface(i)));
            }
        }
    }

    /// A node figure, by its slot.
    pub(super) fn node(&self, slot: usize) -> Option<f64> {
        self.node[slot]
    }

    /// A mount or disk figure of disk entry `disk`, by its slot.
    pub(super) fn mount(&self, disk: usize, slot: usize) -> Option<f64> {
        self.mounts[disk * self.mount_width + slot]
    }

    /// An interface figure of interface `interface`, by its slot.
    pub(super) fn interface(&self, interface: usize, slot: usize) -> Option<f64> {
        self.interfaces[interface * self.interface_width + slot]
    }

    /// Whether disk entry `disk` is the first of its device.
    pub(super) fn is_first_of_device(&self, disk: usize) -> bool {
        self.first_of_device[disk]
    }

    /// Whether disk entry `disk` is mounted where the primary disk is.
    pub(super) fn is_primary(&self, disk: usize) -> bool {
        self.primary[disk]
    }
}

/// Which of the plan's node patterns each node name matches. Emptied when the rules change;
/// names not asked for a while are dropped ([`ScopeCache::forget_older_than`]).
#[derive(Debug, Default)]
pub(super) struct ScopeCache {
    /// Node name -> (offset of its row in `bits`, last pass that asked).
    rows: FxHashMap<String, (usize, u64)>,
    /// Rows of `Plan::pattern_words` words, bit `p` set when pattern `p` matches.
    bits: Vec<u64>,
}

impl ScopeCache {
    /// Forgets every name (the patterns changed).
    pub(super) fn clear(&mut self) {
        self.rows.clear();
        self.bits.clear();
    }

    /// The row of `name`'s results, matching the patterns the first time it is asked.
    pub(super) fn row(&mut self, plan: &Plan, name: &str, pass: u64) -> usize {
        let words = plan.pattern_words();
        if words == 0 {
            return 0;
        }
        if let Some((row, asked)) = self.rows.get_mut(name) {
            *asked = pass;
            return *row;
        }
        let row = self.bits.len();
        self.bits.resize(row + words, 0);
        for (p, re) in plan.node_patterns.iter().enumerate() {
            if re.is_match(name) {
                self.bits[row + p / 64] |= 1 << (p % 64);
            }
        }
        self.rows.insert(name.to_owned(), (row, pass));
        row
    }

    /// Whether the name of `row` matches pattern `pattern`.
    pub(super) fn matches(&self, row: usize, pattern: usize) -> bool {
        self.bits[row + pattern / 64] & (1 << (pattern % 64)) != 0
    }

    /// Drops the names last asked before pass `oldest` and compacts the rows.
    pub(super) fn forget_older_than(&mut self, plan: &Plan, oldest: u64) {
        let words = plan.pattern_words();
        if words == 0 {
            return;
        }
        self.rows.retain(|_, (_, asked)| *asked >= oldest);
        let mut bits = Vec::with_capacity(self.rows.len() * words);
        for (row, _) in self.rows.values_mut() {
            let at = bits.len();
            bits.extend_from_slice(&self.bits[*row..*row + words]);
            *row = at;
        }
        self.bits = bits;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::rules::from_json;
    use atlhyper_model::{DiskMetrics, NetworkMetrics};

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

        let mut cache = ScopeCache::default();
        let row = cache.row(&plan, "w-1", 1);
        assert!(cache.matches(row, w) && !cache.matches(row, x));
        let other = cache.row(&plan, "x", 1);
        assert!(!cache.matches(other, w) && cache.matches(other, x));
        assert_eq!(cache.row(&plan, "w-1", 2), row, "asked again: the same row");
        cache.forget_older_than(&plan, 2);
        assert_eq!(cache.rows.len(), 1, "x was not asked since pass 1");
        let row = cache.row(&plan, "w-1", 3);
        assert!(
            cache.matches(row, w) && !cache.matches(row, x),
            "kept across compaction"
        );

        let mut n = NodeMetricsSnapshot::default();
        n.cpu.usage_percent = 42.0;
        n.memory.total = 100;
        n.memory.usage_percent = 7.0;
        for (device, mount) in [("sda1", "/data"), ("sda2", "/"), ("sda1", "/again")] {
            n.disks.push(DiskMetrics {
                device: device.into(),
                mount_point: mount.into(),
                io_util: 3.0,
                ..DiskMetrics::default()
            });
        }
        n.networks.push(NetworkMetrics {
            rx_rate: 5.0,
            ..NetworkMetrics::default()
        });
        let mut figures = NodeFigures::default();
        figures.read(&plan, &n);
        assert_eq!(figures.node(plan.slot(0)), Some(42.0));
        assert_eq!(figures.node(plan.slot(1)), Some(7.0));
        assert_eq!(figures.mount(2, plan.slot(3)), Some(3.0));
        assert_eq!(figures.interface(0, plan.slot(4)), Some(5.0));
        let first: Vec<bool> = (0..3).map(|d| figures.is_first_of_device(d)).collect();
        assert_eq!(first, [true, true, false]);
        let primary: Vec<bool> = (0..3).map(|d| figures.is_primary(d)).collect();
        assert_eq!(primary, [false, true, false]);
    }
}
