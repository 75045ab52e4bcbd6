//! What a receiver accepts from a node: a DNS-1123 name, capped lists and strings, and a clock
//! that is not far off. Every hop that receives a [`NodeMetricsSnapshot`] (the agent from a node,
//! the master from an agent) applies the same rules, so one bad node is refused alone, with a
//! reason, at the first hop that sees it.
//!
//! ```
//! use atlhyper_model::{NodeMetricsSnapshot, RejectReason, SnapshotBounds};
//!
//! let bounds = SnapshotBounds::default();
//! let mut node = NodeMetricsSnapshot { node_name: "worker-1".into(), ..Default::default() };
//! assert!(bounds.apply(&mut node).is_ok());
//!
//! node.disks = vec![Default::default(); bounds.max_disks + 1];
//! let refused = bounds.apply(&mut node).unwrap_err();
//! assert_eq!(refused.reason, RejectReason::ListTooLong);
//! assert!(refused.to_string().contains("disks"));
//! ```

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::node::NodeMetricsSnapshot;

/// Process command lines are cut to this many bytes (on a UTF-8 boundary) by the collector and
/// by every receiver: enough for any command a person reads, and a bound on what a node with
/// ten thousand-argument command lines costs downstream.
pub const MAX_CMDLINE_BYTES: usize = 4096;

/// The longest DNS-1123 subdomain, which is what Kubernetes allows as a node name.
pub const MAX_NODE_NAME_BYTES: usize = 253;

/// Checks that `name` is a DNS-1123 subdomain, the rule Kubernetes applies to node names: at most
/// 253 characters of lowercase letters, digits, `-` and `.`, each dot-separated label starting and
/// ending with a letter or digit.
///
/// ```
/// use atlhyper_model::validate_node_name;
///
/// assert!(validate_node_name("k8s-worker-01.example.com").is_ok());
/// assert!(validate_node_name("Worker_1").is_err());
/// assert!(validate_node_name("").is_err());
/// ```
pub fn validate_node_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("node_name is empty".to_owned());
    }
    if name.len() > MAX_NODE_NAME_BYTES {
        return Err(format!(
            "node_name is {} characters long; a DNS-1123 name has at most {MAX_NODE_NAME_BYTES}",
            name.len()
        ));
    }
    for label in name.split('.') {
        let bytes = label.as_bytes();
        let ok = match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && !first.is_ascii_uppercase()
                    && last.is_ascii_alphanumeric()
                    && !last.is_ascii_uppercase()
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            }
            _ => false,
        };
        if !ok {
            return Err(format!(
                "node_name {name:?} is not a DNS-1123 name (lowercase letters, digits, '-' and '.', \
                 starting and ending with a letter or digit)"
            ));
        }
    }
    Ok(())
}

/// Cuts `text` to at most `max` bytes, on a character boundary. Returns whether it cut.
pub fn truncate_utf8(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

/// Caps on one node's snapshot. The defaults sit far above what any real host reports (the
/// largest Linux builds have 8192 CPUs; a busy Kubernetes node has a few dozen mounts and, with
/// every virtual interface included, a few hundred interfaces) and far below what costs a
/// receiver real memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotBounds {
    /// Entries of `disks` (mounts).
    pub max_disks: usize,
    /// Entries of `networks` (interfaces).
    pub max_networks: usize,
    /// Entries of `processes`.
    pub max_processes: usize,
    /// Entries of `cpu.per_core` (logical CPUs).
    pub max_per_core: usize,
    /// Entries of `temperature.sensors`.
    pub max_sensors: usize,
    /// Entries of `collectors`.
    pub max_collectors: usize,
    /// Bytes of every other string (host name, model, device, mount point, label, error, ...):
    /// a mount point may be as long as PATH_MAX.
    pub max_string_bytes: usize,
    /// Bytes of a process command line; longer ones are cut, not refused.
    pub max_cmdline_bytes: usize,
}

impl Default for SnapshotBounds {
    fn default() -> Self {
        Self {
            max_disks: 1024,
            max_networks: 4096,
            max_processes: 1024,
            max_per_core: 8192,
            max_sensors: 1024,
            max_collectors: 64,
            max_string_bytes: 4096,
            max_cmdline_bytes: MAX_CMDLINE_BYTES,
        }
    }
}

/// Why a node's snapshot was refused; its [`as_str`](Self::as_str) is the `reason` label of the
/// refusal counters on `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The node name is empty or not a DNS-1123 name.
    InvalidName,
    /// A list is longer than its cap.
    ListTooLong,
    /// A string is longer than its cap.
    StringTooLong,
    /// The receiver already holds as many nodes of this cluster as it accepts; a node it knows
    /// is still taken, a new one is not.
    TooManyNodes,
}

