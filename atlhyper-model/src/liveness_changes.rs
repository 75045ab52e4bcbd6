//! Which nodes went offline or came back since the last look: the rule the master and the agent
//! share so each transition is logged once (liveness is decided when it is read, so nothing
//! else notices the moment a node goes silent).

use std::collections::HashMap;
use std::hash::Hash;

use crate::NodeState;

/// One node's change of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivenessChange<K> {
    /// The node (at the master: cluster and node name; at the agent: node name).
    pub node: K,
    /// Its state now.
    pub state: NodeState,
}

/// The last state seen of every node.
#[derive(Debug, Clone)]
pub struct LivenessChanges<K> {
    last: HashMap<K, NodeState>,
}

impl<K> Default for LivenessChanges<K> {
    fn default() -> Self {
        Self {
            last: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> LivenessChanges<K> {
    /// Takes the state of every node now and returns the nodes whose state differs from the
    /// last call's. A node seen for the first time is a change only when it is online (a node
    /// restored offline at start has not changed); a node no longer listed (deleted, retired) is
    /// forgotten without a change.
    pub fn update(
        &mut self,
        now: impl IntoIterator<Item = (K, NodeState)>,
    ) -> Vec<LivenessChange<K>> {
        let mut next = HashMap::with_capacity(self.last.len());
        let mut changes = Vec::new();
        for (node, state) in now {
            let changed = match self.last.get(&node) {
                Some(before) => *before != state,
                None => state == NodeState::Online,
            };
            if changed {
                changes.push(LivenessChange {
                    node: node.clone(),
                    state,
                });
            }
            next.insert(node, state);
        }
        self.last = next;
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NodeState::{Offline, Online};

    fn names(changes: &[LivenessChange<&'static str>]) -> Vec<(&'static str, NodeState)> {
        changes.iter().map(|c| (c.node, c.state)).collect()
    }

    #[test]
    fn each_transition_is_reported_once() {
        let mut t = LivenessChanges::default();
        assert_eq!(
            names(&t.update([("a", Online), ("b", Offline)])),
            [("a", Online)],
            "new online nodes are news, nodes restored offline are not"
        );
        assert!(t.update([("a", Online), ("b", Offline)]).is_empty());
        assert_eq!(
            names(&t.update([("a", Offline), ("b", Offline)])),
            [("a", Offline)]
        );
        assert!(t.update([("a", Offline), ("b", Offline)]).is_empty());
        assert_eq!(
            names(&t.update([("a", Online), ("b", Online)])),
            [("a", Online), ("b", Online)]
        );
    }

    #[test]
    fn nodes_that_leave_are_forgotten_quietly() {
        let mut t = LivenessChanges::default();
        t.update([("a", Online)]);
        assert!(t.update(std::iter::empty()).is_empty());
        // Back again: online is news once more.
        assert_eq!(names(&t.update([("a", Online)])), [("a", Online)]);
    }
}
