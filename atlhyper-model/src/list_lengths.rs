//! The lengths of a node snapshot's capped lists ([`BoundedList`]), read from its JSON without
//! building the entries. A body of 100,000 empty disks is 300 KB of JSON and, parsed into a
//! snapshot, tens of MB; counting first lets a receiver refuse it, or bound what it will cost,
//! for the price of one pass over the text.
//!
//! Any JSON value is accepted where a list is expected (a `null`, a wrong type: the count is 0,
//! and the full parse that follows says what is wrong), so counting refuses only what the full
//! parse would refuse too: text that is not JSON, a duplicated field.
//!
//! ```
//! use atlhyper_model::{BoundedList, NodeListLengths, SnapshotBounds};
//!
//! let lengths = NodeListLengths::from_json(r#"{"disks":[{},{},{}],"cpu":{"per_core":[1,2]}}"#)?;
//! assert_eq!(lengths.get(BoundedList::Disks), 3);
//! assert_eq!(lengths.get(BoundedList::PerCore), 2);
//! let tight = SnapshotBounds { max_disks: 2, ..SnapshotBounds::default() };
//! assert!(tight.check_lengths(&lengths).is_err());
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::bounds::{BoundedList, Rejection, SnapshotBounds};

/// Entries of each capped list of one node snapshot, counted in its JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeListLengths {
    disks: usize,
    networks: usize,
    processes: usize,
    per_core: usize,
    per_core_frequency: usize,
    sensors: usize,
    collectors: usize,
}

impl NodeListLengths {
    /// Counts the lists of one node snapshot's JSON. An error only when the text is not JSON
    /// (or has a field twice); any other shape counts as empty lists.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Entries of `list`.
    pub fn get(&self, list: BoundedList) -> usize {
        match list {
            BoundedList::Disks => self.disks,
            BoundedList::Networks => self.networks,
            BoundedList::Processes => self.processes,
            BoundedList::PerCore => self.per_core,
            BoundedList::PerCoreFrequency => self.per_core_frequency,
            BoundedList::Sensors => self.sensors,
            BoundedList::Collectors => self.collectors,
        }
    }
}

impl<'de> Deserialize<'de> for NodeListLengths {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Lenient(l) = Lenient::<Lengths>::deserialize(deserializer)?;
        Ok(NodeListLengths {
            disks: l.disks.0,
            networks: l.networks.0,
            processes: l.processes.0,
            per_core: l.cpu.0.per_core.0,
            per_core_frequency: l.cpu.0.per_core_frequency.0,
            sensors: l.temperature.0.sensors.0,
            collectors: l.collectors.0,
        })
    }
}

impl SnapshotBounds {
    /// Checks counted lengths against the caps, with the refusal [`SnapshotBounds::apply`] gives
    /// for the first list over its cap.
    pub fn check_lengths(&self, lengths: &NodeListLengths) -> Result<(), Rejection> {
        for list in BoundedList::ALL {
            self.check_len(list, lengths.get(list))?;
        }
        Ok(())
    }
}

