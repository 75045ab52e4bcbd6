//! What the engine keeps per node between evaluations, in one [`Roster`] per cluster: the node
//! names in the snapshot's (sorted) order, which node patterns each name matches, and the
//! samples of the node's predicted series.
//!
//! Each evaluation lines the roster up with the snapshot's node map by one merge of two sorted
//! lists (a string compare per node, no hashing), so the node at position `i` of the snapshot
//! is slot `i` of the roster. Patterns are matched only for names new to the roster, or for all
//! names once after the rules change.

use super::plan::Plan;
use super::samples::Samples;

/// One predicted series of a node: `key` is [`series_key`] of the rule and the series.
#[derive(Debug)]
struct NodeSeries {
    key: u64,
    samples: Samples,
}

/// One node's state.
#[derive(Debug)]
pub(super) struct NodeSlot {
    name: String,
    /// Few per node (one per predict rule and mount or interface): a short list beats a map.
    series: Vec<NodeSeries>,
}

impl NodeSlot {
    /// The samples of series `key`, made empty the first time.
    pub(super) fn samples(&mut self, key: u64) -> &mut Samples {
        match self.series.iter().position(|s| s.key == key) {
            Some(i) => &mut self.series[i].samples,
            None => {
                self.series.push(NodeSeries {
                    key,
                    samples: Samples::default(),
                });
                &mut self.series.last_mut().expect("just pushed").samples
            }
        }
    }

    /// The samples of series `key`, if it has them.
    pub(super) fn existing_samples(&mut self, key: u64) -> Option<&mut Samples> {
        self.series
            .iter_mut()
            .find(|s| s.key == key)
            .map(|s| &mut s.samples)
    }
}

/// What a series of a node is, as a number: its device and mount point for mount series, its
/// device for disk and interface series, nothing (0) for node series. Worked out while the
/// table reads the node, so the rule passes need not read the names again.
pub(super) fn series_identity(device: &str, mountpoint: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    (device, mountpoint).hash(&mut h);
    h.finish()
}

/// The key of a node's series of one rule: [`rule_identity`] of its rule and its
/// [`series_identity`]. Unique within one node (the node and cluster are where the samples are
/// kept).
pub(super) fn series_key(rule: u64, identity: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    (rule, identity).hash(&mut h);
    h.finish()
}

/// A rule's name as a number, for [`series_key`] (hashed once per rule and evaluation, not per
/// series).
pub(super) fn rule_identity(rule: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    rule.hash(&mut h);
    h.finish()
}

/// The nodes of one cluster.
#[derive(Debug, Default)]
pub(super) struct Roster {
    slots: Vec<NodeSlot>,
    /// Rows of `Plan::pattern_words` words per slot: bit `p` set when pattern `p` matches.
    scope: Vec<u64>,
    /// The plan generation `scope` was matched for.
    generation: u64,
    /// Last pass that lined it up (rosters of clusters gone for a while are dropped).
    pub(super) seen: u64,
}

