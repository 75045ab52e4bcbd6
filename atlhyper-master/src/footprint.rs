//! What a snapshot body will cost in memory once parsed, read from the JSON without parsing it.
//!
//! A `{}` in a list is three bytes of JSON and a whole element once parsed (a `NetworkMetrics`
//! is 288 bytes, a node 608), so the decompressed limit alone does not bound the parsed size:
//! 64 MiB of `{},` would become some 6 GB of structs before any cap is checked. [`footprint`]
//! walks the JSON once, counting list entries by type and keeping nothing, and gives an upper
//! bound of the parsed size; ingest refuses a body whose bound is over the budget before it
//! parses it.

use std::fmt;
use std::mem::size_of;

use atlhyper_model::{
    BoundedList, CollectorStatus, DiskMetrics, MetricsDataPoint, NetworkMetrics, NodeListLengths,
    NodeMetricsSnapshot, NodeStatus, ProcessMetrics, SensorReading,
};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Bytes a `BTreeMap` entry costs beside its key and value (node and pointer share, from above).
const MAP_ENTRY_OVERHEAD: usize = 64;

/// An upper bound, bytes, of the memory `json` (a `ClusterSnapshot`) takes once parsed: every
/// struct and list element by its size, plus the body's length for the bytes of all strings and
/// keys. An error when the JSON does not have the snapshot's shape (the real parse then says
/// what is wrong).
pub(crate) fn footprint(json: &[u8]) -> Result<usize, serde_json::Error> {
    let shape: SnapshotShape = serde_json::from_slice(json)?;
    Ok(shape.bytes().saturating_add(json.len()))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct SnapshotShape {
    node_metrics: Nodes,
    node_status: Entries,
    backfill: Len,
}

impl SnapshotShape {
    fn bytes(&self) -> usize {
        let status = size_of::<String>() + size_of::<NodeStatus>() + MAP_ENTRY_OVERHEAD;
        self.node_metrics
            .0
            .saturating_add(self.node_status.0.saturating_mul(status))
            .saturating_add(
                self.backfill
                    .0
                    .saturating_mul(size_of::<MetricsDataPoint>()),
            )
    }
}

/// Upper bound of one parsed node, bytes, from its counted lists.
fn node_bytes(lengths: &NodeListLengths) -> usize {
    BoundedList::ALL.iter().fold(
        size_of::<String>() + size_of::<NodeMetricsSnapshot>() + MAP_ENTRY_OVERHEAD,
        |sum, list| {
            let entry = match list {
                BoundedList::Disks => size_of::<DiskMetrics>(),
                BoundedList::Networks => size_of::<NetworkMetrics>(),
                BoundedList::Processes => size_of::<ProcessMetrics>(),
                BoundedList::PerCore | BoundedList::PerCoreFrequency => size_of::<f64>(),
                BoundedList::Sensors => size_of::<SensorReading>(),
                BoundedList::Collectors => size_of::<CollectorStatus>(),
            };
            sum.saturating_add(lengths.get(*list).saturating_mul(entry))
        },
    )
}

/// The length of a JSON list (`null` is empty), its entries skipped.
#[derive(Debug, Default)]
struct Len(usize);

impl<'de> Deserialize<'de> for Len {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Len;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list or null")
            }
            fn visit_unit<E>(self) -> Result<Len, E> {
                Ok(Len(0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Len, A::Error> {
                let mut n = 0usize;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Len(n))
            }
        }
        d.deserialize_any(V)
    }
}

/// The entries of a JSON object (`null` is empty), skipped.
#[derive(Debug, Default)]
struct Entries(usize);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or null")
            }
            fn visit_unit<E>(self) -> Result<Entries, E> {
                Ok(Entries(0))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut n = 0usize;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Entries(n))
            }
        }
        d.deserialize_any(V)
    }
}

/// The parsed size of every node of `node_metrics`, summed (nothing kept).
#[derive(Debug, Default)]
struct Nodes(usize);

impl<'de> Deserialize<'de> for Nodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Nodes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of node snapshots or null")
            }
            fn visit_unit<E>(self) -> Result<Nodes, E> {
                Ok(Nodes(0))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Nodes, A::Error> {
                let mut bytes = 0usize;
                while map.next_key::<IgnoredAny>()?.is_some() {
                    let node: NodeListLengths = map.next_value()?;
                    bytes = bytes.saturating_add(node_bytes(&node));
                }
                Ok(Nodes(bytes))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlhyper_model::ClusterSnapshot;

    /// Heap bytes of a parsed snapshot, counted the long way, for comparison.
    fn parsed_size(s: &ClusterSnapshot) -> usize {
        s.node_metrics
            .values()
            .map(|n| {
                size_of::<NodeMetricsSnapshot>()
                    + n.disks.len() * size_of::<DiskMetrics>()
                    + n.networks.len() * size_of::<NetworkMetrics>()
                    + n.processes.len() * size_of::<ProcessMetrics>()
                    + (n.cpu.per_core.len() + n.cpu.per_core_frequency.len()) * 8
            })
            .sum::<usize>()
            + s.backfill.len() * size_of::<MetricsDataPoint>()
    }

    #[test]
    fn counts_empty_entries_at_their_parsed_size() {
        let disks = vec!["{}"; 100_000].join(",");
        let json = format!(
            r#"{{"cluster_id":"c","node_metrics":{{"n":{{"disks":[{disks}],"cpu":{{"per_core":[1,2]}}}},"m":{{}}}},"backfill":[{{}},{{}}],"pods":[1,2,3]}}"#
        );
        let bound = footprint(json.as_bytes()).unwrap();
        let parsed: ClusterSnapshot = serde_json::from_str(&json).unwrap();
        let size = parsed_size(&parsed);
        assert!(bound >= size, "{bound} < {size}");
        assert!(bound < size + json.len() + 4096, "{bound} vs {size}");
        // 300 KB of JSON, some 19 MB once parsed.
        assert!(bound > 60 * json.len(), "{bound} for {} bytes", json.len());
    }

    #[test]
    fn null_and_absent_lists_are_empty_and_bad_shapes_are_errors() {
        let small = footprint(br#"{"node_metrics":null,"backfill":null,"node_status":null}"#);
        assert_eq!(small.unwrap(), 56);
        assert!(footprint(br#"{"node_metrics":{"n":{"disks":null}}}"#).is_ok());
        // A node's lists are counted as the agent counts them (NodeListLengths): a wrong type
        // counts as empty and the full parse refuses it.
        assert!(footprint(br#"{"node_metrics":{"n":{"disks":5}}}"#).is_ok());
        assert!(footprint(br#"{"node_metrics":5}"#).is_err());
        assert!(footprint(b"{not json").is_err());
    }
}