/// The JSON shape counted: the capped lists, where a snapshot has them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Lengths {
    disks: Count,
    networks: Count,
    // Seed 000 names the process list `top_processes`; the snapshot reads both.
    #[serde(alias = "top_processes")]
    processes: Count,
    collectors: Count,
    cpu: Lenient<CpuLengths>,
    temperature: Lenient<TemperatureLengths>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CpuLengths {
    per_core: Count,
    per_core_frequency: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TemperatureLengths {
    sensors: Count,
}

/// The number of entries of a JSON array, each skipped unread; 0 for any other value.
#[derive(Debug, Default)]
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Count;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
        let mut n = 0usize;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(Count(n))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Count, A::Error> {
        IgnoredAny.visit_map(map).map(|_| Count(0))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Count, E> {
        Ok(Count(0))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Count, E> {
        Ok(Count(0))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Count, E> {
        Ok(Count(0))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Count, E> {
        Ok(Count(0))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Count, E> {
        Ok(Count(0))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Count, E> {
        Ok(Count(0))
    }

    fn visit_none<E: de::Error>(self) -> Result<Count, E> {
        Ok(Count(0))
    }
}

/// A `T` read from a JSON object; `T::default()` for any other value.
#[derive(Debug, Default)]
struct Lenient<T>(T);

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientVisitor(PhantomData))
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for LenientVisitor<T> {
    type Value = Lenient<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Lenient<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Lenient)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Lenient<T>, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Lenient(T::default()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Lenient<T>, E> {
        Ok(Lenient(T::default()))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Lenient<T>, E> {
        Ok(Lenient(T::default()))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Lenient<T>, E> {
        Ok(Lenient(T::default()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Lenient<T>, E> {
        Ok(Lenient(T::default()))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Lenient<T>, E> {
        Ok(Lenient(T::default()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Lenient<T>, E> {
        Ok(Lenient(T::default()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Lenient<T>, E> {
        Ok(Lenient(T::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounds::RejectReason;

    fn bounds() -> SnapshotBounds {
        SnapshotBounds {
            max_disks: 2,
            max_networks: 2,
            max_processes: 2,
            max_per_core: 2,
            max_sensors: 2,
            max_collectors: 2,
            ..SnapshotBounds::default()
        }
    }

    fn refused(json: &str) -> Option<Rejection> {
        let lengths = NodeListLengths::from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        bounds().check_lengths(&lengths).err()
    }

    #[test]
    fn every_capped_list_is_counted() {
        for (json, list) in [
            (r#"{"disks":[{},{},{}]}"#, "disks"),
            (r#"{"networks":[1,2,3]}"#, "networks"),
            (r#"{"processes":[{},{},{}]}"#, "processes"),
            (r#"{"top_processes":[{},{},{}]}"#, "processes"),
            (r#"{"collectors":[{},{},{}]}"#, "collectors"),
            (r#"{"cpu":{"per_core":[1,2,3]}}"#, "cpu.per_core"),
            (
                r#"{"cpu":{"per_core_frequency":[1,2,3]}}"#,
                "cpu.per_core_frequency",
            ),
            (
                r#"{"temperature":{"cpu_temp":1,"sensors":[{},{},{}]}}"#,
                "temperature.sensors",
            ),
        ] {
            let r = refused(json).unwrap_or_else(|| panic!("{json} passed"));
            assert_eq!(r.reason, RejectReason::ListTooLong);
            assert_eq!(
                r.detail,
                format!("{list} has 3 entries; at most 2 are accepted")
            );
        }
    }

    #[test]
    fn counting_agrees_with_apply() {
        let json = r#"{"node_name":"n","disks":[{},{},{}],"networks":[{},{},{}]}"#;
        let mut parsed: crate::NodeMetricsSnapshot = serde_json::from_str(json).unwrap();
        let by_apply = bounds().apply(&mut parsed).unwrap_err();
        assert_eq!(refused(json), Some(by_apply));
    }

    #[test]
    fn within_the_caps_and_odd_shapes_pass_to_the_full_parse() {
        for json in [
            r#"{"node_name":"n","disks":[{"a":[1,2,3,4]},{}],"cpu":{"per_core":[1,2]}}"#,
            r#"{"disks":null,"cpu":null,"temperature":{"sensors":null}}"#,
            r#"{"disks":"many","cpu":[1,2,3],"temperature":5,"processes":{"a":[1,2,3]}}"#,
            r#"[1,2,3]"#,
            r#""text""#,
            r#"{}"#,
        ] {
            assert_eq!(refused(json), None, "{json}");
        }
    }

    #[test]
    fn not_json_is_an_error() {
        for json in ["{", r#"{"disks":[],"disks":[]}"#, "{} trailing"] {
            assert!(NodeListLengths::from_json(json).is_err(), "{json}");
        }
    }
}