impl Roster {
    /// Lines the slots up with `names` (sorted, as a `BTreeMap`'s keys): slots of names gone are
    /// dropped, names new get a slot with their patterns matched. `generation` is the plan's;
    /// a roster matched for another one matches every name again.
    pub(super) fn align<'a>(
        &mut self,
        plan: &Plan,
        generation: u64,
        names: impl ExactSizeIterator<Item = &'a String> + Clone,
        pass: u64,
    ) {
        self.seen = pass;
        let words = plan.pattern_words();
        let same = self.slots.len() == names.len()
            && self
                .slots
                .iter()
                .zip(names.clone())
                .all(|(slot, name)| slot.name == *name);
        if !same {
            let mut old = std::mem::take(&mut self.slots).into_iter().peekable();
            let old_scope = std::mem::take(&mut self.scope);
            let keep_scope = self.generation == generation;
            let mut at = 0;
            self.slots.reserve(names.len());
            for name in names {
                while old.next_if(|s| s.name < *name).is_some() {
                    at += 1;
                }
                match old.next_if(|s| s.name == *name) {
                    Some(slot) => {
                        if keep_scope {
                            self.scope
                                .extend_from_slice(&old_scope[at * words..(at + 1) * words]);
                        } else {
                            push_scope(&mut self.scope, plan, name);
                        }
                        at += 1;
                        self.slots.push(slot);
                    }
                    None => {
                        push_scope(&mut self.scope, plan, name);
                        self.slots.push(NodeSlot {
                            name: name.clone(),
                            series: Vec::new(),
                        });
                    }
                }
            }
        } else if self.generation != generation {
            self.scope.clear();
            for slot in &self.slots {
                push_scope(&mut self.scope, plan, &slot.name);
            }
        }
        self.generation = generation;
    }

    /// Slot `i` (the `i`-th node of the snapshot it was last lined up with).
    pub(super) fn slot(&mut self, i: usize) -> &mut NodeSlot {
        &mut self.slots[i]
    }

    /// The slot of node `name`, if the roster has it.
    pub(super) fn slot_of(&mut self, name: &str) -> Option<&mut NodeSlot> {
        let i = self
            .slots
            .binary_search_by(|s| s.name.as_str().cmp(name))
            .ok()?;
        Some(&mut self.slots[i])
    }

    /// The pattern bits of slot `i`.
    pub(super) fn scope(&self, plan: &Plan, i: usize) -> &[u64] {
        let words = plan.pattern_words();
        &self.scope[i * words..(i + 1) * words]
    }

    /// Drops the predicted series not used since pass `oldest`.
    pub(super) fn forget_series_older_than(&mut self, oldest: u64) {
        for slot in &mut self.slots {
            slot.series.retain(|s| s.samples.used >= oldest);
        }
    }
}

fn push_scope(scope: &mut Vec<u64>, plan: &Plan, name: &str) {
    let at = scope.len();
    scope.resize(at + plan.pattern_words(), 0);
    plan.match_patterns(name, &mut scope[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::rules::{Rule, from_json};
    use std::sync::Arc;

    fn plan(patterns: &[&str]) -> Plan {
        let rules: Vec<Arc<Rule>> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let json = format!(
                    r#"{{"name":"R{i}","figure":"cpu.usage_percent","op":">","threshold":1,"scope":{{"nodes":"{p}"}}}}"#
                );
                Arc::new(Rule::compile(from_json(json.as_bytes()).unwrap()).unwrap())
            })
            .collect();
        Plan::new(&rules)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn bits(roster: &Roster, plan: &Plan) -> Vec<u64> {
        (0..roster.slots.len())
            .map(|i| roster.scope(plan, i)[0])
            .collect()
    }

    #[test]
    fn slots_follow_the_snapshot_and_keep_their_series() {
        let plan = plan(&["a.*", "b"]);
        let mut roster = Roster::default();
        roster.align(&plan, 1, names(&["a1", "b", "c"]).iter(), 1);
        assert_eq!(bits(&roster, &plan), [0b01, 0b10, 0]);
        roster.slot(1).samples(7).seeded = true;

        // "a1" leaves, "a2" and "bb" arrive: b keeps its series and its bits.
        roster.align(&plan, 1, names(&["a2", "b", "bb", "c"]).iter(), 2);
        assert_eq!(bits(&roster, &plan), [0b01, 0b10, 0, 0]);
        assert!(roster.slot(1).existing_samples(7).unwrap().seeded);
        assert!(roster.slot(0).existing_samples(7).is_none());
        assert!(roster.slot_of("bb").is_some() && roster.slot_of("a1").is_none());

        // New rules: the same names are matched again.
        let other = super::tests::plan(&["c"]);
        roster.align(&other, 2, names(&["a2", "b", "bb", "c"]).iter(), 3);
        assert_eq!(bits(&roster, &other), [0, 0, 0, 1]);
        assert!(roster.slot_of("b").unwrap().existing_samples(7).is_some());

        roster.slot(1).samples(7).used = 3;
        roster.slot(1).samples(8).used = 1;
        roster.forget_series_older_than(2);
        let b = roster.slot(1);
        assert!(b.existing_samples(7).is_some() && b.existing_samples(8).is_none());
    }
}
