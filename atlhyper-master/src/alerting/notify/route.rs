//! The route tree: which receiver gets an alert, grouped how, on which timers. Alertmanager's
//! semantics: an alert enters the root, goes down the first child whose matchers match (and on
//! to later siblings while a matching child has `continue`); the deepest matching routes take it,
//! or the route itself when no child matches.

use std::time::Duration;

use atlhyper_model::Labels;

use super::config::RouteConfig;
use super::matcher::{Matcher, all_match};

/// Alertmanager's defaults.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// Alertmanager's default `group_interval`.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Alertmanager's default `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// A group's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Before a new group's first notification.
    pub group_wait: Duration,
    /// Between notifications of a group.
    pub group_interval: Duration,
    /// Before an unchanged group is notified again.
    pub repeat_interval: Duration,
}

/// Which labels make a group.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GroupBy {
    /// `...`: every label (one group per alert).
    All,
    /// These labels (none: one group for everything on the route).
    Labels(Vec<String>),
}

/// One resolved node of the tree (inherited settings filled in).
#[derive(Debug, Clone)]
pub struct Route {
    /// Stable identity of the route in the tree (position and matchers), part of group keys, so
    /// the notification log finds its groups again after a restart with the same configuration.
    pub key: String,
    /// Receiver name.
    pub receiver: String,
    /// Timers of its groups.
    pub timing: Timing,
    matchers: Vec<Matcher>,
    group_by: GroupBy,
    continue_matching: bool,
    routes: Vec<Route>,
}

impl Route {
    /// The tree from the configuration's root, Alertmanager's defaults where unset.
    pub fn tree(root: &RouteConfig) -> Self {
        let defaults = Self {
            key: String::new(),
            receiver: String::new(),
            timing: Timing {
                group_wait: DEFAULT_GROUP_WAIT,
                group_interval: DEFAULT_GROUP_INTERVAL,
                repeat_interval: DEFAULT_REPEAT_INTERVAL,
            },
            matchers: Vec::new(),
            group_by: GroupBy::Labels(Vec::new()),
            continue_matching: false,
            routes: Vec::new(),
        };
        Self::resolve(root, &defaults, "{}".to_owned())
    }

    fn resolve(config: &RouteConfig, parent: &Route, key: String) -> Self {
        let group_by = match &config.group_by {
            Some(by) if by.len() == 1 && by[0] == "..." => GroupBy::All,
            Some(by) => {
                let mut by = by.clone();
                by.sort();
                by.dedup();
                GroupBy::Labels(by)
            }
            None => parent.group_by.clone(),
        };
        let mut route = Self {
            receiver: config
                .receiver
                .clone()
                .unwrap_or_else(|| parent.receiver.clone()),
            timing: Timing {
                group_wait: config.group_wait.unwrap_or(parent.timing.group_wait),
                group_interval: config
                    .group_interval
                    .unwrap_or(parent.timing.group_interval),
                repeat_interval: config
                    .repeat_interval
                    .unwrap_or(parent.timing.repeat_interval),
            },
            matchers: config.matchers.clone(),
            group_by,
            continue_matching: config.continue_matching,
            routes: Vec::new(),
            key,
        };
        route.routes = config
            .routes
            .iter()
            .enumerate()
            .map(|(i, child)| {
                let matchers: Vec<String> =
                    child.matchers.iter().map(ToString::to_string).collect();
                let key = format!("{}/{i}{{{}}}", route.key, matchers.join(","));
                Self::resolve(child, &route, key)
            })
            .collect();
        route
    }

    /// The routes that take an alert with these labels, in tree order (the root when nothing
    /// deeper matches; none only when the root's own matchers refuse it).
    pub fn matching(&self, labels: &Labels) -> Vec<&Route> {
        let mut found = Vec::new();
        self.collect(labels, &mut found);
        found
    }

