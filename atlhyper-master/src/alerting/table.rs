//! One evaluation's figures as a column-major table: a row per node of the clusters evaluated,
//! per disk entry of their online nodes and per interface, a column per figure some rule
//! compares (the plan's slots). Each node snapshot is read once, node after node; each rule
//! then compares one contiguous column (a threshold rule is one compare per row, and only rows
//! where it holds go further).
//!
//! An absent figure (no PSI, no sensor, no traffic) is NaN in its column: every comparison with
//! NaN is false except `!=`, which [`holds`] checks for.

use std::ops::Range;

use atlhyper_model::NodeMetricsSnapshot;

use super::plan::Plan;
use super::roster::series_identity;
use super::rules::Comparator;

/// A node row.
#[derive(Debug, Clone, Copy)]
pub(super) struct NodeRow<'v> {
    pub(super) name: &'v str,
    pub(super) node: &'v NodeMetricsSnapshot,
    pub(super) online: bool,
    /// Position in its cluster's roster.
    pub(super) slot: usize,
}

/// A disk entry of an online node.
#[derive(Debug, Clone, Copy)]
pub(super) struct MountRow {
    /// Node row.
    pub(super) node: usize,
    /// Index into the node's `disks`.
    pub(super) disk: usize,
    /// Whether it is the first entry of its device (a device mounted twice is one device for
    /// disk figures).
    pub(super) first_of_device: bool,
    /// Whether it is mounted where the node's primary disk is (the mount whose history the
    /// store keeps).
    pub(super) primary: bool,
    /// [`series_identity`] of its mount series (device and mount point) and of its disk
    /// series (device).
    pub(super) mount_identity: u64,
    pub(super) disk_identity: u64,
}

/// An interface of an online node.
#[derive(Debug, Clone, Copy)]
pub(super) struct InterfaceRow {
    pub(super) node: usize,
    /// Index into the node's `networks`.
    pub(super) interface: usize,
    /// [`series_identity`] of its series.
    pub(super) identity: u64,
}

/// The rows of one cluster.
#[derive(Debug, Clone)]
pub(super) struct ClusterRows {
    /// Index into the views evaluated.
    pub(super) view: usize,
    pub(super) nodes: Range<usize>,
    pub(super) mounts: Range<usize>,
    pub(super) interfaces: Range<usize>,
}

/// The table (see the module docs).
#[derive(Debug, Default)]
pub(super) struct FigureTable<'v> {
    pub(super) nodes: Vec<NodeRow<'v>>,
    /// Per node row, `Plan::pattern_words` words of pattern bits.
    scope: Vec<u64>,
    scope_words: usize,
    node_columns: Vec<Vec<f64>>,
    pub(super) mounts: Vec<MountRow>,
    mount_columns: Vec<Vec<f64>>,
    pub(super) interfaces: Vec<InterfaceRow>,
    interface_columns: Vec<Vec<f64>>,
    pub(super) clusters: Vec<ClusterRows>,
}

impl<'v> FigureTable<'v> {
    /// An empty table with the plan's columns, room for `rows` (nodes, mounts, interfaces:
    /// the last table's [`FigureTable::rows`], so the columns do not grow by copying).
    pub(super) fn new(plan: &Plan, rows: (usize, usize, usize)) -> Self {
        let (node, mount, interface) = plan.widths();
        let columns = |width, len| vec![Vec::with_capacity(len); width];
        Self {
            nodes: Vec::with_capacity(rows.0),
            scope: Vec::with_capacity(rows.0 * plan.pattern_words()),
            scope_words: plan.pattern_words(),
            node_columns: columns(node, rows.0),
            mounts: Vec::with_capacity(rows.1),
            mount_columns: columns(mount, rows.1),
            interfaces: Vec::with_capacity(rows.2),
            interface_columns: columns(interface, rows.2),
            clusters: Vec::new(),
        }
    }

    /// Rows of nodes, mounts and interfaces.
    pub(super) fn rows(&self) -> (usize, usize, usize) {
        (self.nodes.len(), self.mounts.len(), self.interfaces.len())
    }

    /// Starts the rows of the cluster of view `view`.
    pub(super) fn start_cluster(&mut self, view: usize) {
        self.clusters.push(ClusterRows {
            view,
            nodes: self.nodes.len()..self.nodes.len(),
            mounts: self.mounts.len()..self.mounts.len(),
            interfaces: self.interfaces.len()..self.interfaces.len(),
        });
    }