impl RejectReason {
    /// Every reason, in label order.
    pub const ALL: [RejectReason; 4] = [
        RejectReason::InvalidName,
        RejectReason::ListTooLong,
        RejectReason::StringTooLong,
        RejectReason::TooManyNodes,
    ];

    /// The label value: `invalid_name`, `list_too_long`, `string_too_long`, `too_many_nodes`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidName => "invalid_name",
            RejectReason::ListTooLong => "list_too_long",
            RejectReason::StringTooLong => "string_too_long",
            RejectReason::TooManyNodes => "too_many_nodes",
        }
    }

    /// The HTTP status a receiver answers with: 400 for a bad name, 413 for anything too large,
    /// 429 when the receiver is full (a node may be taken once others have expired).
    pub fn http_status(self) -> u16 {
        match self {
            RejectReason::InvalidName => 400,
            RejectReason::ListTooLong | RejectReason::StringTooLong => 413,
            RejectReason::TooManyNodes => 429,
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's snapshot refused by [`SnapshotBounds::apply`]: the reason and the words for the
/// client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The class of the problem.
    pub reason: RejectReason,
    /// What exactly is wrong (which list or field, how long, the cap).
    pub detail: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for Rejection {}

fn list(name: &str, len: usize, max: usize) -> Result<(), Rejection> {
    if len > max {
        return Err(Rejection {
            reason: RejectReason::ListTooLong,
            detail: format!("{name} has {len} entries; at most {max} are accepted"),
        });
    }
    Ok(())
}

fn string(name: &str, value: &str, max: usize) -> Result<(), Rejection> {
    if value.len() > max {
        return Err(Rejection {
            reason: RejectReason::StringTooLong,
            detail: format!(
                "{name} is {} bytes; at most {max} are accepted",
                value.len()
            ),
        });
    }
    Ok(())
}

impl SnapshotBounds {
    /// Checks `node` against the caps: the name must be DNS-1123, lists and strings within their
    /// caps. Command lines over the cap are cut in place (the only change it makes).
    pub fn apply(&self, node: &mut NodeMetricsSnapshot) -> Result<(), Rejection> {
        validate_node_name(&node.node_name).map_err(|detail| Rejection {
            reason: RejectReason::InvalidName,
            detail,
        })?;
        list("disks", node.disks.len(), self.max_disks)?;
        list("networks", node.networks.len(), self.max_networks)?;
        list("processes", node.processes.len(), self.max_processes)?;
        list("cpu.per_core", node.cpu.per_core.len(), self.max_per_core)?;
        list(
            "cpu.per_core_frequency",
            node.cpu.per_core_frequency.len(),
            self.max_per_core,
        )?;
        list(
            "temperature.sensors",
            node.temperature.sensors.len(),
            self.max_sensors,
        )?;
        list("collectors", node.collectors.len(), self.max_collectors)?;

        let max = self.max_string_bytes;
        string("hostname", &node.hostname, max)?;
        string("os", &node.os, max)?;
        string("kernel", &node.kernel, max)?;
        string("cpu.model", &node.cpu.model, max)?;
        for d in &node.disks {
            string("disks.device", &d.device, max)?;
            string("disks.mount_point", &d.mount_point, max)?;
            string("disks.fs_type", &d.fs_type, max)?;
        }
        for n in &node.networks {
            string("networks.interface", &n.interface, max)?;
            string("networks.ip_address", &n.ip_address, max)?;
            string("networks.mac_address", &n.mac_address, max)?;
            string("networks.status", &n.status, max)?;
        }
        for s in &node.temperature.sensors {
            string("temperature.sensors.name", &s.name, max)?;
            string("temperature.sensors.label", &s.label, max)?;
        }
        for c in &node.collectors {
            string("collectors.name", &c.name, max)?;
            if let Some(e) = &c.error {
                string("collectors.error", e, max)?;
            }
        }
        for p in &mut node.processes {
            string("processes.name", &p.name, max)?;
            string("processes.user", &p.user, max)?;
            string("processes.status", &p.status, max)?;
            truncate_utf8(&mut p.cmdline, self.max_cmdline_bytes);
        }
        Ok(())
    }
}

/// The capped lists of a node snapshot, so a receiver can check a list's length before it
/// builds the entries (a body of 100,000 empty disks is 300 KB of JSON and tens of MB parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundedList {
    /// `disks`.
    Disks,
    /// `networks`.
    Networks,
    /// `processes`.
    Processes,
    /// `cpu.per_core`.
    PerCore,
    /// `cpu.per_core_frequency` (capped as `cpu.per_core`).
    PerCoreFrequency,
    /// `temperature.sensors`.
    Sensors,
    /// `collectors`.
    Collectors,
}

impl BoundedList {
    /// Every capped list.
    pub const ALL: [BoundedList; 7] = [
        BoundedList::Disks,
        BoundedList::Networks,
        BoundedList::Processes,
        BoundedList::PerCore,
        BoundedList::PerCoreFrequency,
        BoundedList::Sensors,
        BoundedList::Collectors,
    ];

    /// The list's path in the snapshot, as a refusal names it.
    pub fn path(self) -> &'static str {
        match self {
            BoundedList::Disks => "disks",
            BoundedList::Networks => "networks",
            BoundedList::Processes => "processes",
            BoundedList::PerCore => "cpu.per_core",
            BoundedList::PerCoreFrequency => "cpu.per_core_frequency",
            BoundedList::Sensors => "temperature.sensors",
            BoundedList::Collectors => "collectors",
        }
    }
}

