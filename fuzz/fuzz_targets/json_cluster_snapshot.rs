#![no_main]
//! Fuzz target `json_cluster_snapshot`: see `atlhyper_fuzz::json_cluster_snapshot` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::json_cluster_snapshot(data));
