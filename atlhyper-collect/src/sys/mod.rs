//! Parsers for attribute files under `/sys`.

pub mod cpufreq;
pub mod hwmon;
pub mod net_class;
pub mod thermal;
