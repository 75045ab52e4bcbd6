//! One evaluation's figures as a column-major table: a row per node of the clusters evaluated,
//! per disk entry of their online nodes and per interface, a column per figure some rule
//! compares (the plan's slots). Each node snapshot is read once, node after node; each
//! threshold compare then runs over one contiguous column ([`rows_holding`]), and only rows
//! where it holds go further.
//!
//! An absent figure (no PSI, no sensor, no traffic) is NaN in its column: every comparison with
//! NaN is false except `!=`, which [`rows_holding`] checks for.

use std::ops::Range;

use atlhyper_model::NodeMetricsSnapshot;

use atlhyper_model::{DiskMetrics, NetworkMetrics};

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

/// A disk entry of an online node. What else a rule may need of it (its series identity,
/// whether it is the first entry of its device or the primary mount) is worked out from the
/// snapshot only for the rows that need it (see [`FigureTable::mount_identity`] and the
/// others): most rows hold no condition, and reading their device and mount names cost a
/// cache miss each.
#[derive(Debug, Clone, Copy)]
pub(super) struct MountRow {
    /// Node row.
    pub(super) node: usize,
    /// Index into the node's `disks`.
    pub(super) disk: usize,
}

/// An interface of an online node.
#[derive(Debug, Clone, Copy)]
pub(super) struct InterfaceRow {
    pub(super) node: usize,
    /// Index into the node's `networks`.
    pub(super) interface: usize,
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
    /// Per mount row, its mount series identity and whether it is the primary mount; per mount
    /// row its disk series identity; per interface row its identity. Filled only where a
    /// predict rule reads every row's (see [`Plan::predicted_rows`]), while the node is read
    /// and its names are in cache; empty otherwise, and worked out row by row on demand.
    mount_keys: Vec<(u64, bool)>,
    disk_keys: Vec<u64>,
    interface_keys: Vec<u64>,
    keyed: (bool, bool, bool),
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
            mount_keys: Vec::new(),
            disk_keys: Vec::new(),
            interface_keys: Vec::new(),
            keyed: plan.predicted_rows(),
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
                for (i, d) in n.disks.iter().enumerate() {
                    for (column, figure) in self.mount_columns.iter_mut().zip(plan.mount_figures())
                    {
                        column.push(figure.of_mount(d).unwrap_or(f64::NAN));
                    }
                    self.mounts.push(MountRow { node: at, disk: i });
                    if self.keyed.0 {
                        let primary = n.primary_disk().map(|p| p.mount_point.as_str());
                        self.mount_keys.push((
                            series_identity(&d.device, Some(&d.mount_point)),
                            primary == Some(d.mount_point.as_str()),
                        ));
                    }
                    if self.keyed.1 {
                        self.disk_keys.push(series_identity(&d.device, None));
                    }
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
                    });
                    if self.keyed.2 {
                        self.interface_keys
                            .push(series_identity(&network.interface, None));
                    }
                }
            }
        }
        let last = self.clusters.last_mut().expect("a cluster is started");
        last.nodes.end = self.nodes.len();
        last.mounts.end = self.mounts.len();
        last.interfaces.end = self.interfaces.len();
    }

    /// The disk entry of mount row `row`.
    pub(super) fn disk(&self, row: usize) -> &'v DiskMetrics {
        let m = self.mounts[row];
        &self.nodes[m.node].node.disks[m.disk]
    }

    /// The interface of interface row `row`.
    pub(super) fn network(&self, row: usize) -> &'v NetworkMetrics {
        let i = self.interfaces[row];
        &self.nodes[i.node].node.networks[i.interface]
    }

    /// Whether mount row `row` is the first entry of its device (a device mounted twice is one
    /// device for disk figures).
    pub(super) fn first_of_device(&self, row: usize) -> bool {
        let m = self.mounts[row];
        let disks = &self.nodes[m.node].node.disks;
        !disks[..m.disk]
            .iter()
            .any(|e| e.device == disks[m.disk].device)
    }

    /// Whether mount row `row` is mounted where its node's primary disk is (the mount whose
    /// history the store keeps).
    pub(super) fn is_primary(&self, row: usize) -> bool {
        if let Some(&(_, primary)) = self.mount_keys.get(row) {
            return primary;
        }
        let m = self.mounts[row];
        let node = self.nodes[m.node].node;
        node.primary_disk().map(|d| d.mount_point.as_str())
            == Some(node.disks[m.disk].mount_point.as_str())
    }

    /// [`series_identity`] of mount row `row`'s mount series (device and mount point).
    pub(super) fn mount_identity(&self, row: usize) -> u64 {
        if let Some(&(identity, _)) = self.mount_keys.get(row) {
            return identity;
        }
        let d = self.disk(row);
        series_identity(&d.device, Some(&d.mount_point))
    }

    /// [`series_identity`] of mount row `row`'s disk series (device).
    pub(super) fn disk_identity(&self, row: usize) -> u64 {
        if let Some(&identity) = self.disk_keys.get(row) {
            return identity;
        }
        series_identity(&self.disk(row).device, None)
    }

    /// [`series_identity`] of interface row `row`'s series.
    pub(super) fn interface_identity(&self, row: usize) -> u64 {
        if let Some(&identity) = self.interface_keys.get(row) {
            return identity;
        }
        series_identity(&self.network(row).interface, None)
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

/// A compare of one column of one cluster's rows with a threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct HitKey {
    /// Index into [`FigureTable::clusters`].
    pub(super) cluster: usize,
    /// Node (0), mount (1) or interface (2) columns.
    pub(super) table: u8,
    pub(super) slot: usize,
    pub(super) op: Comparator,
    /// The threshold's bits (equal thresholds compare alike).
    pub(super) threshold: u64,
}