    /// Adds a node of the cluster started last, its figures read when it is online; `scope` are
    /// its pattern bits.
    pub(super) fn push_node(&mut self, plan: &Plan, row: NodeRow<'v>, scope: &[u64]) {
        let at = self.nodes.len();
        let n = row.node;
        self.nodes.push(row);
        self.scope.extend_from_slice(scope);
        for (column, figure) in self.node_columns.iter_mut().zip(plan.node_figures()) {
            let v = if row.online { figure.of_node(n) } else { None };
            column.push(v.unwrap_or(f64::NAN));
        }
        if row.online {
            if !self.mount_columns.is_empty() {
                let primary = n.primary_disk().map(|d| d.mount_point.as_str());
                for (i, d) in n.disks.iter().enumerate() {
                    for (column, figure) in self.mount_columns.iter_mut().zip(plan.mount_figures())
                    {
                        column.push(figure.of_mount(d).unwrap_or(f64::NAN));
                    }
                    self.mounts.push(MountRow {
                        node: at,
                        disk: i,
                        first_of_device: !n.disks[..i].iter().any(|e| e.device == d.device),
                        primary: primary == Some(d.mount_point.as_str()),
                        mount_identity: series_identity(&d.device, Some(&d.mount_point)),
                        disk_identity: series_identity(&d.device, None),
                    });
                }
            }
            if !self.interface_columns.is_empty() {
                for (i, network) in n.networks.iter().enumerate() {
                    for (column, figure) in self
                        .interface_columns
                        .iter_mut()
                        .zip(plan.interface_figures())
                    {
                        column.push(figure.of_interface(network).unwrap_or(f64::NAN));
                    }
                    self.interfaces.push(InterfaceRow {
                        node: at,
                        interface: i,
                        identity: series_identity(&network.interface, None),
                    });
                }
            }
        }
        let last = self.clusters.last_mut().expect("a cluster is started");
        last.nodes.end = self.nodes.len();
        last.mounts.end = self.mounts.len();
        last.interfaces.end = self.interfaces.len();
    }

    /// The column of node figure `slot`, one value per node row.
    pub(super) fn node_column(&self, slot: usize) -> &[f64] {
        &self.node_columns[slot]
    }

    /// The column of mount or disk figure `slot`, one value per mount row.
    pub(super) fn mount_column(&self, slot: usize) -> &[f64] {
        &self.mount_columns[slot]
    }

    /// The column of interface figure `slot`, one value per interface row.
    pub(super) fn interface_column(&self, slot: usize) -> &[f64] {
        &self.interface_columns[slot]
    }

    /// Whether node row `row`'s name matches pattern `pattern`.
    pub(super) fn in_scope(&self, row: usize, pattern: usize) -> bool {
        self.scope[row * self.scope_words + pattern / 64] & (1 << (pattern % 64)) != 0
    }
}

/// Whether `value op threshold` holds for a value of a column (NaN: absent, never holds).
#[inline]
pub(super) fn holds(op: Comparator, value: f64, threshold: f64) -> bool {
    op.holds(value, threshold) && !value.is_nan()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::rules::{Rule, from_json};
    use atlhyper_model::{DiskMetrics, NetworkMetrics};
    use std::sync::Arc;

    fn rule(json: &str) -> Arc<Rule> {
        Arc::new(Rule::compile(from_json(json.as_bytes()).unwrap()).unwrap())
    }

    #[test]
    fn rows_and_columns_of_online_and_offline_nodes() {
        let rules = [
            rule(
                r#"{"name":"A","figure":"cpu.usage_percent","op":">","threshold":1,"scope":{"nodes":"w-.*"}}"#,
            ),
            rule(r#"{"name":"B","figure":"psi.io_full","op":"!=","threshold":1}"#),
            rule(r#"{"name":"D","figure":"disk.io_util","op":">","threshold":1}"#),
            rule(r#"{"name":"E","figure":"network.rx_rate","op":">","threshold":1}"#),
        ];
        let plan = Plan::new(&rules);
        let mut n = NodeMetricsSnapshot::default();
        n.cpu.usage_percent = 42.0;
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
        let mut table = FigureTable::new(&plan, (0, 0, 0));
        table.start_cluster(0);
        let row = |name, online, slot| NodeRow {
            name,
            node: &n,
            online,
            slot,
        };
        table.push_node(&plan, row("w-1", true, 0), &[0b1]);
        table.push_node(&plan, row("x", false, 1), &[0b0]);
        assert_eq!(table.node_column(plan.slot(0))[0], 42.0);
        assert!(
            table.node_column(plan.slot(0))[1].is_nan(),
            "offline: not read"
        );
        assert!(
            table.node_column(plan.slot(1))[0].is_nan(),
            "no PSI: absent"
        );
        assert!(
            !holds(Comparator::NotEqual, f64::NAN, 1.0),
            "absent never holds"
        );
        assert_eq!(table.mount_column(plan.slot(2)), [3.0, 3.0, 3.0]);
        assert_eq!(table.interface_column(plan.slot(3)), [5.0]);
        let first: Vec<bool> = table.mounts.iter().map(|m| m.first_of_device).collect();
        assert_eq!(first, [true, true, false]);
        let primary: Vec<bool> = table.mounts.iter().map(|m| m.primary).collect();
        assert_eq!(primary, [false, true, false]);
        assert!(table.in_scope(0, 0) && !table.in_scope(1, 0));
        let c = &table.clusters[0];
        assert_eq!(
            (c.nodes.clone(), c.mounts.clone(), c.interfaces.clone()),
            (0..2, 0..3, 0..1)
        );
    }
}