    fn collect<'a>(&'a self, labels: &Labels, found: &mut Vec<&'a Route>) -> bool {
        if !all_match(&self.matchers, labels) {
            return false;
        }
        let before = found.len();
        for child in &self.routes {
            if child.collect(labels, found) && !child.continue_matching {
                break;
            }
        }
        if found.len() == before {
            found.push(self);
        }
        true
    }

    /// The labels that identify an alert's group on this route.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match &self.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(by) => by
                .iter()
                .filter_map(|name| labels.get(name).map(|v| (name.clone(), v.clone())))
                .collect(),
        }
    }

    /// The group key of these group labels on this route: `{route key}:{name="value",...}`.
    pub fn group_key(&self, group_labels: &Labels) -> String {
        let labels: Vec<String> = group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}:{{{}}}", self.key, labels.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::notify::config::NotifyConfig;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const TREE: &str = r#"
route:
  receiver: default
  group_by: [alertname, cluster]
  repeat_interval: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_wait: 5s
      continue: true
    - matchers: ['cluster=~"prod-.*"']
      receiver: prod
      group_by: [...]
      routes:
        - matchers: ['alertname="NodeDown"']
          receiver: prod-nodes
    - matchers: ['severity=~"warning|critical"']
      receiver: warnings
receivers:
  - {name: default}
  - {name: pager}
  - {name: prod}
  - {name: prod-nodes}
  - {name: warnings}
"#;

    fn receivers(route: &Route, l: &Labels) -> Vec<String> {
        route
            .matching(l)
            .iter()
            .map(|r| r.receiver.clone())
            .collect()
    }

    #[test]
    fn routes_by_severity_cluster_and_alertname() {
        let config = NotifyConfig::from_yaml(TREE, "t.yaml").unwrap();
        let root = Route::tree(&config.route);
        let l = |p: &[(&str, &str)]| labels(p);
        // critical: pager, then (continue) the next matching sibling: prod -> prod-nodes.
        let crit = l(&[
            ("alertname", "NodeDown"),
            ("cluster", "prod-1"),
            ("severity", "critical"),
        ]);
        assert_eq!(receivers(&root, &crit), ["pager", "prod-nodes"]);
        // prod without a deeper match stops at prod; the warnings sibling is not tried.
        let warn = l(&[
            ("alertname", "HighCpu"),
            ("cluster", "prod-1"),
            ("severity", "warning"),
        ]);
        assert_eq!(receivers(&root, &warn), ["prod"]);
        let dev = l(&[
            ("alertname", "HighCpu"),
            ("cluster", "dev"),
            ("severity", "warning"),
        ]);
        assert_eq!(receivers(&root, &dev), ["warnings"]);
        let info = l(&[
            ("alertname", "HighCpu"),
            ("cluster", "dev"),
            ("severity", "info"),
        ]);
        assert_eq!(receivers(&root, &info), ["default"]);
    }

    #[test]
    fn inherits_timers_and_grouping() {
        let config = NotifyConfig::from_yaml(TREE, "t.yaml").unwrap();
        let root = Route::tree(&config.route);
        assert_eq!(root.timing.group_wait, DEFAULT_GROUP_WAIT);
        assert_eq!(root.timing.group_interval, DEFAULT_GROUP_INTERVAL);
        assert_eq!(root.timing.repeat_interval, Duration::from_secs(3600));
        let pager = &root.routes[0];
        assert_eq!(pager.timing.group_wait, Duration::from_secs(5));
        assert_eq!(pager.timing.repeat_interval, Duration::from_secs(3600));
        let alert = labels(&[
            ("alertname", "NodeDown"),
            ("cluster", "prod-1"),
            ("node", "n1"),
        ]);
        assert_eq!(
            pager.group_labels(&alert),
            labels(&[("alertname", "NodeDown"), ("cluster", "prod-1")])
        );
        // `...` groups by everything, inherited by the child.
        let nodes = &root.routes[1].routes[0];
        assert_eq!(nodes.group_labels(&alert), alert);
        assert_eq!(
            nodes.key,
            r#"{}/1{cluster=~"prod-.*"}/0{alertname="NodeDown"}"#
        );
        assert_eq!(
            pager.group_key(&pager.group_labels(&alert)),
            r#"{}/0{severity="critical"}:{alertname="NodeDown",cluster="prod-1"}"#
        );
    }
}