/// The rows where each compare made in one evaluation holds, so rules that differ only in
/// scope, labels or timing compare their column once.
#[derive(Debug, Default)]
pub(super) struct HitLists {
    made: Vec<(HitKey, Range<usize>)>,
    rows: Vec<u32>,
}

impl HitLists {
    /// The rows of compare `key`, made by `compare` (which pushes them) the first time.
    pub(super) fn rows(&mut self, key: HitKey, compare: impl FnOnce(&mut Vec<u32>)) -> &[u32] {
        let range = match self.made.iter().find(|(k, _)| *k == key) {
            Some((_, range)) => range.clone(),
            None => {
                let start = self.rows.len();
                compare(&mut self.rows);
                let range = start..self.rows.len();
                self.made.push((key, range.clone()));
                range
            }
        };
        &self.rows[range]
    }
}

/// Pushes onto `out` the positions in `column` (plus `offset`) whose value holds `op threshold`.
/// One comparator per call, so the compare loop has no branch per value and compiles to vector
/// compares: 64 values give one bit mask, and only its set bits (rows that hold, few) are
/// walked.
pub(super) fn rows_holding(
    column: &[f64],
    op: Comparator,
    threshold: f64,
    offset: u32,
    out: &mut Vec<u32>,
) {
    let t = threshold;
    match op {
        Comparator::Greater => scan(column, offset, out, |v| v > t),
        Comparator::GreaterOrEqual => scan(column, offset, out, |v| v >= t),
        Comparator::Less => scan(column, offset, out, |v| v < t),
        Comparator::LessOrEqual => scan(column, offset, out, |v| v <= t),
        Comparator::Equal => scan(column, offset, out, |v| v == t),
        // NaN (absent) is unequal to everything: `v == v` keeps it out.
        #[allow(clippy::eq_op)]
        Comparator::NotEqual => scan(column, offset, out, |v| v != t && v == v),
    }
}

#[inline(always)]
fn scan(column: &[f64], offset: u32, out: &mut Vec<u32>, test: impl Fn(f64) -> bool) {
    for (c, chunk) in column.chunks(64).enumerate() {
        let mut mask = 0u64;
        for (j, &v) in chunk.iter().enumerate() {
            mask |= u64::from(test(v)) << j;
        }
        let base = offset + (c * 64) as u32;
        while mask != 0 {
            out.push(base + mask.trailing_zeros());
            mask &= mask - 1;
        }
    }
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

    /// The rows found by the masked compare are the rows where the comparator holds, for
    /// every comparator, across chunk edges and with absent (NaN) values.
    #[test]
    fn rows_holding_agrees_with_the_comparator() {
        let column: Vec<f64> = (0..200)
            .map(|i| {
                if i % 7 == 3 {
                    f64::NAN
                } else {
                    f64::from(i % 13)
                }
            })
            .collect();
        for op in [
            Comparator::Greater,
            Comparator::GreaterOrEqual,
            Comparator::Less,
            Comparator::LessOrEqual,
            Comparator::Equal,
            Comparator::NotEqual,
        ] {
            let mut found = vec![7];
            rows_holding(&column[5..], op, 6.0, 5, &mut found);
            let expected: Vec<u32> = std::iter::once(7)
                .chain(
                    (5..200u32)
                        .filter(|&i| !column[i as usize].is_nan())
                        .filter(|&i| op.holds(column[i as usize], 6.0)),
                )
                .collect();
            assert_eq!(found, expected, "{op:?}");
            assert!(expected.len() > 1, "{op:?} finds rows");
        }
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

        assert_eq!(table.mount_column(plan.slot(2)), [3.0, 3.0, 3.0]);
        assert_eq!(table.interface_column(plan.slot(3)), [5.0]);
        let first: Vec<bool> = (0..3).map(|r| table.first_of_device(r)).collect();
        assert_eq!(first, [true, true, false]);
        let primary: Vec<bool> = (0..3).map(|r| table.is_primary(r)).collect();
        assert_eq!(primary, [false, true, false]);
        assert_eq!(
            table.mount_identity(0),
            series_identity("sda1", Some("/data"))
        );
        assert_eq!(table.disk_identity(2), series_identity("sda1", None));
        assert!(table.in_scope(0, 0) && !table.in_scope(1, 0));
        assert_eq!(plan.predicted_rows(), (false, false, false));

        // With a predict rule over mounts the identities are worked out while the node is
        // read; they agree with the ones worked out on demand.
        let mut predicting = rules.to_vec();
        predicting.push(rule(
            r#"{"name":"F","figure":"disk.usage_percent","op":">=","threshold":100,
                "predict":{"lookback":"6h","within":"24h"}}"#,
        ));
        let keyed_plan = Plan::new(&predicting);
        assert_eq!(keyed_plan.predicted_rows(), (true, false, false));
        let mut keyed = FigureTable::new(&keyed_plan, (0, 0, 0));
        keyed.start_cluster(0);
        keyed.push_node(&keyed_plan, row("w-1", true, 0), &[0b1]);
        for r in 0..3 {
            assert_eq!(keyed.mount_identity(r), table.mount_identity(r));
            assert_eq!(keyed.is_primary(r), table.is_primary(r));
        }
        assert_eq!(keyed.mount_keys.len(), 3);
        assert!(table.mount_keys.is_empty());
        let c = &table.clusters[0];
        assert_eq!(
            (c.nodes.clone(), c.mounts.clone(), c.interfaces.clone()),
            (0..2, 0..3, 0..1)
        );
    }
}