impl SnapshotBounds {
    /// The cap of `list`.
    pub fn max_len(&self, list: BoundedList) -> usize {
        match list {
            BoundedList::Disks => self.max_disks,
            BoundedList::Networks => self.max_networks,
            BoundedList::Processes => self.max_processes,
            BoundedList::PerCore | BoundedList::PerCoreFrequency => self.max_per_core,
            BoundedList::Sensors => self.max_sensors,
            BoundedList::Collectors => self.max_collectors,
        }
    }

    /// Checks a length of `list` against its cap, with the refusal [`SnapshotBounds::apply`]
    /// gives.
    pub fn check_len(&self, list: BoundedList, len: usize) -> Result<(), Rejection> {
        self::list(list.path(), len, self.max_len(list))
    }
}

/// How far a node's clock may be off before its timestamp is replaced by the time the snapshot
/// arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockPolicy {
    /// A timestamp further ahead of the receiver's clock than this is replaced (default 5 min).
    pub max_ahead: Duration,
    /// A timestamp older than this is replaced (default 30 days, the history retention).
    pub max_age: Duration,
}

impl Default for ClockPolicy {
    fn default() -> Self {
        Self {
            max_ahead: Duration::from_secs(5 * 60),
            max_age: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl ClockPolicy {
    /// Settles `node`'s timestamp against `received_at`: a timestamp more than `max_ahead` ahead
    /// or more than `max_age` old is replaced by `received_at`, and the difference (node clock
    /// minus receive time, seconds; positive = the node is ahead) is kept in
    /// `clock_skew_seconds`. A timestamp within bounds is kept as it is, and so is a skew an
    /// earlier hop recorded. Returns whether the timestamp was replaced.
    ///
    /// ```
    /// use atlhyper_model::{ClockPolicy, NodeMetricsSnapshot};
    /// use chrono::{TimeZone, Utc};
    ///
    /// let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
    /// let mut node = NodeMetricsSnapshot {
    ///     timestamp: Utc.with_ymd_and_hms(2300, 1, 1, 0, 0, 0).unwrap(),
    ///     ..Default::default()
    /// };
    /// assert!(ClockPolicy::default().settle(&mut node, now));
    /// assert_eq!(node.timestamp, now);
    /// assert!(node.clock_skew_seconds.unwrap() > 200.0 * 365.0 * 86400.0);
    /// ```
    pub fn settle(&self, node: &mut NodeMetricsSnapshot, received_at: DateTime<Utc>) -> bool {
        let Some(skew) = self.skew(node.timestamp, received_at) else {
            return false;
        };
        node.clock_skew_seconds = Some(skew);
        node.timestamp = received_at;
        true
    }

    /// How far `at` is off `received_at`, seconds (positive = ahead), when it is further ahead
    /// than `max_ahead` or older than `max_age`; `None` when it is within bounds. The rule
    /// [`settle`](Self::settle) applies, for any timestamp (e.g. a cluster snapshot's own).
    pub fn skew(&self, at: DateTime<Utc>, received_at: DateTime<Utc>) -> Option<f64> {
        let ahead = chrono::Duration::from_std(self.max_ahead).unwrap_or(chrono::Duration::MAX);
        let age = chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::MAX);
        let too_new = received_at
            .checked_add_signed(ahead)
            .is_some_and(|limit| at > limit);
        let too_old = received_at
            .checked_sub_signed(age)
            .is_some_and(|limit| at < limit);
        // Milliseconds hold every chrono timestamp difference exactly enough; f64 seconds for
        // the wire.
        (too_new || too_old)
            .then(|| at.signed_duration_since(received_at).num_milliseconds() as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{DiskMetrics, ProcessMetrics};
    use chrono::TimeZone;

    fn node() -> NodeMetricsSnapshot {
        NodeMetricsSnapshot {
            node_name: "worker-1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn names() {
        let b = SnapshotBounds::default();
        for bad in ["", "Worker", "a_b", "-a", "a-", "a..b", &"a".repeat(254)] {
            let mut n = NodeMetricsSnapshot {
                node_name: bad.to_owned(),
                ..Default::default()
            };
            let e = b.apply(&mut n).unwrap_err();
            assert_eq!(e.reason, RejectReason::InvalidName, "{bad:?}");
            assert_eq!(e.reason.http_status(), 400);
        }
        let mut n = node();
        n.node_name = "a".repeat(63) + "." + &"b".repeat(63);
        assert!(b.apply(&mut n).is_ok());
    }

    #[test]
    fn every_list_is_capped() {
        let b = SnapshotBounds {
            max_disks: 1,
            max_networks: 1,
            max_processes: 1,
            max_per_core: 1,
            max_sensors: 1,
            max_collectors: 1,
            ..Default::default()
        };
        type Grow = fn(&mut NodeMetricsSnapshot);
        let cases: [(&str, Grow); 7] = [
            ("disks", |n| n.disks = vec![Default::default(); 2]),
            ("networks", |n| n.networks = vec![Default::default(); 2]),
            ("processes", |n| n.processes = vec![Default::default(); 2]),
            ("cpu.per_core", |n| n.cpu.per_core = vec![0.0; 2]),
            ("cpu.per_core_frequency", |n| {
                n.cpu.per_core_frequency = vec![0.0; 2]
            }),
            ("temperature.sensors", |n| {
                n.temperature.sensors = vec![Default::default(); 2]
            }),
            ("collectors", |n| n.collectors = vec![Default::default(); 2]),
        ];
        for (name, grow) in cases {
            let mut n = node();
            assert!(b.apply(&mut n).is_ok());
            grow(&mut n);
            let e = b.apply(&mut n).unwrap_err();
            assert_eq!(e.reason, RejectReason::ListTooLong, "{name}");
            assert_eq!(e.reason.http_status(), 413);
            assert!(e.detail.starts_with(name), "{}", e.detail);
        }
    }

    #[test]
    fn check_len_refuses_as_apply_does() {
        let b = SnapshotBounds::default();
        for list in BoundedList::ALL {
            let max = b.max_len(list);
            assert!(b.check_len(list, max).is_ok());
            let mut n = node();
            match list {
                BoundedList::Disks => n.disks = vec![Default::default(); max + 1],
                BoundedList::Networks => n.networks = vec![Default::default(); max + 1],
                BoundedList::Processes => n.processes = vec![Default::default(); max + 1],
                BoundedList::PerCore => n.cpu.per_core = vec![0.0; max + 1],
                BoundedList::PerCoreFrequency => n.cpu.per_core_frequency = vec![0.0; max + 1],
                BoundedList::Sensors => n.temperature.sensors = vec![Default::default(); max + 1],
                BoundedList::Collectors => n.collectors = vec![Default::default(); max + 1],
            }
            assert_eq!(
                b.check_len(list, max + 1).unwrap_err(),
                b.apply(&mut n).unwrap_err(),
                "{list:?}"
            );
        }
    }

    #[test]
    fn strings_are_capped_and_cmdlines_cut() {
        let b = SnapshotBounds::default();
        let mut n = node();
        n.disks = vec![DiskMetrics {
            mount_point: "/m".repeat(3000),
            ..Default::default()
        }];
        let e = b.apply(&mut n).unwrap_err();
        assert_eq!(e.reason, RejectReason::StringTooLong);
        assert!(e.detail.contains("disks.mount_point"), "{}", e.detail);

        let mut n = node();
        // A three-byte character straddling the cap is dropped whole.
        let cmdline = "a".repeat(MAX_CMDLINE_BYTES - 1) + "€" + "tail";
        n.processes = vec![ProcessMetrics {
            cmdline,
            ..Default::default()
        }];
        assert!(b.apply(&mut n).is_ok());
        assert_eq!(n.processes[0].cmdline, "a".repeat(MAX_CMDLINE_BYTES - 1));
    }

    #[test]
    fn clock() {
        let policy = ClockPolicy::default();
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let mut n = node();
        n.timestamp = now + chrono::Duration::seconds(299);
        assert!(!policy.settle(&mut n, now));
        assert_eq!(n.clock_skew_seconds, None);

        n.timestamp = now + chrono::Duration::seconds(301);
        assert!(policy.settle(&mut n, now));
        assert_eq!(n.timestamp, now);
        assert_eq!(n.clock_skew_seconds, Some(301.0));

        n.timestamp = now - chrono::Duration::days(31);
        assert!(policy.settle(&mut n, now));
        assert_eq!(n.clock_skew_seconds, Some(-31.0 * 86400.0));

        // The far ends of chrono's range do not overflow.
        n.timestamp = DateTime::<Utc>::MAX_UTC;
        assert!(policy.settle(&mut n, now));
        n.timestamp = DateTime::<Utc>::MIN_UTC;
        assert!(policy.settle(&mut n, now));
        assert!(n.clock_skew_seconds.unwrap().is_finite());
    }
}
